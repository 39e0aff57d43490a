"""Continuous scores (a judge's, a similarity, a label's probability) compared as scores.

Unit tests of :func:`pytest_modelmigrate.gate.evidence.score_drop` and of the score findings
``compare`` gives, then end to end through the plugin with the lexical ``similar`` check, which
scores offline.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_modelmigrate.analysis import check_scores
from pytest_modelmigrate.gate import GatePolicy, Tally, compare, decide, evaluate
from pytest_modelmigrate.gate.evidence import ScoreCase, score_drop
from pytest_modelmigrate.results import Outcome

MODELS = ["a", "b"]


def scored(inc: list[list[float]], cand: list[list[float]], *, passed: int = 1, total: int = 1) -> Any:
    """One group ``g`` of len(inc) tests, every sample passing, with one score check ``judge``."""
    groups = {"g": {f"t{i}": {"a": Tally(passed, total), "b": Tally(passed, total)} for i in range(len(inc))}}
    scores = {"g": {f"t{i}": {"a": {"judge": inc[i]}, "b": {"judge": cand[i]}} for i in range(len(inc))}}
    return groups, scores


def judge_finding(inc: list[list[float]], cand: list[list[float]], **policy: Any) -> tuple[str, Any]:
    groups, scores = scored(inc, cand)
    comparison = compare(groups, MODELS, GatePolicy(**policy), scores=scores)
    verdict = comparison.verdicts["g"]["b"]
    (score,) = verdict.scores
    assert score.check == "judge"
    return score.finding, verdict


def test_score_drop_is_the_mean_paired_difference() -> None:
    cases = [ScoreCase("t0", (0.9, 0.8), (0.6, 0.7)), ScoreCase("t1", (0.5,), (0.5,))]
    drop = score_drop(cases, 0.05)
    assert drop is not None
    assert drop.estimate == pytest.approx(((0.85 - 0.65) + 0.0) / 2)
    assert drop.tests == 2 and drop.incumbent_samples == 3 and drop.candidate_samples == 3
    assert drop.low is not None and drop.high is not None and drop.low < drop.estimate < drop.high


def test_one_test_one_sample_has_no_score_interval() -> None:
    drop = score_drop([ScoreCase("t", (0.9,), (0.2,))], 0.05)
    assert drop is not None and drop.low is None and drop.high is None


def test_deterministic_score_drop_is_exact() -> None:
    drop = score_drop([ScoreCase("t", (0.9,), (0.2,))], 0.05, deterministic=True)
    assert drop is not None and drop.low == drop.high == pytest.approx(0.7)


def test_a_clear_score_drop_is_a_regression_of_the_group() -> None:
    finding, verdict = judge_finding([[0.9, 0.92, 0.88]] * 4, [[0.6, 0.62, 0.58]] * 4)
    assert finding == "regressed"
    assert verdict.verdict == "re-engineer" and verdict.finding == "regressed"
    assert "score judge" in verdict.reason


def test_a_score_that_passes_its_threshold_but_falls_is_still_found() -> None:
    """Every sample passes (the pass rate is equal), only the judge's score fell."""
    groups, scores = scored([[0.92, 0.9]] * 5, [[0.75, 0.77]] * 5, passed=2, total=2)
    assert evaluate(groups, MODELS, GatePolicy()).passed is True  # the pass rates alone: no finding
    result = decide(compare(groups, MODELS, GatePolicy(), scores=scores), GatePolicy())
    assert result.passed is False
    assert [r.source for r in result.regressions] == ["score"]


def test_equal_scores_are_non_inferior_and_a_small_certain_drop_too() -> None:
    assert judge_finding([[0.8, 0.8]] * 5, [[0.8, 0.8]] * 5)[0] == "non-inferior"
    # scores that never vary: a 1-point drop is certain, and within the 5-point margin
    assert judge_finding([[0.81, 0.81]] * 5, [[0.80, 0.80]] * 5)[0] == "non-inferior"


def test_a_higher_score_is_an_improvement() -> None:
    assert judge_finding([[0.5, 0.52, 0.48]] * 4, [[0.9, 0.92, 0.88]] * 4)[0] == "improved"


def test_noisy_close_scores_are_undecided_and_keep_the_group_open() -> None:
    inc = [[0.9, 0.3, 0.8], [0.2, 0.7, 0.9]]
    cand = [[0.6, 0.9, 0.2], [0.8, 0.1, 0.7]]
    groups, scores = scored(inc, cand, passed=200, total=200)
    verdict = compare(groups, MODELS, GatePolicy(), scores=scores).verdicts["g"]["b"]
    assert verdict.scores[0].finding == "undecided"
    # the pass rate alone is non-inferior (200/200 on both), the score is not settled
    assert verdict.finding == "undecided" and verdict.verdict == "investigate"
    assert "score judge: undecided" in verdict.reason


def test_a_deterministic_group_compares_the_score_difference_with_the_margin() -> None:
    assert judge_finding([[0.9]], [[0.8]], deterministic=True)[0] == "regressed"
    assert judge_finding([[0.9]], [[0.87]], deterministic=True)[0] == "non-inferior"
    assert judge_finding([[0.8]], [[0.9]], deterministic=True)[0] == "improved"


def test_scores_take_a_third_of_the_alpha_when_present() -> None:
    """With score comparisons, per test, per group and scores share the candidate's alpha."""
    groups = {"g": {f"t{i}": {"a": Tally(19, 20), "b": Tally(12, 20)} for i in range(3)}}
    without = compare(groups, MODELS, GatePolicy()).verdicts["g"]["b"]
    scores = {"g": {f"t{i}": {"a": {"judge": [0.9]}, "b": {"judge": [0.9]}} for i in range(3)}}
    with_scores = compare(groups, MODELS, GatePolicy(), scores=scores).verdicts["g"]["b"]
    assert without.p_adjusted is not None and with_scores.p_adjusted is not None
    assert with_scores.p_adjusted == pytest.approx(min(1.0, without.p_adjusted * 3 / 2))


def test_bad_score_margin_is_refused() -> None:
    with pytest.raises(ValueError, match="score_margin"):
        GatePolicy(score_margin=0.0)


def outcome(model: str, checks: list[dict[str, Any]], samples: list[str] | None = None) -> Outcome:
    return Outcome("t.py::t[x]", "t.py::t", model, "g", "passed", samples or [], checks)


def test_check_scores_reads_one_score_per_sample_and_skips_drift() -> None:
    checks = [
        {"name": "judge", "passed": True, "score": 0.8, "sample": 0},
        {"name": "judge", "passed": True, "score": 0.6, "sample": 0},  # asked twice: the mean
        {"name": "judge", "passed": True, "score": 0.9, "sample": 1},
        {"name": "drift", "passed": True, "score": 1.0, "sample": 0},  # the incumbent's own answer
        {"name": "contains", "passed": True, "score": None, "sample": 0},
    ]
    found = check_scores([outcome("a", checks, ["passed", "passed"])])
    assert found == {"g": {"t.py::t": {"a": {"judge": [pytest.approx(0.7), 0.9]}}}}


# -- end to end ------------------------------------------------------------------------------------

SIMILAR = """
import pytest

REFERENCE = "refund the duplicate charge on order A-1042 today"

@pytest.mark.prompt("reply")
@pytest.mark.samples(3)
@pytest.mark.parametrize("i", range(4))
def test_reply(model, checks, i):
    text = REFERENCE if model == "a" else "we will look at your order soon"
    checks.similar(text, REFERENCE, min_score=0.0)  # passes on both: only the score differs
"""


def test_a_similarity_score_that_falls_fails_the_gate_end_to_end(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=SIMILAR)
    result = pytester.runpytest(
        "--models=a,b", "--migration-gate=no-regression", "--migration-json=out.json", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=8)
    assert result.ret == 1
    run = json.loads((pytester.path / "out.json").read_text())
    verdict = run["gate"]["verdicts"]["reply"]["b"]
    (score,) = verdict["scores"]
    assert score["check"] == "similar" and score["finding"] == "regressed"
    assert score["delta"]["tests"] == 4 and score["delta"]["estimate"] > 0.5
    assert verdict["verdict"] == "re-engineer"
    assert [r["source"] for r in run["gate"]["regressions"]] == ["score"]
    (rec,) = run["gate"]["recommendations"]
    assert rec["action"] == "re-engineer first"
    assert rec["regressed"]["reply"]["checks"] == ["score of similar"]


def test_the_score_margin_setting_is_read(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=SIMILAR)
    pytester.makeini("[pytest]\nmodelmigrate_score_margin = 0.99\n")
    result = pytester.runpytest("--models=a,b", "--migration-json=out.json", "-p", "no:randomly")
    result.assert_outcomes(passed=8)
    run = json.loads((pytester.path / "out.json").read_text())
    assert run["gate"]["policy"]["score_margin"] == pytest.approx(0.99)
    assert run["gate"]["verdicts"]["reply"]["b"]["scores"][0]["finding"] == "non-inferior"
    pytester.makeini("[pytest]\nmodelmigrate_score_margin = 2\n")
    bad = pytester.runpytest("--models=a,b", "-p", "no:randomly")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*modelmigrate_score_margin*"])
