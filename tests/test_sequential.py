"""Adaptive sampling: the calibrated repeated sign test of ``pytest_modelmigrate.sequential``."""

from __future__ import annotations

import itertools
import json
import math
from typing import TYPE_CHECKING

import pytest
from conftest import load_benchmark
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_modelmigrate.sequential import (
    CONTINUE,
    NOT_REGRESSED,
    REGRESSED,
    AdaptivePolicy,
    SequentialComparison,
    boundary,
    crossing_probability,
    nominal_level,
    replay_decisions,
    sign_test_p,
)

if TYPE_CHECKING:
    pass

Pair = tuple[bool, bool]
LOSS: Pair = (True, False)
WIN: Pair = (False, True)
BOTH: Pair = (True, True)
NONE: Pair = (False, False)

pairs_strategy = st.lists(st.sampled_from([LOSS, WIN, BOTH, NONE]), min_size=0, max_size=20)


def _crossing_fixed(alpha: float, pairs: int) -> float:
    """Crossing probability of the naive boundary (the fixed-N sign test at alpha at every look)."""
    bounds = []
    for d in range(pairs + 1):
        crit = next((k for k in range(d + 1) if d > 0 and sign_test_p(d, k) <= alpha), d + 1)
        bounds.append(crit)
    return crossing_probability(bounds, pairs)


# --- known values ---------------------------------------------------------------------------


def test_sign_test_p_matches_scipy() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    for d in range(1, 16):
        for losses in range(d + 1):
            expected = scipy_stats.binomtest(losses, d, 0.5, alternative="greater").pvalue
            assert sign_test_p(d, losses) == pytest.approx(expected, rel=1e-12)
    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(5, 5) == 1 / 32
    with pytest.raises(ValueError, match="losses"):
        sign_test_p(3, 4)


def test_boundary_for_the_default_policy() -> None:
    # a* = 67/2048: 5 losses of 5 (p = 1/32) still stops, 7 of 8 (p = 9/256 > a*) no longer does
    assert nominal_level(0.05, 20) == 67 / 2048
    assert boundary(0.05, 20) == (1, 2, 3, 4, 5, 5, 6, 7, 8, 8, 9, 9, 10, 11, 11, 12, 13, 13, 14, 14, 15)
    assert crossing_probability(boundary(0.05, 20), 20) == pytest.approx(0.044907, abs=1e-6)
    # the naive rule (fixed-N sign test at 0.05 after every pair) exceeds alpha over the same horizon
    assert _crossing_fixed(0.05, 20) == pytest.approx(0.055196, abs=1e-6)
    assert _crossing_fixed(0.05, 200) > 0.2


@pytest.mark.parametrize("pairs", [1, 5, 20, 60, 200])
@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1])
def test_calibration_holds_alpha(alpha: float, pairs: int) -> None:
    assert crossing_probability(boundary(alpha, pairs), pairs) <= alpha
    assert nominal_level(alpha, pairs) <= alpha


def test_crossing_probability_by_enumeration() -> None:
    """Every outcome of 6 rounds at p = 1/2 (each of the 4 pairs has probability 1/4)."""
    pairs = 6
    bounds = boundary(0.3, pairs)
    total = 0.0
    for outcome in itertools.product([LOSS, WIN, BOTH, NONE], repeat=pairs):
        losses = wins = 0
        for pair in outcome:
            losses += pair == LOSS
            wins += pair == WIN
            if losses >= bounds[losses + wins]:
                total += 0.25**pairs
                break
    assert crossing_probability(bounds, pairs) == pytest.approx(total, abs=1e-12)


def _false_alarm_exact(policy: AdaptivePolicy, p_inc: float, p_cand: float) -> float:
    """P(REGRESSED) of the full procedure (futility included) for one test, by exact recursion."""
    q = {
        LOSS: p_inc * (1 - p_cand),
        WIN: (1 - p_inc) * p_cand,
        BOTH: p_inc * p_cand,
        NONE: (1 - p_inc) * (1 - p_cand),
    }
    # state: (losses, wins, pairs) -> probability; SequentialComparison state is a function of these
    states = {(0, 0, 0): 1.0}
    hit = 0.0
    while states:
        nxt: dict[tuple[int, int, int], float] = {}
        for (losses, wins, n), mass in states.items():
            for pair, prob in q.items():
                if prob == 0.0:
                    continue
                key = (losses + (pair == LOSS), wins + (pair == WIN), n + 1)
                nxt[key] = nxt.get(key, 0.0) + mass * prob
        states = {}
        for key, mass in nxt.items():
            comp = SequentialComparison(policy)
            comp.extend([LOSS] * key[0] + [WIN] * key[1] + [BOTH] * (key[2] - key[0] - key[1]))
            decision = comp.decision()
            if decision.status == REGRESSED:
                hit += mass
            elif decision.status == CONTINUE:
                states[key] = mass
    return hit


def test_false_alarm_of_the_procedure_is_below_alpha() -> None:
    """Exact false-alarm rate of the whole rule (with futility) over a grid of equal rates.

    Every decision is a function of the counts (losses, wins, pairs) only, so a recursion over
    those counts, dropping the states that stopped, gives the exact probability of REGRESSED."""
    policy = AdaptivePolicy(max_samples=12)
    worst = max(_false_alarm_exact(policy, p, p) for p in (0.3, 0.5, 0.7, 0.9))
    assert worst <= policy.alpha


# --- policy and API ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_samples": 21}, "must not exceed"),
        ({"min_samples": 0}, "at least 1"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.0}, "alpha"),
        ({"futility": 1.0}, "futility"),
        ({"futility": -0.1}, "futility"),
        ({"max_samples": 2.5}, "integer"),
    ],
)
def test_bad_policy(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AdaptivePolicy(**kwargs)  # type: ignore[arg-type]


def test_bad_tests_and_horizon() -> None:
    with pytest.raises(ValueError, match="tests"):
        SequentialComparison(AdaptivePolicy(), tests=0)
    comp = SequentialComparison(AdaptivePolicy(min_samples=1, max_samples=2, futility=0.0))
    comp.add(*BOTH)
    comp.add(*BOTH)
    assert comp.decision().status == NOT_REGRESSED
    with pytest.raises(ValueError, match="already decided"):
        comp.add(*BOTH)


def test_five_losses_regress_and_all_pass_stops_at_min_samples() -> None:
    decisions = replay_decisions([LOSS] * 5)
    assert [d.status for d in decisions] == [CONTINUE] * 4 + [REGRESSED]
    assert decisions[-1].p_value == 1 / 32
    assert decisions[-1].boundary == 5
    decisions = replay_decisions([BOTH] * 20)
    assert len(decisions) == 5  # futility at min_samples: 10 calls instead of 40
    assert decisions[-1].status == NOT_REGRESSED
    assert decisions[-1].predictive is not None
    assert decisions[-1].predictive < 0.05


def test_to_dict_is_json() -> None:
    comp = SequentialComparison()
    comp.extend([LOSS, WIN, BOTH])
    data = json.loads(json.dumps(comp.to_dict()))
    assert data["decision"]["status"] == CONTINUE
    assert data["losses"] == 1
    assert data["policy"]["max_samples"] == 20


def test_group_horizon_and_rounds() -> None:
    policy = AdaptivePolicy()
    comp = SequentialComparison(policy, tests=3)
    assert comp.horizon == 60
    assert crossing_probability(comp.bounds, 60) <= policy.alpha
    decisions = replay_decisions([BOTH] * 60, policy, tests=3)
    assert all(d.pairs % 3 == 0 for d in decisions)
    assert decisions[-1].status == NOT_REGRESSED
    assert decisions[-1].rounds == 5


# --- properties -------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(pairs_strategy)
def test_replay_equals_live(pairs: list[Pair]) -> None:
    live = SequentialComparison()
    seen = []
    for pair in pairs:
        live.add(*pair)
        seen.append(live.decision())
        if seen[-1].final:
            break
    assert replay_decisions(pairs) == seen
    assert replay_decisions(pairs) == replay_decisions(list(pairs))  # deterministic


@settings(max_examples=200, deadline=None)
@given(pairs_strategy)
def test_final_decisions_never_change(pairs: list[Pair]) -> None:
    comp = SequentialComparison()
    final = None
    for pair in pairs:
        if final is not None:
            with pytest.raises(ValueError):
                comp.add(*pair)
            assert comp.decision() == final
            continue
        comp.add(*pair)
        if comp.decision().final:
            final = comp.decision()
    assert final is None or comp.decision() == final


@settings(max_examples=300, deadline=None)
@given(pairs_strategy, st.integers(min_value=0, max_value=19))
def test_more_losses_never_make_regressed_less_likely(pairs: list[Pair], index: int) -> None:
    if not pairs:
        return
    index %= len(pairs)
    worse = list(pairs)
    worse[index] = LOSS
    before = replay_decisions(pairs)
    after = replay_decisions(worse)
    if before and before[-1].status == REGRESSED:
        assert after[-1].status == REGRESSED
        assert len(after) <= len(before)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([LOSS, WIN, BOTH, NONE]), min_size=30, max_size=30),
    st.integers(min_value=1, max_value=10),
    st.integers(min_value=0, max_value=10),
)
def test_bounds_respected(pairs: list[Pair], low: int, extra: int) -> None:
    policy = AdaptivePolicy(min_samples=low, max_samples=low + extra)
    decisions = replay_decisions(pairs, policy)
    last = decisions[-1]
    assert last.final
    assert last.pairs <= policy.max_samples
    if last.status == NOT_REGRESSED:
        assert last.pairs >= policy.min_samples
    if last.pairs == policy.max_samples:
        assert last.status in (REGRESSED, NOT_REGRESSED)
    assert all(not d.final for d in decisions[:-1])


# --- the simulation ---------------------------------------------------------------------------


def test_simulation_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    sim = load_benchmark("adaptive_simulation")
    assert sim.main(["--reps", "20", "--group-reps", "2", "--group-size", "3", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "| equal rates | adaptive (this rule) |" in out
    assert "naive: Fisher after every round" in out
    rows = sim.run_tests(30, 2, AdaptivePolicy())
    for row in rows:
        assert 0.0 <= row.regressed <= 1.0
        assert 0.0 < row.calls <= 1.0
        assert not math.isnan(row.agree_fisher)
