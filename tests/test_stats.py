from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_modelmigrate import stats
from pytest_modelmigrate.stats import (
    cmh_less,
    fisher_exact_less,
    holm_adjust,
    pass_at_k,
    pass_hat_k,
    samples_needed,
    samples_needed_group,
    stratified_null_pmf,
    stratified_test,
    wilson_interval,
)

# -- strategies --------------------------------------------------------------------------------


@st.composite
def counts(draw: st.DrawFn, max_n: int = 40) -> tuple[int, int]:
    n = draw(st.integers(min_value=0, max_value=max_n))
    return draw(st.integers(min_value=0, max_value=n)), n


@st.composite
def nonempty_counts(draw: st.DrawFn, max_n: int = 40) -> tuple[int, int]:
    n = draw(st.integers(min_value=1, max_value=max_n))
    return draw(st.integers(min_value=0, max_value=n)), n


@st.composite
def strata(draw: st.DrawFn) -> list[tuple[int, int, int, int]]:
    size = draw(st.integers(min_value=1, max_value=6))
    out = []
    for _ in range(size):
        a, an = draw(nonempty_counts(12))
        b, bn = draw(nonempty_counts(12))
        out.append((a, an, b, bn))
    return out


# -- Wilson ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        # closed forms: 0/n -> (0, z²/(n+z²)), n/n -> (n/(n+z²), 1)
        (0, 10, 0.0, 0.277533),
        (10, 10, 0.722467, 1.0),
        (5, 10, 0.236593, 0.763407),
        # scipy.stats.binomtest(81, 263).proportion_ci(method="wilson")
        (81, 263, 0.255289, 0.366210),
        (1, 1, 0.206543, 1.0),
    ],
)
def test_wilson_known_values(successes: int, n: int, low: float, high: float) -> None:
    got = wilson_interval(successes, n)
    assert got[0] == pytest.approx(low, abs=1e-4)
    assert got[1] == pytest.approx(high, abs=1e-4)


def test_wilson_no_samples_is_uninformative() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(("args", "message"), [((-1, 3), "non-negative"), ((4, 3), "exceeds")])
def test_wilson_rejects_bad_counts(args: tuple[int, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        wilson_interval(*args)


def test_wilson_rejects_bad_confidence() -> None:
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(1, 2, confidence=1.0)


@given(counts(200))
def test_wilson_contains_estimate_and_stays_in_unit_interval(c: tuple[int, int]) -> None:
    s, n = c
    low, high = wilson_interval(s, n)
    assert 0.0 <= low <= high <= 1.0
    if n:
        assert low <= s / n <= high


@given(nonempty_counts(50), st.integers(min_value=2, max_value=6))
def test_wilson_narrows_as_n_grows_at_fixed_rate(c: tuple[int, int], factor: int) -> None:
    s, n = c
    low, high = wilson_interval(s, n)
    low2, high2 = wilson_interval(s * factor, n * factor)
    assert high2 - low2 < high - low


# -- pass^k ------------------------------------------------------------------------------------


def test_pass_hat_k() -> None:
    assert pass_hat_k(10, 10) == 1.0
    assert pass_hat_k(9, 10) == 0.0
    assert pass_hat_k(8, 10, 2) == pytest.approx(28 / 45)
    assert pass_hat_k(8, 10, 1) == pytest.approx(0.8)
    assert pass_at_k(8, 10, 2) == pytest.approx(1 - 1 / 45)
    with pytest.raises(ValueError, match="k must be"):
        pass_hat_k(1, 2, 3)


# -- Fisher ------------------------------------------------------------------------------------


def _hypergeom_tail(a: int, an: int, b: int, bn: int) -> float:
    """Independent hand-rolled P(X <= b), X ~ Hypergeom(draws=bn, successes=a+b, population=an+bn)."""
    k, n = a + b, an + bn
    return sum(
        math.comb(k, x) * math.comb(n - k, bn - x) / math.comb(n, bn)
        for x in range(0, b + 1)
        if bn - x <= n - k
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # 9/10 vs 5/10: (C(14,4)C(6,6) + C(14,5)C(6,5)) / C(20,10) = 13013 / 184756
        ((9, 10, 5, 10), 13013 / 184756),
        ((3, 3, 0, 3), 1 / 20),
        ((1, 1, 0, 1), 0.5),
        ((5, 10, 10, 10), 1.0),
        ((0, 10, 0, 10), 1.0),
        ((4, 4, 0, 0), 1.0),
    ],
)
def test_fisher_known_values(args: tuple[int, int, int, int], expected: float) -> None:
    assert fisher_exact_less(*args) == pytest.approx(expected, rel=1e-12)


def test_fisher_matches_scipy() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    for a, an, b, bn in itertools.product(range(0, 9, 2), [8], range(0, 13, 3), [12]):
        expected = scipy_stats.fisher_exact([[a, an - a], [b, bn - b]], alternative="greater").pvalue
        assert fisher_exact_less(a, an, b, bn) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@given(nonempty_counts(), nonempty_counts())
def test_fisher_in_unit_interval_and_matches_hand_sum(a: tuple[int, int], b: tuple[int, int]) -> None:
    p = fisher_exact_less(a[0], a[1], b[0], b[1])
    assert 0.0 <= p <= 1.0
    assert p == pytest.approx(_hypergeom_tail(a[0], a[1], b[0], b[1]), rel=1e-9, abs=1e-15)


@given(nonempty_counts(), nonempty_counts())
def test_fisher_more_candidate_failures_smaller_p(a: tuple[int, int], b: tuple[int, int]) -> None:
    (ap, an), (bp, bn) = a, b
    if bp > 0:
        assert fisher_exact_less(ap, an, bp - 1, bn) <= fisher_exact_less(ap, an, bp, bn)


@given(nonempty_counts(), st.integers(min_value=1, max_value=40))
def test_fisher_is_one_when_candidate_is_perfect(a: tuple[int, int], bn: int) -> None:
    assert fisher_exact_less(a[0], a[1], bn, bn) == 1.0
    assert fisher_exact_less(0, a[1], *a) == 1.0  # incumbent never passed


@given(nonempty_counts(), nonempty_counts())
def test_fisher_swap_is_complementary(a: tuple[int, int], b: tuple[int, int]) -> None:
    (ap, an), (bp, bn) = a, b
    forward = fisher_exact_less(ap, an, bp, bn)
    backward = fisher_exact_less(bp, bn, ap, an)
    # P(X <= x) + P(X >= x) = 1 + P(X = x)
    point = forward - (fisher_exact_less(ap + 1, an, bp - 1, bn) if bp > 0 and ap < an else 0.0)
    assert forward + backward == pytest.approx(1.0 + point, abs=1e-9)


def test_fisher_rejects_bad_counts() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        fisher_exact_less(3, 2, 0, 1)
    with pytest.raises(ValueError, match="non-negative"):
        fisher_exact_less(0, 1, -1, 1)


# -- stratified (exact conditional) and CMH ----------------------------------------------------

# R's datasets example for mantelhaen.test (Agresti 1990, penicillin and rabbits): five
# penicillin levels; incumbent = immediate injection, candidate = 1.5 h delay, pass = cured.
RABBITS = [(0, 6, 0, 5), (3, 6, 0, 6), (6, 6, 2, 6), (5, 6, 6, 6), (2, 2, 5, 5)]


def test_stratified_rabbits_matches_r() -> None:
    # mantelhaen.test(Rabbits, exact = TRUE, alternative = "greater")  => p = 0.01997
    assert stratified_test(RABBITS) == pytest.approx(0.0199725, abs=1e-6)
    # mantelhaen.test(Rabbits, exact = TRUE) (two-sided: outcomes no likelier than observed) => 0.03994
    offset, pmf = stratified_null_pmf(RABBITS)
    observed = pmf[sum(s[2] for s in RABBITS) - offset]
    assert sum(p for p in pmf if p <= observed * (1 + 1e-7)) == pytest.approx(0.03994, abs=1e-5)
    # mantelhaen.test(Rabbits): Mantel-Haenszel X-squared = 3.9286, p-value = 0.04747
    one_sided = cmh_less(RABBITS)
    assert 2 * one_sided == pytest.approx(0.04747, abs=1e-5)
    z = stats._NORMAL.inv_cdf(1 - one_sided)
    assert z * z == pytest.approx(3.9286, abs=1e-4)


def test_stratified_one_stratum_is_fisher() -> None:
    assert stratified_test([(9, 10, 5, 10)]) == pytest.approx(fisher_exact_less(9, 10, 5, 10))


def test_stratified_with_one_sample_is_the_sign_test() -> None:
    # Concordant pairs carry no information; each discordant pair is a fair coin.
    assert stratified_test([(1, 1, 0, 1)] * 5 + [(1, 1, 1, 1)] * 7 + [(0, 1, 0, 1)] * 3) == pytest.approx(
        1 / 32
    )
    # 4 losses, 1 win: P(Bin(5, 1/2) >= 4) = 6/32
    assert stratified_test([(1, 1, 0, 1)] * 4 + [(0, 1, 1, 1)]) == pytest.approx(6 / 32)
    assert stratified_test([(1, 1, 1, 1)] * 10) == 1.0


def test_stratified_ignores_empty_strata() -> None:
    assert stratified_test([]) == 1.0
    assert stratified_test([(0, 0, 0, 0), (3, 3, 0, 3)]) == pytest.approx(0.05)


def test_stratified_holds_its_level_exactly_for_small_heterogeneous_counts() -> None:
    """Enumerate every outcome of three tests x 3 samples under the null: size <= alpha."""
    rates = [0.35, 0.8, 0.97]
    n = 3
    binom = [[math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)] for p in rates]
    for alpha in (0.01, 0.05, 0.1):
        size = 0.0
        for outcome in itertools.product(range(n + 1), repeat=2 * len(rates)):
            prob = 1.0
            table = []
            for i in range(len(rates)):
                a, b = outcome[2 * i], outcome[2 * i + 1]
                prob *= binom[i][a] * binom[i][b]
                table.append((a, n, b, n))
            if stratified_test(table) <= alpha:
                size += prob
        assert size <= alpha


def test_stratified_falls_back_to_cmh_when_large(monkeypatch: pytest.MonkeyPatch) -> None:
    table = [(90, 100, 80, 100)] * 3 + [(60, 100, 52, 100)] * 3
    exact = stratified_test(table)
    monkeypatch.setattr(stats, "_EXACT_BUDGET", 0)
    approx = stratified_test(table)
    assert approx == pytest.approx(cmh_less(table))
    assert approx == pytest.approx(exact, rel=0.1)


@given(strata())
def test_stratified_in_unit_interval_and_order_free(table: list[tuple[int, int, int, int]]) -> None:
    p = stratified_test(table)
    assert 0.0 <= p <= 1.0
    assert stratified_test(list(reversed(table))) == pytest.approx(p, rel=1e-9, abs=1e-15)


@given(strata())
def test_stratified_swap_is_complementary(table: list[tuple[int, int, int, int]]) -> None:
    swapped = [(b, bn, a, an) for a, an, b, bn in table]
    assert stratified_test(table) + stratified_test(swapped) >= 1.0 - 1e-9


@given(strata())
def test_null_pmf_sums_to_one(table: list[tuple[int, int, int, int]]) -> None:
    _offset, pmf = stratified_null_pmf(table)
    assert math.fsum(pmf) == pytest.approx(1.0)


# -- sample sizes ------------------------------------------------------------------------------


def _fisher_power(p1: float, p2: float, n: int, alpha: float) -> float:
    pmf1 = [math.comb(n, k) * p1**k * (1 - p1) ** (n - k) for k in range(n + 1)]
    pmf2 = [math.comb(n, k) * p2**k * (1 - p2) ** (n - k) for k in range(n + 1)]
    return sum(
        pmf1[a] * pmf2[b]
        for a in range(n + 1)
        for b in range(n + 1)
        if fisher_exact_less(a, n, b, n) <= alpha
    )


def test_samples_needed_closed_form() -> None:
    # Fleiss with continuity correction, by hand for 0.90 -> 0.75, one-sided 0.05, power 0.8:
    # n0 = (1.6449·sqrt(2·0.825·0.175) + 0.8416·sqrt(0.09 + 0.1875))² / 0.15² = 78.26
    # n  = n0/4 · (1 + sqrt(1 + 4/(n0·0.15)))² = 91.1 -> 92
    assert samples_needed(0.90, 0.15, 0.05, 0.8) == 92
    # symmetric in success/failure
    assert samples_needed(0.60, 0.20, 0.05, 0.8) == samples_needed_group([0.60], 0.20, 0.05, 0.8)
    # a group of ten such tests needs a tenth per test
    assert samples_needed_group([0.90] * 10, 0.15, 0.05, 0.8) == 10


@pytest.mark.parametrize(("p1", "drop"), [(0.90, 0.15), (0.70, 0.20), (0.50, 0.25)])
def test_samples_needed_tracks_exact_fisher_power(p1: float, drop: float) -> None:
    n = samples_needed(p1, drop, 0.05, 0.8)
    assert _fisher_power(p1, p1 - drop, n, 0.05) >= 0.77
    assert _fisher_power(p1, p1 - drop, int(n * 0.8), 0.05) < 0.8


def test_samples_needed_monotone_and_validated() -> None:
    assert samples_needed(0.9, 0.3, 0.05, 0.8) < samples_needed(0.9, 0.15, 0.05, 0.8)
    assert samples_needed(0.9, 0.15, 0.05, 0.9) > samples_needed(0.9, 0.15, 0.05, 0.8)
    assert samples_needed(0.9, 0.15, 0.01, 0.8) > samples_needed(0.9, 0.15, 0.05, 0.8)
    with pytest.raises(ValueError, match="exceeds"):
        samples_needed(0.1, 0.15, 0.05, 0.8)
    with pytest.raises(ValueError, match="alpha"):
        samples_needed(0.9, 0.15, 0.0, 0.8)
    with pytest.raises(ValueError, match="drop"):
        samples_needed_group([0.9], 0.0, 0.05, 0.8)
    with pytest.raises(ValueError, match="empty"):
        samples_needed_group([], 0.1, 0.05, 0.8)


# -- Holm --------------------------------------------------------------------------------------


def test_holm_known_values() -> None:
    # By hand: sorted 0.01, 0.02, 0.03, 0.04 -> 4·0.01, 3·0.02, max(0.06, 2·0.03), max(0.06, 0.04)
    # = 0.04, 0.06, 0.06, 0.06; R: p.adjust(c(0.03, 0.01, 0.04, 0.02), "holm") gives the same.
    assert holm_adjust([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    # sorted 0.001, 0.2, 0.5 -> 3·0.001, 2·0.2, max(0.4, 1·0.5); p.adjust gives 0.5, 0.003, 0.4
    assert holm_adjust([0.5, 0.001, 0.2]) == pytest.approx([0.5, 0.003, 0.4])
    # capped at 1
    assert holm_adjust([0.4, 0.6, 0.45]) == pytest.approx([1.0, 1.0, 1.0])
    assert holm_adjust([0.9, 0.3]) == pytest.approx([0.9, 0.6])
    assert holm_adjust([0.7]) == [0.7]
    assert holm_adjust([]) == []
    with pytest.raises(ValueError, match="p-values"):
        holm_adjust([1.5])


@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=12))
def test_holm_bounds_and_order_free(ps: list[float]) -> None:
    adjusted = holm_adjust(ps)
    assert all(p <= q <= min(1.0, len(ps) * p) + 1e-12 for p, q in zip(ps, adjusted, strict=True))
    assert sorted(holm_adjust(list(reversed(ps)))) == sorted(adjusted)
