from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from conftest import load_benchmark
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_modelmigrate.gate import MODES, GatePolicy, Tally, evaluate

if TYPE_CHECKING:
    pass

Matrix = dict[str, dict[str, dict[str, Tally]]]
MODELS = ["gpt-4o", "gpt-5"]


def _group(n_tests: int, inc: tuple[int, int], cand: tuple[int, int]) -> dict[str, dict[str, Tally]]:
    return {f"test_{i}": {"gpt-4o": Tally(*inc), "gpt-5": Tally(*cand)} for i in range(n_tests)}


def scenario() -> Matrix:
    """One group regresses, one improves, one is equally flaky on both (70% at 20 samples)."""
    return {
        "triage": _group(4, (19, 20), (11, 20)),
        "summary": _group(4, (15, 20), (20, 20)),
        "extract": _group(4, (14, 20), (14, 20)),
    }


# -- Tally and policy --------------------------------------------------------------------------


def test_tally() -> None:
    t = Tally(7, 10)
    assert t.rate == pytest.approx(0.7)
    assert t.failed == 3
    assert Tally(0, 0).rate is None
    assert Tally(3, 3).pass_hat_k == 1.0
    assert t.pass_hat_k == 0.0
    data = json.loads(json.dumps(t.to_dict()))
    assert data["passed"] == 7
    assert data["wilson95"][0] < 0.7 < data["wilson95"][1]
    assert Tally.from_dict(data) == t


@pytest.mark.parametrize(("args", "message"), [((-1, 2), "non-negative"), ((3, 2), "exceeds")])
def test_tally_rejects_bad_counts(args: tuple[int, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Tally(*args)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "lenient"}, "gate mode must be one of strict, no-regression, report"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"power": 1.0}, "power"),
        ({"min_drop": 0.0}, "min_drop"),
        ({"tolerance": -0.1}, "tolerance"),
        ({"group_tolerance": {"g": 1.0}}, "tolerance for 'g'"),
        ({"correction": "bonferroni"}, "correction must be one of holm, holm-group, none"),
    ],
)
def test_policy_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GatePolicy(**kwargs)  # type: ignore[arg-type]


def test_unknown_incumbent() -> None:
    with pytest.raises(ValueError, match="unknown incumbent 'claude'"):
        evaluate(scenario(), MODELS, GatePolicy(incumbent="claude"))


def test_models_validated() -> None:
    with pytest.raises(ValueError, match="empty"):
        evaluate({}, [], GatePolicy())
    with pytest.raises(ValueError, match="unique"):
        evaluate({}, ["a", "a"], GatePolicy())


# -- the three groups --------------------------------------------------------------------------


def test_no_regression_fails_for_exactly_the_regressing_group() -> None:
    result = evaluate(scenario(), MODELS, GatePolicy())
    assert not result.passed
    assert {r.group for r in result.regressions} == {"triage"}
    assert result.verdicts["triage"]["gpt-5"].verdict == "re-engineer"
    assert result.verdicts["triage"]["gpt-5"].finding == "regressed"
    assert result.verdicts["summary"]["gpt-5"].verdict == "migrate"
    assert result.verdicts["summary"]["gpt-5"].finding == "improved"
    # equally flaky at 20 samples: not a regression, but not shown non-inferior either
    extract = result.verdicts["extract"]["gpt-5"]
    assert (extract.verdict, extract.finding) == ("investigate", "undecided")
    assert extract.samples_needed is not None
    assert extract.samples_needed > 20
    group_level = [r for r in result.regressions if r.test is None]
    assert len(group_level) == 1
    assert group_level[0].incumbent_rate == pytest.approx(0.95)
    assert group_level[0].candidate_rate == pytest.approx(0.55)
    last = result.lines()[-1]
    assert last.startswith("migration gate (no-regression): FAILED")
    assert "triage" in last
    assert "95% -> 55%" in last
    assert "extract" not in last
    assert "summary" not in last


def test_report_mode_passes_and_still_lists_regressions() -> None:
    result = evaluate(scenario(), MODELS, GatePolicy(mode="report"))
    assert result.passed
    assert result.lines()[-1].startswith("migration gate (report): PASSED")
    assert result.regressions  # still computed and shown
    assert "triage" in result.lines()[-1]


def test_strict_mode_fails_on_any_failure_and_counts_them() -> None:
    result = evaluate(scenario(), MODELS, GatePolicy(mode="strict"))
    assert not result.passed
    assert result.failures == {"gpt-4o": 12, "gpt-5": 8}
    perfect = {"g": _group(3, (5, 5), (5, 5))}
    assert evaluate(perfect, MODELS, GatePolicy(mode="strict")).passed


def test_failures_are_reported_even_when_the_gate_passes() -> None:
    result = evaluate({"extract": _group(2, (14, 20), (14, 20))}, MODELS, GatePolicy())
    assert result.passed
    assert result.failures == {"gpt-4o": 2, "gpt-5": 2}


def test_equally_flaky_with_noise_is_investigate_never_regressed() -> None:
    groups = {
        "extract": {
            "a": {"gpt-4o": Tally(14, 20), "gpt-5": Tally(13, 20)},
            "b": _group(1, (14, 20), (14, 20))["test_0"],
        }
    }
    result = evaluate(groups, MODELS, GatePolicy())
    assert result.passed
    assert not result.regressions
    verdict = result.verdicts["extract"]["gpt-5"]
    assert verdict.verdict == "investigate"
    assert verdict.finding == "undecided"
    assert [t.status for t in verdict.tests] == ["investigate", "ok"]
    assert verdict.samples_needed is not None
    assert verdict.samples_needed > 20
    assert f"~{verdict.samples_needed} samples per test would decide it at 80% power" in verdict.reason
    assert "not below the margin" in verdict.reason


# -- one sample per model (deterministic replay) -----------------------------------------------


ONE_SAMPLE_FLIP = {
    "g": {
        "t1": {"gpt-4o": Tally(1, 1), "gpt-5": Tally(0, 1)},
        "t2": {"gpt-4o": Tally(1, 1), "gpt-5": Tally(1, 1)},
    }
}
# fail -> pass and fail -> fail are never regressions
ONE_SAMPLE_NO_LOSS = {
    "g": {
        "t1": {"gpt-4o": Tally(0, 1), "gpt-5": Tally(1, 1)},
        "t2": {"gpt-4o": Tally(0, 1), "gpt-5": Tally(0, 1)},
    }
}


def test_one_sample_pass_to_fail_is_changed_not_a_regression() -> None:
    result = evaluate(ONE_SAMPLE_FLIP, MODELS, GatePolicy())
    assert result.passed
    assert not result.regressions
    verdict = result.verdicts["g"]["gpt-5"]
    assert [(t.test, t.status, t.p_value) for t in verdict.tests] == [
        ("t1", "changed", None),
        ("t2", "ok", None),
    ]
    assert verdict.changed == ["t1"]
    assert (verdict.verdict, verdict.finding) == ("investigate", "undecided")
    assert "one-sample flip(s) pass -> fail" in verdict.reason
    assert "1 sample each" not in "\n".join(result.lines())
    assert evaluate(ONE_SAMPLE_NO_LOSS, MODELS, GatePolicy()).passed


@pytest.mark.parametrize(
    "policy", [GatePolicy(deterministic=True), GatePolicy(deterministic_groups=("g",))], ids=["all", "group"]
)
def test_one_sample_pass_to_fail_is_a_regression_when_deterministic(policy: GatePolicy) -> None:
    result = evaluate(ONE_SAMPLE_FLIP, MODELS, policy)
    assert not result.passed
    assert [(r.test, r.p_value) for r in result.regressions] == [("t1", None)]
    verdict = result.verdicts["g"]["gpt-5"]
    assert (verdict.verdict, verdict.finding, verdict.deterministic) == ("re-engineer", "regressed", True)
    assert [t.status for t in verdict.tests] == ["regressed", "ok"]
    assert "(deterministic)" in result.lines()[-1]
    assert "1 sample each" not in result.lines()[-1]
    assert evaluate(ONE_SAMPLE_NO_LOSS, MODELS, policy).passed
    # a group not declared deterministic keeps the stochastic rule
    other = evaluate(ONE_SAMPLE_FLIP, MODELS, GatePolicy(deterministic_groups=("other",)))
    assert other.passed
    assert other.verdicts["g"]["gpt-5"].changed == ["t1"]


@pytest.mark.parametrize(("losses", "group_regressed"), [(4, False), (5, True)])
def test_one_sample_group_level_is_the_sign_test(losses: int, group_regressed: bool) -> None:
    tests = {f"l{i}": {"gpt-4o": Tally(1, 1), "gpt-5": Tally(0, 1)} for i in range(losses)}
    tests.update({f"s{i}": {"gpt-4o": Tally(1, 1), "gpt-5": Tally(1, 1)} for i in range(5)})
    # the group test at alpha itself (no correction across groups): 5 losses, no wins, p = 1/32
    result = evaluate({"g": tests}, MODELS, GatePolicy(correction="holm-group"))
    verdict = result.verdicts["g"]["gpt-5"]
    assert [r.test for r in result.regressions] == ([None] if group_regressed else [])
    assert verdict.p_value == pytest.approx(0.5**losses)
    assert verdict.verdict == ("re-engineer" if group_regressed else "investigate")
    assert verdict.finding == ("regressed" if group_regressed else "undecided")
    # the flips alone are "changed", never per-test regressions
    assert [t.status for t in verdict.tests].count("changed") == losses
    # the default splits alpha between the test and group families: adjusted p = 2 * 0.5**losses
    default = evaluate({"g": tests}, MODELS, GatePolicy()).verdicts["g"]["gpt-5"]
    assert default.p_value == pytest.approx(0.5**losses)
    assert default.p_adjusted == pytest.approx(2 * 0.5**losses)
    assert default.finding == "undecided"


# -- tolerance, missing data, roles ------------------------------------------------------------


def test_group_tolerance_overrides_the_default() -> None:
    groups = {"loose": _group(5, (20, 20), (17, 20)), "tight": _group(5, (20, 20), (17, 20))}
    result = evaluate(groups, MODELS, GatePolicy(group_tolerance={"loose": 0.2}))
    assert {r.group for r in result.regressions} == {"tight"}
    assert result.verdicts["tight"]["gpt-5"].verdict == "re-engineer"
    loose = result.verdicts["loose"]["gpt-5"]
    # within its tolerance: no test lower beyond it and not regressed; but a 15-point drop is not
    # non-inferior at the 5-point margin, so not "migrate" either
    assert [t.status for t in loose.tests] == ["ok"] * 5
    assert (loose.verdict, loose.finding) == ("investigate", "undecided")
    assert {t.status for t in result.verdicts["tight"]["gpt-5"].tests} == {"investigate"}


def test_small_comparison_is_investigate_with_samples_needed() -> None:
    result = evaluate({"g": _group(1, (3, 3), (2, 3))}, MODELS, GatePolicy())
    verdict = result.verdicts["g"]["gpt-5"]
    assert verdict.verdict == "investigate"
    assert verdict.tests[0].status == "investigate"
    assert verdict.tests[0].samples_needed is not None
    assert result.passed


def test_missing_samples_make_the_group_partial() -> None:
    groups = {"g": {"a": {"gpt-4o": Tally(5, 5), "gpt-5": Tally(5, 5)}, "b": {"gpt-4o": Tally(5, 5)}}}
    verdict = evaluate(groups, MODELS, GatePolicy()).verdicts["g"]["gpt-5"]
    assert verdict.verdict == "investigate"
    assert "lack samples" in verdict.reason
    assert [t.status for t in verdict.tests] == ["ok", "missing"]


def test_incumbent_can_be_any_model() -> None:
    result = evaluate(scenario(), MODELS, GatePolicy(incumbent="gpt-5"))
    assert result.incumbent == "gpt-5"
    assert result.candidates == ("gpt-4o",)
    # from gpt-5's side, summary is the regression (100% -> 75%) and triage improves
    assert {r.group for r in result.regressions} == {"summary"}


def test_single_model_has_nothing_to_gate() -> None:
    result = evaluate(scenario(), ["gpt-4o"], GatePolicy())
    assert result.passed
    assert result.verdicts == {"extract": {}, "summary": {}, "triage": {}}


def test_lines_end_with_exactly_one_gate_line_and_result_is_json() -> None:
    result = evaluate(scenario(), [*MODELS, "o3"], GatePolicy())
    lines = result.lines()
    assert sum(line.startswith("migration gate (") for line in lines) == 1
    assert lines[-1] == result.line == "migration gate (no-regression): FAILED: " + result.reason
    data = json.loads(json.dumps(result.to_dict()))
    assert data["passed"] is False
    assert data["verdicts"]["triage"]["gpt-5"]["verdict"] == "re-engineer"
    assert data["verdicts"]["triage"]["o3"]["verdict"] == "investigate"  # o3 has no samples


# -- multiple comparisons ----------------------------------------------------------------------


def _borderline_group(n_tests: int = 10) -> dict[str, dict[str, Tally]]:
    # 9/10 vs 4/10: one-sided Fisher p = 0.029 on each test: each test alone is "significant"
    # at 0.05, none survives Holm over ten tests at alpha / 2 (adjusted p = 2 * 0.29).
    return {f"t{i}": {"gpt-4o": Tally(9, 10), "gpt-5": Tally(4, 10)} for i in range(n_tests)}


def test_ten_borderline_tests_are_regressions_without_correction_only() -> None:
    group = _borderline_group()
    p = group["t0"]["gpt-5"]
    none = evaluate({"g": group}, MODELS, GatePolicy(correction="none"))
    holm = evaluate({"g": group}, MODELS, GatePolicy(correction="holm"))
    none_tests = none.verdicts["g"]["gpt-5"].tests
    holm_tests = holm.verdicts["g"]["gpt-5"].tests
    assert p.passed == 4
    assert all(t.p_value == pytest.approx(0.0286, abs=1e-4) for t in none_tests)
    assert [t.status for t in none_tests] == ["regressed"] * 10
    assert [t.p_adjusted for t in none_tests] == [t.p_value for t in none_tests]
    assert "regressed" not in {t.status for t in holm_tests}
    assert {t.status for t in holm_tests} == {"investigate"}
    # Holm over ten equal p-values multiplies each by ten, then by 2K = 2 (half of alpha goes to
    # the per-test family; capped at 1)
    assert all(t.p_value is not None for t in holm_tests)
    assert all(t.p_adjusted == pytest.approx(min(1.0, 2 * 10 * t.p_value)) for t in holm_tests if t.p_value)
    assert len([r for r in none.regressions if r.test is not None]) == 10
    # The pooled group, one hypothesis, still catches the consistent drop (90% -> 40%).
    assert [r.test for r in holm.regressions] == [None]
    assert holm.verdicts["g"]["gpt-5"].verdict == "re-engineer"


def test_holm_across_groups_adjusts_group_and_test_p_values() -> None:
    # Two groups: the second unchanged. Under "holm" the per-test family is every test of the
    # candidate (8, across both groups) and the group family both groups, each Holm-adjusted and
    # scaled by 2K = 2 (alpha is split in half between the two families).
    groups = {"a": _group(4, (19, 20), (11, 20)), "b": _group(4, (15, 20), (15, 20))}
    holm = evaluate(groups, MODELS, GatePolicy())
    local = evaluate(groups, MODELS, GatePolicy(correction="holm-group"))
    a_holm, a_local = holm.verdicts["a"]["gpt-5"], local.verdicts["a"]["gpt-5"]
    raw = a_holm.tests[0].p_value
    assert raw is not None
    assert a_local.tests[0].p_adjusted == pytest.approx(4 * raw)  # Holm, 4 equal p-values
    # a's four equal p-values are the smallest of the eight: Holm gives 8 * raw, times 2
    assert a_holm.tests[0].p_adjusted == pytest.approx(min(1.0, 2 * 8 * raw))
    b = holm.verdicts["b"]["gpt-5"]
    assert a_holm.p_value is not None
    assert b.p_value is not None
    assert a_holm.p_adjusted == pytest.approx(2 * 2 * a_holm.p_value)  # the smaller of two, times 2
    assert b.p_adjusted == pytest.approx(min(1.0, 2 * max(2 * a_holm.p_value, b.p_value)))
    assert a_local.p_adjusted == a_local.p_value
    assert {r.group for r in holm.regressions} == {"a"}
    assert all(r.p_adjusted is not None and r.p_adjusted >= (r.p_value or 0.0) for r in holm.regressions)


def test_adjusted_p_values_in_lines_and_dict() -> None:
    result = evaluate(scenario(), MODELS, GatePolicy())
    data = json.loads(json.dumps(result.to_dict()))
    assert data["policy"]["correction"] == "holm"
    triage = data["verdicts"]["triage"]["gpt-5"]
    assert triage["p_adjusted"] >= triage["p_value"]
    assert all(t["p_adjusted"] >= t["p_value"] for t in triage["tests"])
    assert all("p_adjusted" in r for r in data["regressions"])
    assert "correction holm" in result.lines()[0]
    assert "adj. p=" in result.lines()[-1]
    assert "adj. group p=" in "\n".join(result.lines())
    # No correction: the adjusted values are the raw ones and are not printed twice.
    plain = evaluate(scenario(), MODELS, GatePolicy(correction="none"))
    assert "adj." not in "\n".join(plain.lines())


def test_one_sample_rule_is_not_corrected() -> None:
    # Ten deterministic groups, each with one pass -> fail at one sample: every one is a
    # regression, with no p-value for a correction to dilute.
    groups = {f"g{i}": {"t": {"gpt-4o": Tally(1, 1), "gpt-5": Tally(0, 1)}} for i in range(10)}
    result = evaluate(groups, MODELS, GatePolicy(deterministic=True))
    assert [(r.test, r.p_value, r.p_adjusted) for r in result.regressions] == [("t", None, None)] * 10
    assert not result.passed
    # not deterministic: ten flips are ten "changed" tests, none a regression on its own
    stochastic = evaluate(groups, MODELS, GatePolicy())
    assert not stochastic.regressions
    assert all(per["gpt-5"].changed == ["t"] for per in stochastic.verdicts.values())


# -- properties --------------------------------------------------------------------------------


@st.composite
def matrices(draw: st.DrawFn) -> Matrix:
    out: Matrix = {}
    for g in range(draw(st.integers(min_value=1, max_value=3))):
        tests: dict[str, dict[str, Tally]] = {}
        samples = draw(st.sampled_from([1, 3, 10]))
        for t in range(draw(st.integers(min_value=1, max_value=4))):
            tests[f"t{t}"] = {
                m: Tally(draw(st.integers(min_value=0, max_value=samples)), samples) for m in MODELS
            }
        out[f"g{g}"] = tests
    return out


@settings(max_examples=40, deadline=None)
@given(matrices(), st.randoms(use_true_random=False))
def test_gate_is_invariant_to_order(matrix: Matrix, rnd: object) -> None:
    import random

    assert isinstance(rnd, random.Random)
    shuffled: Matrix = {}
    for group in rnd.sample(list(matrix), len(matrix)):
        tests = matrix[group]
        shuffled[group] = {t: tests[t] for t in rnd.sample(list(tests), len(tests))}
    policy = GatePolicy()
    assert evaluate(shuffled, MODELS, policy).to_dict() == evaluate(matrix, MODELS, policy).to_dict()


@settings(max_examples=40, deadline=None)
@given(matrices())
def test_modes(matrix: Matrix) -> None:
    any_failure = any(t.failed for tests in matrix.values() for per in tests.values() for t in per.values())
    assert evaluate(matrix, MODELS, GatePolicy(mode="report")).passed
    assert evaluate(matrix, MODELS, GatePolicy(mode="strict")).passed is not any_failure
    nr = evaluate(matrix, MODELS, GatePolicy(mode="no-regression"))
    assert nr.passed is (not nr.regressions)
    for mode in MODES:
        result = evaluate(matrix, MODELS, GatePolicy(mode=mode))
        status = "PASSED" if result.passed else "FAILED"
        assert result.lines()[-1] == f"migration gate ({mode}): {status}: {result.reason}"


@settings(max_examples=40, deadline=None)
@given(matrices())
def test_identical_models_never_regress(matrix: Matrix) -> None:
    same = {
        g: {t: {m: per["gpt-4o"] for m in MODELS} for t, per in tests.items()} for g, tests in matrix.items()
    }
    result = evaluate(same, MODELS, GatePolicy())
    assert result.passed
    assert not result.regressions
    for per in result.verdicts.values():
        for v in per.values():
            assert v.finding != "regressed", v.reason
            assert all(t.status == "ok" for t in v.tests), v.reason
            if not v.rates["candidate"]:
                # nothing passes at all: there is no evidence the prompt works
                assert (v.verdict, v.finding) == ("investigate", "no-evidence"), v.reason
            elif v.finding == "non-inferior":
                assert v.verdict == "migrate", v.reason
            else:
                # too few samples to bound the drop: undecided, with the samples that would decide it
                assert (v.verdict, v.finding) == ("investigate", "undecided"), v.reason
                taken = max(
                    t.total for tests in same.values() for per_m in tests.values() for t in per_m.values()
                )
                assert v.samples_needed is not None and v.samples_needed > taken, v.reason


@pytest.mark.parametrize(
    "rates",
    [
        pytest.param((1.0, 1.0, 1.0), id="all-pass"),
        pytest.param((0.7, 0.7, 0.7, 0.7), id="flaky"),
        pytest.param((1.0, 0.5), id="mixed"),
    ],
)
def test_identical_models_with_enough_samples_are_non_inferior(rates: tuple[float, ...]) -> None:
    def identical(n: int) -> Matrix:
        return {"g": {f"t{i}": {m: Tally(round(r * n), n) for m in MODELS} for i, r in enumerate(rates)}}

    few = evaluate(identical(10), MODELS, GatePolicy()).verdicts["g"]["gpt-5"]
    assert (few.verdict, few.finding) == ("investigate", "undecided"), few.reason
    assert few.samples_needed is not None
    assert few.samples_needed > 10
    # at the samples the advice names, the same rates bound the drop below the margin
    enough = evaluate(identical(few.samples_needed), MODELS, GatePolicy()).verdicts["g"]["gpt-5"]
    assert (enough.verdict, enough.finding) == ("migrate", "non-inferior"), enough.reason
    assert enough.drop is not None
    assert enough.drop.estimate == pytest.approx(0.0)
    assert enough.drop.high is not None
    assert enough.drop.high < GatePolicy().margin


# -- the simulation benchmark, smoke only ------------------------------------------------------


def test_simulation_smoke() -> None:
    sim = load_benchmark("gate_simulation")
    rows = sim.run_simulation(reps=3, seed=1, samples=(2, 5), group_size=3)
    assert len(rows) == 8
    assert all(0.0 <= r.false_alarm <= 1.0 and 0.0 <= r.detection <= 1.0 for r in rows)
    table = sim.markdown_table(rows)
    assert table.splitlines()[0].startswith("| samples per test |")
    assert sim.fisher_power(0.9, 0.75, 10) == pytest.approx(0.086, abs=0.005)
    suite = sim.run_suite_simulation(reps=2, seed=1, samples=(3,), n_groups=2, group_size=3)
    assert [r.correction for r in suite] == ["holm", "holm-group", "none"]
    assert all(0.0 <= r.false_alarm <= 1.0 and 0.0 <= r.detection <= 1.0 for r in suite)
    assert sim.suite_markdown_table(suite).splitlines()[0].startswith("| samples per test | correction |")
