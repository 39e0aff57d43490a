"""The findings behind each verdict, the paired drop Δ and the one recommendation per candidate.

Pure modules only (no pytest plugin): :func:`pytest_modelmigrate.gate.evaluate` and
:func:`~pytest_modelmigrate.gate.compare` on a pass-rate matrix, :mod:`~pytest_modelmigrate.gate.evidence`
and :func:`~pytest_modelmigrate.gate.recommend.recommend`.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from statistics import NormalDist
from typing import Any

import pytest

from pytest_modelmigrate.gate import FINDINGS, GatePolicy, Tally, TestDesign, compare, evaluate
from pytest_modelmigrate.gate.evidence import Case, paired_drop, samples_to_decide, t_quantile
from pytest_modelmigrate.gate.recommend import ACTIONS, RecommendPolicy, recommend

MODELS = ["inc", "cand"]
Group = dict[str, dict[str, Tally]]


def group(n_tests: int, inc: tuple[int, int], cand: tuple[int, int], *, prefix: str = "t") -> Group:
    return {f"{prefix}{i}": {"inc": Tally(*inc), "cand": Tally(*cand)} for i in range(n_tests)}


def one_flip() -> Group:
    """Two tests at one sample per model: the first flips pass -> fail on the candidate."""
    return {
        "t0": {"inc": Tally(1, 1), "cand": Tally(0, 1)},
        "t1": {"inc": Tally(1, 1), "cand": Tally(1, 1)},
    }


def verdict_of(groups: dict[str, Group], policy: GatePolicy | None = None, name: str = "g") -> Any:
    decision = evaluate(groups, MODELS, policy or GatePolicy())
    return decision, decision.verdicts[name]["cand"]


# -- findings ----------------------------------------------------------------------------------


def test_identical_candidate_with_many_samples_is_non_inferior_and_migrates() -> None:
    decision, v = verdict_of({"g": group(3, (200, 200), (200, 200))})
    assert v.finding == "non-inferior"
    assert v.verdict == "migrate"
    assert v.drop is not None
    assert v.drop.estimate == 0
    assert v.drop.high is not None and v.drop.high < GatePolicy().margin
    assert v.drop.tests == 3
    assert decision.passed


def test_identical_candidate_with_one_sample_each_is_undecided_without_changed() -> None:
    decision, v = verdict_of({"g": group(3, (1, 1), (1, 1))})
    assert v.finding == "undecided"
    assert v.verdict == "investigate"
    assert v.changed == []
    assert "changed" not in v.reason
    assert "flip" not in v.reason
    assert all(t.status == "ok" for t in v.tests)
    assert decision.passed
    assert decision.regressions == ()


def test_a_one_sample_flip_is_changed_not_a_regression() -> None:
    decision, v = verdict_of({"g": one_flip()})
    statuses = {t.test: t.status for t in v.tests}
    assert statuses == {"t0": "changed", "t1": "ok"}
    assert v.changed == ["t0"]
    assert v.verdict == "investigate"
    assert v.finding == "undecided"
    assert "changed" in v.reason
    assert decision.passed
    assert decision.regressions == ()
    assert v.to_dict()["changed"] == ["t0"]


@pytest.mark.parametrize(
    "policy",
    [GatePolicy(deterministic=True), GatePolicy(deterministic_groups=("g",))],
    ids=["deterministic", "deterministic_groups"],
)
def test_a_one_sample_flip_in_a_deterministic_group_is_a_regression(policy: GatePolicy) -> None:
    decision, v = verdict_of({"g": one_flip()}, policy)
    assert {t.test: t.status for t in v.tests} == {"t0": "regressed", "t1": "ok"}
    assert v.finding == "regressed"
    assert v.verdict == "re-engineer"
    assert v.deterministic is True
    assert v.drop is not None and v.drop.method == "exact"
    assert v.drop.estimate == pytest.approx(0.5)
    assert not decision.passed
    assert [r.test for r in decision.regressions] == ["t0"]
    assert decision.exit_status(tests_failed=True, other_failures=0) == 1


def test_deterministic_groups_only_touch_the_named_group() -> None:
    decision = evaluate({"g": one_flip(), "h": one_flip()}, MODELS, GatePolicy(deterministic_groups=("g",)))
    assert decision.verdicts["g"]["cand"].finding == "regressed"
    assert decision.verdicts["h"]["cand"].finding == "undecided"
    assert decision.verdicts["h"]["cand"].changed == ["t0"]


def test_a_clear_drop_is_regressed() -> None:
    decision, v = verdict_of({"g": group(5, (45, 50), (25, 50))})
    assert v.finding == "regressed"
    assert v.verdict == "re-engineer"
    assert v.drop is not None
    assert v.drop.estimate == pytest.approx(0.4)
    assert v.drop.low is not None and v.drop.low > 0
    assert not decision.passed


def test_a_clear_improvement_is_improved() -> None:
    decision, v = verdict_of({"g": group(3, (60, 100), (95, 100))})
    assert v.finding == "improved"
    assert v.verdict == "migrate"
    assert v.drop is not None and v.drop.estimate == pytest.approx(-0.35)
    assert v.drop.high is not None and v.drop.high < 0
    assert decision.passed


@pytest.mark.parametrize(
    "tests",
    [group(3, (1, 1), (1, 1)), group(3, (5, 5), (5, 5)), one_flip(), group(4, (8, 10), (6, 10))],
    ids=["one-sample", "five-samples", "flip", "lower"],
)
def test_samples_advice_on_undecided_groups_is_more_than_taken(tests: Group) -> None:
    _, v = verdict_of({"g": tests})
    assert v.finding == "undecided", v.reason
    taken = max(max(t.total for t in per.values()) for per in tests.values())
    assert v.samples_needed is not None
    assert v.samples_needed > taken
    assert f"~{v.samples_needed} samples per test" in v.reason


def test_one_test_lower_in_a_ten_test_group_advises_more_samples() -> None:
    tests = group(9, (10, 10), (10, 10))
    tests["x"] = {"inc": Tally(10, 10), "cand": Tally(8, 10)}
    _, v = verdict_of({"g": tests})
    assert v.finding == "undecided", v.reason
    assert v.samples_needed is not None and v.samples_needed > 10
    lower = [t for t in v.tests if t.status == "investigate"]
    assert [t.test for t in lower] == ["x"]
    assert lower[0].samples_needed is not None and lower[0].samples_needed > 10


def test_findings_are_declared() -> None:
    assert set(FINDINGS) == {"regressed", "improved", "non-inferior", "undecided", "no-evidence"}


def test_no_evidence_when_the_candidate_never_ran() -> None:
    tests = {"t0": {"inc": Tally(5, 5), "cand": Tally(0, 0)}}
    _, v = verdict_of({"g": tests})
    assert v.finding == "no-evidence"
    assert v.verdict == "investigate"
    assert v.drop is None


# -- margin ------------------------------------------------------------------------------------


def test_the_margin_decides_non_inferiority() -> None:
    tests = group(3, (30, 30), (30, 30))
    _, narrow = verdict_of({"g": tests}, GatePolicy(margin=0.01))
    _, wide = verdict_of({"g": tests}, GatePolicy(margin=0.3))
    assert narrow.drop is not None and narrow.drop.high is not None
    assert 0.01 <= narrow.drop.high < 0.3
    assert narrow.finding == "undecided"
    assert wide.finding == "non-inferior"


@pytest.mark.parametrize("margin", [0.0, 1.0, -0.1, 2.0])
def test_bad_margin_is_rejected(margin: float) -> None:
    with pytest.raises(ValueError, match="margin"):
        GatePolicy(margin=margin)


# -- clusters and weights ----------------------------------------------------------------------


def test_one_cluster_gives_no_interval_so_no_non_inferiority() -> None:
    tests = group(6, (60, 60), (60, 60))
    design = {t: TestDesign(cluster="doc-1") for t in tests}
    plain = compare({"g": tests}, MODELS, GatePolicy()).verdicts["g"]["cand"]
    v = compare({"g": tests}, MODELS, GatePolicy(), design).verdicts["g"]["cand"]
    assert plain.finding == "non-inferior"  # the same tallies without clusters
    assert v.drop is not None
    assert v.drop.clusters == 1
    assert v.drop.high is None and v.drop.low is None
    assert v.finding != "non-inferior"
    assert v.verdict == "investigate"
    assert "no interval" in v.reason


def test_many_clusters_are_counted() -> None:
    tests = group(6, (60, 60), (60, 60))
    design = {t: TestDesign(cluster=f"doc-{i % 3}") for i, t in enumerate(sorted(tests))}
    v = compare({"g": tests}, MODELS, GatePolicy(), design).verdicts["g"]["cand"]
    assert v.drop is not None
    assert v.drop.clusters == 3
    assert v.drop.method == "cluster-robust"
    assert v.drop.high is not None
    assert v.to_dict()["delta"]["clusters"] == 3


def test_tests_without_a_cluster_are_their_own_cluster() -> None:
    tests = group(4, (60, 60), (60, 60))
    design = {"t0": TestDesign(cluster="doc"), "t1": TestDesign(cluster="doc")}
    v = compare({"g": tests}, MODELS, GatePolicy(), design).verdicts["g"]["cand"]
    assert v.drop is not None and v.drop.clusters == 3


def test_weights_change_the_estimate() -> None:
    tests = {
        "t0": {"inc": Tally(10, 10), "cand": Tally(5, 10)},
        "t1": {"inc": Tally(10, 10), "cand": Tally(10, 10)},
    }
    plain = compare({"g": tests}, MODELS, GatePolicy()).verdicts["g"]["cand"].drop
    heavy = (
        compare({"g": tests}, MODELS, GatePolicy(), {"t0": TestDesign(weight=3)}).verdicts["g"]["cand"].drop
    )
    light = (
        compare({"g": tests}, MODELS, GatePolicy(), {"t1": TestDesign(weight=3)}).verdicts["g"]["cand"].drop
    )
    assert plain is not None and heavy is not None and light is not None
    assert plain.estimate == pytest.approx(0.25)  # (0.5 + 0) / 2
    assert heavy.estimate == pytest.approx(0.375)  # (3 * 0.5 + 0) / 4
    assert light.estimate == pytest.approx(0.125)  # (0.5 + 3 * 0) / 4


# -- the alpha split across candidates ---------------------------------------------------------


def test_two_candidates_get_larger_adjusted_p_values_than_one() -> None:
    tests = group(3, (20, 20), (15, 20))
    one = evaluate({"g": tests}, MODELS, GatePolicy()).verdicts["g"]["cand"]
    doubled = {name: {**per, "other": per["cand"]} for name, per in tests.items()}
    two = evaluate({"g": doubled}, ["inc", "cand", "other"], GatePolicy()).verdicts["g"]["cand"]
    assert one.p_value == pytest.approx(two.p_value)  # the raw p-value is the same
    assert one.p_adjusted is not None and two.p_adjusted is not None
    assert two.p_adjusted > one.p_adjusted
    for a, b in zip(one.tests, two.tests, strict=True):
        assert a.p_adjusted is not None and b.p_adjusted is not None
        assert b.p_adjusted > a.p_adjusted
    assert one.drop is not None and two.drop is not None
    assert two.drop.alpha < one.drop.alpha  # the non-inferiority bound is split too


# -- evidence ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [(0.975, 3, 3.182), (0.975, 10, 2.228), (0.95, 30, 1.697), (0.975, 1, 12.706), (0.975, 2, 4.303)],
)
def test_t_quantile_matches_tables(p: float, df: int, expected: float) -> None:
    assert t_quantile(p, df) == pytest.approx(expected, rel=0.01)


def test_t_quantile_is_symmetric_and_rejects_zero_df() -> None:
    assert t_quantile(0.025, 5) == pytest.approx(-t_quantile(0.975, 5))
    with pytest.raises(ValueError, match="degrees of freedom"):
        t_quantile(0.975, 0)


def test_paired_drop_is_none_without_cases() -> None:
    assert paired_drop([], 0.05) is None
    assert paired_drop([Case("t", 0, 0, 0, 0)], 0.05) is None


def test_paired_drop_independent_interval_is_centred_on_the_estimate() -> None:
    # equal differences: no spread between the tests, so the Agresti-Caffo variance is the one used
    cases = [Case("t0", 9, 10, 7, 10), Case("t1", 9, 10, 7, 10)]
    drop = paired_drop(cases, 0.05)
    assert drop is not None
    assert drop.method == "agresti-caffo"
    assert drop.estimate == pytest.approx(0.2)
    assert drop.low is not None and drop.high is not None
    assert drop.high - drop.estimate == pytest.approx(drop.estimate - drop.low)
    assert drop.tests == 2 and drop.incumbent_samples == 20 and drop.candidate_samples == 20


def test_paired_drop_all_pass_still_carries_uncertainty() -> None:
    drop = paired_drop([Case("t", 5, 5, 5, 5)], 0.05)
    assert drop is not None and drop.high is not None
    assert drop.estimate == 0 and drop.high > 0


def test_paired_drop_smaller_alpha_widens_the_interval() -> None:
    cases = [Case("t0", 8, 10, 7, 10)]
    wide, narrow = paired_drop(cases, 0.005), paired_drop(cases, 0.1)
    assert wide is not None and narrow is not None
    assert wide.high is not None and narrow.high is not None
    assert wide.high > narrow.high


def test_paired_drop_deterministic_is_exact() -> None:
    drop = paired_drop([Case("t0", 1, 1, 0, 1), Case("t1", 1, 1, 1, 1)], 0.05, deterministic=True)
    assert drop is not None
    assert drop.method == "exact"
    assert drop.low == drop.high == drop.estimate == pytest.approx(0.5)


def test_paired_drop_counts_discordant_rounds() -> None:
    case = Case("t", 2, 3, 2, 3, outcomes_inc=(True, True, False), outcomes_cand=(False, True, True))
    drop = paired_drop([case], 0.05)
    assert drop is not None
    assert (drop.losses, drop.wins) == (1, 1)
    assert drop.to_dict()["discordant"] == {"losses": 1, "wins": 1}
    unordered = paired_drop([Case("t", 2, 3, 2, 3)], 0.05)
    assert unordered is not None and unordered.losses is None


def test_paired_drop_cluster_robust_uses_t() -> None:
    cases = [Case(f"t{i}", 10, 10, 10 - (i % 2) * 4, 10, cluster=f"c{i % 4}") for i in range(8)]
    drop = paired_drop(cases, 0.05)
    assert drop is not None
    assert drop.method == "cluster-robust"
    assert drop.clusters == 4
    assert drop.low is not None and drop.high is not None and drop.high > drop.estimate > drop.low


@pytest.mark.parametrize(
    "cases",
    [
        [Case("t", 1, 1, 1, 1)],
        [Case("t", 10, 10, 10, 10), Case("u", 10, 10, 9, 10)],
        [Case("t", 30, 30, 25, 30)],
        [Case("t", 7, 10, 7, 10, cluster="a"), Case("u", 5, 10, 5, 10, cluster="b")],
    ],
)
def test_samples_to_decide_is_more_than_taken(cases: list[Case]) -> None:
    n = samples_to_decide(cases, margin=0.05, ni_alpha=0.05, regression_alpha=0.025, power=0.8)
    taken = max(max(c.inc_total, c.cand_total) for c in cases)
    assert n is not None
    assert n > taken


def test_samples_to_decide_none_without_cases() -> None:
    assert samples_to_decide([], margin=0.05, ni_alpha=0.05, regression_alpha=0.025, power=0.8) is None
    assert (
        samples_to_decide(
            [Case("t", 0, 0, 3, 3)], margin=0.05, ni_alpha=0.05, regression_alpha=0.025, power=0.8
        )
        is None
    )


def test_samples_to_decide_grows_with_a_tighter_margin() -> None:
    cases = [Case("t", 5, 5, 5, 5)]
    loose = samples_to_decide(cases, margin=0.2, ni_alpha=0.05, regression_alpha=0.025, power=0.8)
    tight = samples_to_decide(cases, margin=0.02, ni_alpha=0.05, regression_alpha=0.025, power=0.8)
    assert loose is not None and tight is not None
    assert tight > loose


def test_samples_to_decide_is_the_smallest_that_decides() -> None:
    """At the advised count the projected interval clears the margin; one sample fewer it does not."""
    cases = [Case("t0", 4, 4, 4, 4), Case("t1", 4, 4, 4, 4)]
    n = samples_to_decide(cases, margin=0.05, ni_alpha=0.05, regression_alpha=0.025, power=0.8)
    assert n is not None

    def decides(k: int) -> bool:
        se = math.sqrt(sum(2 * ((k + 1) / (k + 2)) * (1 / (k + 2)) / k for _ in cases)) / len(cases)
        return (NormalDist().inv_cdf(0.95) + NormalDist().inv_cdf(0.8)) * se <= 0.05

    assert decides(n)
    assert not decides(n - 1)


# -- recommend ---------------------------------------------------------------------------------

TODAY = date(2026, 1, 15)


def verdicts(**findings: str) -> dict[str, dict[str, dict[str, Any]]]:
    """group -> {"cand": {"finding": ...}} for the one candidate."""
    return {g: {"cand": {"finding": f}} for g, f in findings.items()}


def deltas(cost: float | None = None, latency: float | None = None) -> dict[str, dict[str, Any]]:
    found: dict[str, Any] = {}
    if cost is not None:
        found["cost_per_test_usd"] = {"ratio": cost}
    if latency is not None:
        found["latency_p95_ms"] = {"ratio": latency}
    return {"cand": found}


def rec(
    found: dict[str, dict[str, dict[str, Any]]],
    policy: RecommendPolicy | None = None,
    **kwargs: Any,
) -> Any:
    kwargs.setdefault("deltas", {})
    out, sunset = recommend(
        found, incumbent="inc", candidates=["cand"], policy=policy or RecommendPolicy(), today=TODAY, **kwargs
    )
    assert len(out) == 1
    assert out[0].action in ACTIONS
    return out[0], sunset


def test_migrate_on_an_improvement() -> None:
    r, sunset = rec(verdicts(a="improved", b="non-inferior"))
    assert r.action == "migrate"
    assert r.improved == ("a",)
    assert r.non_inferior == ("b",)
    assert r.headline == "migrate to cand"
    assert any("improved on a" in reason for reason in r.reasons)
    assert sunset is None
    assert r.line.startswith("cand: migrate: ")


def test_migrate_on_a_cost_saving_of_at_least_min_gain() -> None:
    policy = RecommendPolicy(min_gain=0.1)
    r, _ = rec(verdicts(a="non-inferior"), policy, deltas=deltas(cost=0.9))
    assert r.action == "migrate"
    assert r.cost_ratio == pytest.approx(0.9)
    assert any("cost 0.90x" in reason for reason in r.reasons)
    r, _ = rec(verdicts(a="non-inferior"), policy, deltas=deltas(cost=0.95))
    assert r.action == "defer"  # a 5% saving is below min_gain


def test_migrate_on_a_latency_saving() -> None:
    r, _ = rec(verdicts(a="non-inferior"), RecommendPolicy(min_gain=0.2), deltas=deltas(latency=0.5))
    assert r.action == "migrate"
    assert any("p95 latency 0.50x" in reason for reason in r.reasons)


def test_defer_when_only_non_inferior() -> None:
    r, _ = rec(verdicts(a="non-inferior", b="non-inferior"), deltas=deltas(cost=1.0, latency=1.0))
    assert r.action == "defer"
    assert r.headline == "cand: defer"
    assert "no sunset pressure" in r.line


def test_sunset_pressure_turns_defer_into_migrate() -> None:
    when = (TODAY + timedelta(days=30)).isoformat()
    r, sunset = rec(verdicts(a="non-inferior"), RecommendPolicy(sunset={"inc": when}))
    assert r.action == "migrate"
    assert r.must_migrate_by == when
    assert sunset is not None
    assert sunset.days_left == 30
    assert sunset.pressing
    assert sunset.best == "cand"
    assert (
        sunset.line
        == f"must migrate by {when} (30 days left): best candidate cand, 0 group(s) to re-engineer"
    )
    assert sunset.to_dict()["line"] == sunset.line


def test_sunset_beyond_the_horizon_is_no_pressure() -> None:
    when = (TODAY + timedelta(days=200)).isoformat()
    r, sunset = rec(verdicts(a="non-inferior"), RecommendPolicy(sunset={"inc": when}, horizon_days=90))
    assert r.action == "defer"
    assert r.must_migrate_by is None
    assert sunset is not None
    assert sunset.days_left == 200
    assert not sunset.pressing
    assert sunset.line == f"inc retires on {when} (200 days left)"


def test_sunset_past_counts_days_past() -> None:
    when = (TODAY - timedelta(days=3)).isoformat()
    _, sunset = rec(verdicts(a="regressed"), RecommendPolicy(sunset={"inc": when}))
    assert sunset is not None
    assert sunset.days_left == -3
    assert sunset.pressing
    assert "3 days past" in sunset.line
    assert "1 group(s) to re-engineer" in sunset.line


def test_sunset_by_model_name() -> None:
    when = (TODAY + timedelta(days=10)).isoformat()
    out, sunset = recommend(
        verdicts(a="non-inferior"),
        incumbent="inc",
        candidates=["cand"],
        policy=RecommendPolicy(sunset={"gpt-old": when}),
        deltas={},
        today=TODAY,
        names={"inc": "gpt-old"},
    )
    assert sunset is not None and sunset.days_left == 10
    assert out[0].action == "migrate"


def test_sunset_names_the_best_candidate() -> None:
    when = (TODAY + timedelta(days=5)).isoformat()
    found = {"a": {"x": {"finding": "regressed"}, "y": {"finding": "non-inferior"}}}
    out, sunset = recommend(
        found, incumbent="inc", candidates=["x", "y"], policy=RecommendPolicy(sunset={"inc": when}),
        deltas={}, today=TODAY,
    )  # fmt: skip
    assert [r.action for r in out] == ["re-engineer first", "migrate"]
    assert sunset is not None and sunset.best == "y"
    assert "best candidate y, 0 group(s)" in sunset.line


def test_investigate_with_extra_calls() -> None:
    r, _ = rec(verdicts(a="undecided", b="non-inferior"), extra={"cand": (120, 0.5)})
    assert r.action == "investigate"
    assert r.undecided == ("a",)
    assert r.extra_calls == 120
    assert r.extra_cost_usd == pytest.approx(0.5)
    assert "~120 more call(s) (~$0.50) would decide them" in r.line
    r, _ = rec(verdicts(a="no-evidence"), extra={"cand": (7, None)})
    assert r.action == "investigate"
    assert "cost unknown" in r.line


def test_re_engineer_first_lists_the_failing_checks() -> None:
    failing = {"a": {"cand": ["json_schema", "label_confidence"]}, "b": {"cand": ["label_confidence"]}}
    r, _ = rec(verdicts(a="regressed", b="regressed", c="undecided"), failing_checks=failing)
    assert r.action == "re-engineer first"
    assert r.regressed["a"] == {"checks": ["json_schema", "label_confidence"], "remedy": "re-engineer"}
    assert r.regressed["b"] == {"checks": ["label_confidence"], "remedy": "re-threshold"}
    assert "b (re-threshold: label_confidence)" in r.line


def test_re_engineer_without_checks_says_failing_tests() -> None:
    r, _ = rec(verdicts(a="regressed"))
    assert r.regressed["a"] == {"checks": [], "remedy": "re-engineer"}
    assert "a (re-engineer: failing tests or dataset rules)" in r.line


@pytest.mark.parametrize(
    ("policy", "delta", "text"),
    [
        (RecommendPolicy(max_cost_ratio=1.5), deltas(cost=2.0), "over the budget 1.5x"),
        (
            RecommendPolicy(max_latency_ratio=1.2),
            deltas(latency=1.3),
            "p95 latency 1.30x, over the budget 1.2x",
        ),
    ],
    ids=["cost", "latency"],
)
def test_dont_migrate_over_a_budget(policy: RecommendPolicy, delta: dict[str, Any], text: str) -> None:
    r, _ = rec(verdicts(a="improved"), policy, deltas=delta)
    assert r.action == "don't migrate"
    assert text in r.line
    r, _ = rec(verdicts(a="improved"), policy, deltas=deltas(cost=1.0, latency=1.0))
    assert r.action == "migrate"  # within both budgets


def test_dont_migrate_when_a_blocking_group_regressed() -> None:
    r, _ = rec(verdicts(a="regressed", b="improved"), RecommendPolicy(blocking=("a",)))
    assert r.action == "don't migrate"
    assert "blocking prompt(s) regressed: a" in r.line
    r, _ = rec(verdicts(a="non-inferior", b="regressed"), RecommendPolicy(blocking=("a",)))
    assert r.action == "re-engineer first"  # the blocking group did not regress


def test_recommend_policy_round_trips() -> None:
    policy = RecommendPolicy(
        max_cost_ratio=1.5, max_latency_ratio=2.0, min_gain=0.2, sunset={"inc": "2027-01-01"},
        horizon_days=30, blocking=("a",),
    )  # fmt: skip
    assert RecommendPolicy.from_dict(policy.to_dict()) == policy


def test_recommendation_to_dict_has_the_documented_keys() -> None:
    r, _ = rec(verdicts(a="non-inferior"), deltas=deltas(cost=0.5, latency=0.8))
    data = r.to_dict()
    for key in (
        "candidate", "action", "headline", "line", "reasons", "regressed", "undecided", "improved",
        "cost_ratio", "latency_p95_ratio", "extra_calls", "extra_cost_usd", "must_migrate_by",
    ):  # fmt: skip
        assert key in data
    assert data["cost_ratio"] == 0.5
    assert data["latency_p95_ratio"] == 0.8
    assert data["action"] == "migrate"


def test_evaluate_feeds_recommend() -> None:
    """The verdicts' to_dict() form is what recommend reads."""
    groups = {"ok": group(3, (200, 200), (200, 200)), "bad": group(5, (45, 50), (25, 50))}
    decision = evaluate(groups, MODELS, GatePolicy())
    found = {g: {c: v.to_dict() for c, v in per.items()} for g, per in decision.verdicts.items()}
    r, _ = rec(found)
    assert r.action == "re-engineer first"
    assert list(r.regressed) == ["bad"]
    assert r.non_inferior == ("ok",)


def test_paired_drop_variance_divides_by_the_samples_taken() -> None:
    """Smoothed rates over n, not n + 2: one sample each keeps a wide interval (n + 2 under-covers)."""
    one = Case("t", 1, 1, 1, 1)
    p = 2 / 3
    assert one.variance == pytest.approx(2 * p * (1 - p) / 1)
    many = Case("t", 60, 60, 60, 60)
    q = 61 / 62
    assert many.variance == pytest.approx(2 * q * (1 - q) / 60)
    drop = paired_drop([one] * 10, 0.05)
    assert drop is not None and drop.high is not None
    assert drop.high == pytest.approx(1.6448536269514722 * (10 * one.variance) ** 0.5 / 10)


def test_ratio_interval_is_paired_by_test() -> None:
    from pytest_modelmigrate.metrics import ratio_interval

    inc = {"a": 1.0, "b": 2.0, "c": 3.0}
    assert ratio_interval(inc, {"a": 0.5, "b": 1.0, "c": 1.5}) == {
        "ratio": 0.5,
        "low": 0.5,
        "high": 0.5,
        "tests": 3,
    }
    noisy = ratio_interval(inc, {"a": 0.4, "b": 1.2, "c": 1.4, "d": 9.0})  # d: not paired, left out
    assert noisy is not None and noisy["tests"] == 3
    assert noisy["ratio"] == pytest.approx(3.0 / 6.0)
    assert noisy["low"] < noisy["ratio"] < noisy["high"]
    assert ratio_interval({"a": 1.0}, {"a": 2.0}) is None  # one test: no interval
    assert ratio_interval({"a": 0.0, "b": 0.0}, {"a": 1.0, "b": 1.0}) is None  # nothing to divide by


def test_the_recommendation_quotes_the_paired_cost_with_its_interval() -> None:
    paired = {"cand": {"cost_per_test": {"ratio": 0.5, "low": 0.4, "high": 0.6, "tests": 9}}}
    out, _ = recommend(
        verdicts(a="non-inferior"),
        incumbent="inc",
        candidates=["cand"],
        policy=RecommendPolicy(),
        deltas=deltas(cost=0.55),
        paired=paired,
    )
    (r,) = out
    assert r.action == "migrate" and r.cost_ratio == 0.5 and r.cost_interval == (0.4, 0.6)
    assert "cost 0.50x [0.40-0.60] the incumbent's" in r.line


def test_paired_ratios_do_not_depend_on_the_order_of_a_rows_outcomes() -> None:
    """A dataset's examples are outcomes of one matrix row: they add up, in any order (a merged run
    lists them in shard order)."""
    from pytest_modelmigrate.metrics import compute_metrics
    from pytest_modelmigrate.pricing import Price

    def outcome(model: str, example: int, latency: float) -> dict[str, Any]:
        usage = {"input_tokens": 10 * (example + 1), "output_tokens": 5}
        call = {"latency_ms": latency, "usage": usage, "model_requested": model}
        return {"test": "row", "model": model, "group": "g", "total": 1, "calls": [call]}

    outcomes = [outcome(m, e, 100.0 * (e + 1) * (2 if m == "b" else 1)) for m in "ab" for e in range(3)]
    outcomes += [outcome(m, 0, 50.0) | {"test": "other"} for m in "ab"]
    prices = {"a": Price(1.0, 1.0), "b": Price(2.0, 2.0)}
    forward = compute_metrics(outcomes, ["a", "b"], "a", prices)["paired"]
    backward = compute_metrics(list(reversed(outcomes)), ["a", "b"], "a", prices)["paired"]
    assert forward == backward
    assert forward["b"]["cost_per_test"]["tests"] == 2
    assert forward["b"]["latency_mean"]["ratio"] == pytest.approx((400 + 50) / (200 + 50))


def test_a_saving_whose_interval_reaches_one_is_no_reason_to_migrate() -> None:
    """Cost 0.8x on the point but [0.5-1.1] paired by test: noise, not a saving; defer."""
    noisy = {"cand": {"cost_per_test": {"ratio": 0.8, "low": 0.5, "high": 1.1, "tests": 4}}}
    clear = {"cand": {"cost_per_test": {"ratio": 0.8, "low": 0.75, "high": 0.85, "tests": 40}}}
    for paired, action in ((noisy, "defer"), (clear, "migrate")):
        out, _ = recommend(
            verdicts(a="non-inferior"),
            incumbent="inc",
            candidates=["cand"],
            policy=RecommendPolicy(),
            deltas=deltas(cost=0.8),
            paired=paired,
        )
        assert out[0].action == action, paired
