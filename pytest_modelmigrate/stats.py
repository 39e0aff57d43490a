"""Intervals, significance tests and sample sizes for pass/fail counts.

Pure Python (``math`` and ``statistics`` only): no numpy, no scipy.

Conventions used throughout:

* a *rate* is ``passed / total``;
* "A" or "incumbent" is the model in production, "B" or "candidate" the one that may replace it;
* every p-value here is one-sided and answers "is the candidate's pass rate *lower*?";
  a small p is evidence of a regression.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "cmh_less",
    "fisher_exact_less",
    "holm_adjust",
    "pass_at_k",
    "pass_hat_k",
    "samples_needed",
    "samples_needed_group",
    "stratified_null_pmf",
    "stratified_test",
    "wilson_interval",
]

_NORMAL = NormalDist()

# Above this many multiply-adds the exact stratified test hands over to the CMH normal
# approximation (with continuity correction), which is accurate at such sizes.
_EXACT_BUDGET = 4_000_000


def _check_counts(passed: int, total: int, what: str = "counts") -> None:
    if passed < 0 or total < 0:
        raise ValueError(f"{what} must be non-negative, got passed={passed}, total={total}")
    if passed > total:
        raise ValueError(f"{what}: passed ({passed}) exceeds total ({total})")


def _check_probability(value: float, name: str) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value!r}")


# ---------------------------------------------------------------------------------------------
# Intervals and pass^k
# ---------------------------------------------------------------------------------------------


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    Returns ``(low, high)`` within ``[0, 1]``; with ``n == 0`` there is no information and the
    interval is ``(0.0, 1.0)``.
    """
    _check_counts(successes, n)
    _check_probability(confidence, "confidence")
    if n == 0:
        return (0.0, 1.0)
    z = _NORMAL.inv_cdf(0.5 + confidence / 2.0)
    z2 = z * z
    p = successes / n
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denom
    half = (z / denom) * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


def pass_hat_k(successes: int, n: int, k: int | None = None) -> float:
    """pass^k: the chance that *k* independent runs *all* pass, estimated from *n* runs.

    Unbiased estimator ``C(successes, k) / C(n, k)`` (as in tau-bench). With ``k`` omitted,
    ``k = n``: 1.0 when every sample passed, otherwise 0.0.
    """
    _check_counts(successes, n)
    k = n if k is None else k
    if not 0 < k <= n:
        raise ValueError(f"k must be in 1..n ({n}), got {k}")
    return math.comb(successes, k) / math.comb(n, k)


def pass_at_k(successes: int, n: int, k: int) -> float:
    """pass@k: the chance that at least one of *k* runs passes, ``1 - C(n - c, k) / C(n, k)``."""
    _check_counts(successes, n)
    if not 0 < k <= n:
        raise ValueError(f"k must be in 1..n ({n}), got {k}")
    return 1.0 - math.comb(n - successes, k) / math.comb(n, k)


# ---------------------------------------------------------------------------------------------
# Fisher's exact test, one-sided
# ---------------------------------------------------------------------------------------------


def _hypergeom_support(total_pass: int, a_n: int, b_n: int) -> tuple[int, int]:
    """Range of B's passes given both margins: ``max(0, K - a_n) .. min(K, b_n)``."""
    return max(0, total_pass - a_n), min(total_pass, b_n)


def fisher_exact_less(a_pass: int, a_n: int, b_pass: int, b_n: int) -> float:
    """One-sided Fisher exact p-value that B's pass rate is lower than A's.

    Conditional on the margins, B's passes follow a hypergeometric law; the p-value is
    ``P(X <= b_pass)``, summed in exact integer arithmetic and divided once. It equals
    ``scipy.stats.fisher_exact([[a_pass, a_n - a_pass], [b_pass, b_n - b_pass]],
    alternative="greater")``. With no samples on either side, returns 1.0.
    """
    _check_counts(a_pass, a_n, "incumbent counts")
    _check_counts(b_pass, b_n, "candidate counts")
    if a_n == 0 or b_n == 0:
        return 1.0
    total_pass = a_pass + b_pass
    total_fail = a_n + b_n - total_pass
    lo, _hi = _hypergeom_support(total_pass, a_n, b_n)
    tail = sum(math.comb(total_pass, x) * math.comb(total_fail, b_n - x) for x in range(lo, b_pass + 1))
    return min(1.0, tail / math.comb(a_n + b_n, b_n))


# ---------------------------------------------------------------------------------------------
# Pooling tests of a group: exact conditional (stratified) test and CMH
# ---------------------------------------------------------------------------------------------

Stratum = tuple[int, int, int, int]


def _checked_strata(strata: Sequence[Stratum]) -> list[Stratum]:
    kept: list[Stratum] = []
    for a_pass, a_n, b_pass, b_n in strata:
        _check_counts(a_pass, a_n, "incumbent counts")
        _check_counts(b_pass, b_n, "candidate counts")
        if a_n > 0 and b_n > 0:
            kept.append((a_pass, a_n, b_pass, b_n))
    return kept


def _hypergeom_pmf(total_pass: int, a_n: int, b_n: int) -> tuple[int, list[float]]:
    """(lowest value, probabilities) of B's passes in one stratum under the null."""
    total_fail = a_n + b_n - total_pass
    lo, hi = _hypergeom_support(total_pass, a_n, b_n)
    denom = math.comb(a_n + b_n, b_n)
    return lo, [math.comb(total_pass, x) * math.comb(total_fail, b_n - x) / denom for x in range(lo, hi + 1)]


def stratified_null_pmf(strata: Sequence[Stratum]) -> tuple[int, list[float]]:
    """Null distribution of the candidate's total passes, conditional on every stratum's margins.

    Returns ``(offset, pmf)``: ``pmf[i]`` is ``P(T = offset + i)``. This is the exact
    conditional distribution behind the stratified test (the convolution of one
    hypergeometric law per test), exposed for checks and two-sided variants.
    """
    offset = 0
    pmf = [1.0]
    for a_pass, a_n, b_pass, b_n in _checked_strata(strata):
        lo, part = _hypergeom_pmf(a_pass + b_pass, a_n, b_n)
        offset += lo
        if len(part) == 1:
            continue
        out = [0.0] * (len(pmf) + len(part) - 1)
        for i, p_i in enumerate(pmf):
            if p_i == 0.0:
                continue
            for j, q_j in enumerate(part):
                out[i + j] += p_i * q_j
        pmf = out
    return offset, pmf


def _exact_stratified_less(strata: list[Stratum]) -> float:
    """``P(T <= t_obs)`` by convolution, keeping only values that can still end at or below t_obs."""
    parts: list[tuple[int, list[float]]] = []
    observed = 0
    for a_pass, a_n, b_pass, b_n in strata:
        parts.append(_hypergeom_pmf(a_pass + b_pass, a_n, b_n))
        observed += b_pass
    # Work in shifted units: each stratum's value minus its lowest possible value.
    limit = observed - sum(lo for lo, _ in parts)
    pmf = [1.0]
    for _lo, part in parts:
        width = min(len(pmf) + len(part) - 1, limit + 1)
        out = [0.0] * width
        for i, p_i in enumerate(pmf):
            if p_i == 0.0:
                continue
            top = min(len(part), width - i)
            for j in range(top):
                out[i + j] += p_i * part[j]
        pmf = out
    return min(1.0, max(0.0, math.fsum(pmf)))


def cmh_less(strata: Sequence[Stratum], continuity: bool = True) -> float:
    """One-sided Cochran–Mantel–Haenszel test that the candidate's pass rate is lower.

    Normal approximation to the same conditional law as :func:`stratified_test` (its mean and
    hypergeometric variance), with a 1/2 continuity correction by default. Accurate for large
    counts; for small counts prefer :func:`stratified_test`, which is exact.
    """
    kept = _checked_strata(strata)
    observed = 0.0
    mean = 0.0
    var = 0.0
    for a_pass, a_n, b_pass, b_n in kept:
        n = a_n + b_n
        k = a_pass + b_pass
        observed += b_pass
        mean += k * b_n / n
        if n > 1:
            var += k * (n - k) * a_n * b_n / (n * n * (n - 1))
    if var == 0.0:
        return 1.0
    deviation = observed - mean + (0.5 if continuity else 0.0)
    return min(1.0, _NORMAL.cdf(deviation / math.sqrt(var)))


def stratified_test(strata: Sequence[Stratum]) -> float:
    """One-sided p-value that the candidate's pass rate is lower, pooling tests as strata.

    ``strata`` holds ``(inc_pass, inc_n, cand_pass, cand_n)`` per test. This is the *exact
    conditional test* for a 2×2×K table (the exact version of Cochran–Mantel–Haenszel, as
    ``mantelhaen.test(exact=TRUE)`` in R; Zelen 1971 / Mehta et al. 1985): conditional on each
    test's margins, the candidate's total passes are a sum of independent hypergeometric
    variables under "same rate within each test", whatever the rates differ between tests.
    The p-value is that sum's lower tail at the observed total, so it never exceeds its
    nominal level, for small counts and heterogeneous base rates alike.

    With one sample per model per test, only discordant tests (one model passed, the other
    failed) carry information and each is a fair coin under the null: the test reduces to
    the exact sign test (exact McNemar) on the discordant pairs.

    Strata with no samples on either side are ignored; with no informative strata the
    result is 1.0. Very large groups (more than a few million multiply-adds) fall back to
    :func:`cmh_less` with continuity correction.
    """
    kept = _checked_strata(strata)
    if not kept:
        return 1.0
    cost = 0
    width = 1
    for a_pass, a_n, b_pass, b_n in kept:
        lo, hi = _hypergeom_support(a_pass + b_pass, a_n, b_n)
        cost += width * (hi - lo + 1)
        width += hi - lo
    if cost > _EXACT_BUDGET:
        return cmh_less(kept)
    return _exact_stratified_less(kept)


# ---------------------------------------------------------------------------------------------
# Multiple comparisons
# ---------------------------------------------------------------------------------------------


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the order given.

    Sort the m p-values increasingly, p(1) ≤ … ≤ p(m); the adjusted value of p(i) is
    ``max over j ≤ i of min(1, (m − j + 1)·p(j))`` (Holm 1979; R's ``p.adjust(method="holm")``).
    Rejecting every hypothesis whose adjusted value is ≤ alpha keeps the chance of *any* false
    rejection in the family ≤ alpha, whatever the dependence between the tests. Ties get equal
    adjusted values, so the result does not depend on the order of the input.
    """
    m = len(p_values)
    for p in p_values:
        if not 0.0 <= p <= 1.0 or math.isnan(p):
            raise ValueError(f"p-values must be in [0, 1], got {p!r}")
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


# ---------------------------------------------------------------------------------------------
# Sample sizes
# ---------------------------------------------------------------------------------------------


def samples_needed_group(p_incumbents: Sequence[float], drop: float, alpha: float, power: float) -> int:
    """Samples per test (per model) for a group of tests to detect a *drop* in every test.

    Normal approximation for the stratified difference ``D = sum(inc_passes - cand_passes)``
    with the same *n* per test and model, one-sided at *alpha*, with a continuity correction
    of one count (Fleiss; Casagrande, Pike & Smith 1978), which tracks the exact tests here:
    solve ``m·d·n − 1 = z_alpha·sqrt(n·Σ 2·p̄q̄) + z_power·sqrt(n·Σ(p1q1 + p2q2))`` for *n*.
    With one test this is the Fleiss formula for two proportions. Where an incumbent rate is
    below *drop*, that test's candidate rate is taken as 0.
    """
    _check_probability(alpha, "alpha")
    _check_probability(power, "power")
    if not 0.0 < drop <= 1.0:
        raise ValueError(f"drop must be in (0, 1], got {drop!r}")
    if not p_incumbents:
        raise ValueError("p_incumbents must not be empty")
    total_drop = 0.0
    var_null = 0.0
    var_alt = 0.0
    for p1 in p_incumbents:
        if not 0.0 <= p1 <= 1.0:
            raise ValueError(f"incumbent rate must be in [0, 1], got {p1!r}")
        p2 = max(0.0, p1 - drop)
        mean = (p1 + p2) / 2.0
        total_drop += p1 - p2
        var_null += 2.0 * mean * (1.0 - mean)
        var_alt += p1 * (1.0 - p1) + p2 * (1.0 - p2)
    if total_drop <= 0.0:
        raise ValueError("no incumbent rate above 0: a drop cannot be detected")
    z_a = _NORMAL.inv_cdf(1.0 - alpha)
    z_b = _NORMAL.inv_cdf(power)
    b = z_a * math.sqrt(var_null) + z_b * math.sqrt(var_alt)
    # total_drop * s**2 - b * s - 1 = 0 with s = sqrt(n)
    root = (b + math.sqrt(b * b + 4.0 * total_drop)) / (2.0 * total_drop)
    return max(1, math.ceil(root * root - 1e-9))


def samples_needed(p_incumbent: float, drop: float, alpha: float, power: float) -> int:
    """Samples per model for one test to detect a fall from *p_incumbent* to ``p_incumbent - drop``.

    Normal approximation for two proportions with equal *n*, one-sided at *alpha*, with
    Fleiss' continuity correction: ``n = n0/4 · (1 + sqrt(1 + 4/(n0·d)))²`` where
    ``n0 = (z_alpha·sqrt(2p̄q̄) + z_power·sqrt(p1q1 + p2q2))² / d²``. The correction makes it
    track Fisher's exact test, which the per-test gate uses.
    """
    if not 0.0 <= p_incumbent <= 1.0:
        raise ValueError(f"p_incumbent must be in [0, 1], got {p_incumbent!r}")
    if drop > p_incumbent:
        raise ValueError(f"drop ({drop!r}) exceeds the incumbent rate ({p_incumbent!r})")
    return samples_needed_group([p_incumbent], drop, alpha, power)
