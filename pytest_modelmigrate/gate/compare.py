"""Fixed-N comparison of each candidate with the incumbent: verdicts and regressions.

Pure module (no pytest). Input is the aggregated matrix ``group -> test -> model -> Tally``;
output is a :class:`Comparison` with a verdict per prompt group and candidate and the
regressions found. Whether the gate passes is :func:`pytest_modelmigrate.gate.decide`'s to
say. The rules are documented in ``docs/gate.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_modelmigrate import stats

from .evidence import Case, Drop, ScoreCase, paired_drop, samples_to_decide, score_drop
from .regression import Regression, fmt_p_pair, pct

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "CORRECTIONS",
    "FINDINGS",
    "MODES",
    "VERDICTS",
    "Comparison",
    "GatePolicy",
    "ScoreComparison",
    "Tally",
    "TestComparison",
    "TestDesign",
    "Verdict",
    "compare",
]

MODES = ("strict", "no-regression", "report")
VERDICTS = ("migrate", "re-engineer", "investigate")
# what the statistics found, behind each verdict: regressed -> re-engineer; improved and
# non-inferior -> migrate; undecided and no-evidence -> investigate
FINDINGS = ("regressed", "improved", "non-inferior", "undecided", "no-evidence")
CORRECTIONS = ("holm", "holm-group", "none")

# Rates are ratios of small integers; compare them with a little slack so that, e.g.,
# 0.7 - 0.6 is not taken as "more than 0.1".
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Tally:
    """Pass count of one test on one model over its samples."""

    passed: int
    total: int
    # per-sample results in recording order, when known (the discordant pairs); not compared
    outcomes: tuple[bool, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.passed < 0 or self.total < 0:
            raise ValueError(f"Tally counts must be non-negative, got {self.passed}/{self.total}")
        if self.passed > self.total:
            raise ValueError(f"Tally passed ({self.passed}) exceeds total ({self.total})")

    @property
    def failed(self) -> int:
        return self.total - self.passed

    @property
    def rate(self) -> float | None:
        """Pass rate, or None when there are no samples."""
        return self.passed / self.total if self.total else None

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """Wilson score interval of the pass rate."""
        return stats.wilson_interval(self.passed, self.total, confidence)

    @property
    def pass_hat_k(self) -> float | None:
        """pass^k with k = total: 1.0 when every sample passed, else 0.0."""
        return stats.pass_hat_k(self.passed, self.total) if self.total else None

    def to_dict(self) -> dict[str, Any]:
        low, high = self.interval()
        return {
            "passed": self.passed,
            "total": self.total,
            "rate": self.rate,
            "wilson95": [low, high],
            "pass_hat_k": self.pass_hat_k,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tally:
        return cls(passed=int(data["passed"]), total=int(data["total"]))


def _tally_dict(tally: Tally | None, shared: dict[tuple[int, int], dict[str, Any]]) -> dict[str, Any] | None:
    """``tally.to_dict()``, one dict per count within ``shared``: a verdict's per-test tallies
    repeat (1/1, 3/3 ...), and a run dict is read, never changed, so its tests share them
    instead of holding two dicts and an interval each."""
    if tally is None:
        return None
    key = (tally.passed, tally.total)
    found = shared.get(key)
    if found is None:
        found = shared[key] = tally.to_dict()
    return found


@dataclass(frozen=True)
class GatePolicy:
    """How the gate decides. ``incumbent=None`` means the first model given to :func:`evaluate`."""

    mode: str = "no-regression"
    incumbent: str | None = None
    tolerance: float = 0.0
    group_tolerance: Mapping[str, float] = field(default_factory=dict)
    alpha: float = 0.05
    power: float = 0.8
    min_drop: float = 0.15
    correction: str = "holm"
    margin: float = 0.05
    deterministic: bool = False
    deterministic_groups: tuple[str, ...] = ()
    score_margin: float = 0.05
    looks: int = 1  # --samples=auto: the looks the adaptive design can take (non-inferiority pays for each)

    def __post_init__(self) -> None:
        if self.looks < 1:
            raise ValueError(f"looks must be at least 1, got {self.looks!r}")
        if not 0.0 < self.margin < 1.0:
            raise ValueError(f"margin must be strictly between 0 and 1, got {self.margin!r}")
        if not 0.0 < self.score_margin < 1.0:
            raise ValueError(f"score_margin must be strictly between 0 and 1, got {self.score_margin!r}")
        if self.mode not in MODES:
            raise ValueError(f"gate mode must be one of {', '.join(MODES)}; got {self.mode!r}")
        if self.correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}; got {self.correction!r}")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be strictly between 0 and 1, got {self.alpha!r}")
        if not 0.0 < self.power < 1.0:
            raise ValueError(f"power must be strictly between 0 and 1, got {self.power!r}")
        if not 0.0 < self.min_drop <= 1.0:
            raise ValueError(f"min_drop must be in (0, 1], got {self.min_drop!r}")
        for name, value in [("tolerance", self.tolerance), *self.group_tolerance.items()]:
            if not 0.0 <= value < 1.0:
                raise ValueError(f"tolerance for {name!r} must be in [0, 1), got {value!r}")

    def tolerance_for(self, group: str) -> float:
        return self.group_tolerance.get(group, self.tolerance)

    def is_deterministic(self, group: str) -> bool:
        """Temperature-0 prompts: the recorded answer is the behaviour, a flip is a regression."""
        return self.deterministic or group in self.deterministic_groups

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "incumbent": self.incumbent,
            "tolerance": self.tolerance,
            "group_tolerance": dict(self.group_tolerance),
            "alpha": self.alpha,
            "power": self.power,
            "min_drop": self.min_drop,
            "correction": self.correction,
            "margin": self.margin,
            "deterministic": self.deterministic,
            "deterministic_groups": list(self.deterministic_groups),
            "score_margin": self.score_margin,
            "looks": self.looks,
        }


@dataclass(frozen=True, slots=True)
class TestComparison:
    """One test, candidate against incumbent.

    ``status``: ``ok`` (not lower by more than the tolerance), ``regressed`` (decided),
    ``investigate`` (lower, not decided), ``changed`` (one sample per model, pass turned to
    fail: evidence for the group's tests, not a regression on its own unless the group is
    deterministic) or ``missing`` (no samples on one side). ``p_value`` is the raw one-sided
    Fisher p-value, ``p_adjusted`` the value after the policy's correction (the one compared
    with alpha); both None at one sample each.
    """

    __test__ = False  # not a pytest test class

    test: str
    status: str
    incumbent: Tally | None
    candidate: Tally | None
    p_value: float | None
    samples_needed: int | None
    p_adjusted: float | None = None

    def to_dict(self, shared: dict[tuple[int, int], dict[str, Any]] | None = None) -> dict[str, Any]:
        """The test's comparison; ``shared``: tally dicts to reuse (see :func:`_tally_dict`)."""
        shared = {} if shared is None else shared
        return {
            "test": self.test,
            "status": self.status,
            "incumbent": _tally_dict(self.incumbent, shared),
            "candidate": _tally_dict(self.candidate, shared),
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "samples_needed": self.samples_needed,
        }


@dataclass(frozen=True)
class ScoreComparison:
    """A continuous score (judge, similarity, label probability) compared paired per test.

    ``drop`` is the incumbent's mean score minus the candidate's, averaged over the tests, with
    its interval at the regression level; ``bound`` the upper bound at the non-inferiority level.
    ``finding``: regressed, improved, non-inferior or undecided, as for the pass rate, on the
    policy's ``score_margin``.
    """

    check: str
    finding: str
    drop: Drop
    bound: float | None

    def describe(self) -> str:
        return f"score {self.check}: {self.finding}, {self.drop.describe().replace('pts', 'pts of score')}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "finding": self.finding,
            "delta": self.drop.to_dict(),
            "bound": self.bound,
        }


@dataclass(frozen=True)
class Verdict:
    """The verdict on one prompt group for one candidate.

    ``rates`` holds the pooled pass rates ``{"incumbent": ..., "candidate": ...}`` over the
    tests both models ran; ``p_value`` is the group's stratified test and ``p_adjusted`` its
    value after the correction (the one compared with alpha); ``finding`` what the statistics
    found (:data:`FINDINGS`); ``drop`` the paired drop with its interval (None without
    evidence); ``samples_needed`` the samples per test that would decide an undecided group.
    """

    verdict: str
    reason: str
    rates: dict[str, float | None]
    p_value: float | None
    samples_needed: int | None
    tests: tuple[TestComparison, ...] = ()
    p_adjusted: float | None = None
    finding: str = ""
    drop: Drop | None = None
    improvement_p: float | None = None
    deterministic: bool = False
    scores: tuple[ScoreComparison, ...] = ()

    @property
    def changed(self) -> list[str]:
        """Tests whose one sample per model flipped from pass to fail (not tested alone)."""
        return [t.test for t in self.tests if t.status == "changed"]

    def to_dict(self) -> dict[str, Any]:
        tallies: dict[tuple[int, int], dict[str, Any]] = {}  # shared by the tests' equal counts
        return {
            "verdict": self.verdict,
            "finding": self.finding,
            "reason": self.reason,
            "rates": dict(self.rates),
            "delta": None if self.drop is None else self.drop.to_dict(),
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "improvement_p_adjusted": self.improvement_p,
            "deterministic": self.deterministic,
            "changed": self.changed,
            "scores": [c.to_dict() for c in self.scores],
            "samples_needed": self.samples_needed,
            "tests": [t.to_dict(tallies) for t in self.tests],
        }


@dataclass(frozen=True)
class Comparison:
    """Every candidate against the incumbent: verdicts per group, regressions, failing tests."""

    incumbent: str
    candidates: tuple[str, ...]
    verdicts: dict[str, dict[str, Verdict]]
    regressions: list[Regression]
    failures: dict[str, int]  # model -> tests with a failing sample


# ---------------------------------------------------------------------------------------------


def _needed_for(p_incumbent: float, drop: float, alpha: float, policy: GatePolicy) -> int | None:
    drop = min(drop, p_incumbent)
    if drop <= 0.0:
        return None
    return stats.samples_needed(p_incumbent, drop, alpha, policy.power)


@dataclass(frozen=True)
class TestDesign:
    """What a test declares about itself: its weight in the group's Δ and its cluster."""

    __test__ = False  # not a pytest test class

    weight: float = 1.0
    cluster: str | None = None


@dataclass(frozen=True)
class _Prepared:
    """One (group, candidate) before any decision: raw p-values and pooled rates."""

    group: str
    tolerance: float
    deterministic: bool
    # (test, incumbent tally, candidate tally, raw Fisher p or None); None tallies when missing
    tests: tuple[tuple[str, Tally | None, Tally | None, float | None], ...]
    inc_rate: float | None
    cand_rate: float | None
    group_p: float | None  # stratified one-sided "candidate lower"
    group_p_better: float | None  # stratified one-sided "candidate higher"
    cases: tuple[Case, ...]
    scores: tuple[tuple[str, tuple[ScoreCase, ...]], ...] = ()

    @property
    def tested(self) -> list[int]:
        """Indices of the tests that have a p-value (the per-test family)."""
        return [i for i, t in enumerate(self.tests) if t[3] is not None]


def _is_missing(inc: Tally | None, cand: Tally | None) -> bool:
    return inc is None or cand is None or inc.total == 0 or cand.total == 0


def _prepare(
    group: str,
    tests: Mapping[str, Mapping[str, Tally]],
    incumbent: str,
    candidate: str,
    policy: GatePolicy,
    design: Mapping[str, TestDesign],
    scores: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]] | None = None,
) -> _Prepared:
    deterministic = policy.is_deterministic(group)
    by_check: dict[str, list[ScoreCase]] = {}
    for name in sorted(scores or {}):
        per_model = (scores or {})[name]
        inc_scores, cand_scores = per_model.get(incumbent) or {}, per_model.get(candidate) or {}
        for check in sorted(set(inc_scores) & set(cand_scores)):
            if inc_scores[check] and cand_scores[check]:
                weight = (design.get(name) or TestDesign()).weight
                by_check.setdefault(check, []).append(
                    ScoreCase(name, tuple(inc_scores[check]), tuple(cand_scores[check]), weight)
                )
    rows: list[tuple[str, Tally | None, Tally | None, float | None]] = []
    strata: list[stats.Stratum] = []
    cases: list[Case] = []
    for name in sorted(tests):
        inc, cand = tests[name].get(incumbent), tests[name].get(candidate)
        p: float | None = None
        if not _is_missing(inc, cand):
            i, c = _tally(inc), _tally(cand)
            strata.append((i.passed, i.total, c.passed, c.total))
            info = design.get(name) or TestDesign()
            cases.append(
                Case(
                    name, i.passed, i.total, c.passed, c.total, info.weight, info.cluster,
                    i.outcomes if len(i.outcomes) == i.total else (),
                    c.outcomes if len(c.outcomes) == c.total else (),
                )
            )  # fmt: skip
            # one sample each, or a deterministic group: the recorded answers are compared as
            # they are, with no test
            if not deterministic and not (i.total == 1 and c.total == 1):
                p = stats.fisher_exact_less(i.passed, i.total, c.passed, c.total)
        rows.append((name, inc, cand, p))
    inc_total = sum(s[1] for s in strata)
    cand_total = sum(s[3] for s in strata)
    inc_rate = sum(s[0] for s in strata) / inc_total if inc_total else None
    cand_rate = sum(s[2] for s in strata) / cand_total if cand_total else None
    group_p = group_p_better = None
    if strata and not deterministic:
        group_p = stats.stratified_test(strata)
        # only a candidate whose pooled rate is higher can be shown better: elsewhere p = 1 (valid,
        # and Holm's family keeps its size), which spares half the exact tests on a large suite
        higher = inc_rate is not None and cand_rate is not None and cand_rate > inc_rate
        group_p_better = stats.stratified_test([(c, cn, i, n) for i, n, c, cn in strata]) if higher else 1.0
    return _Prepared(
        group, policy.tolerance_for(group), deterministic, tuple(rows), inc_rate, cand_rate,
        group_p, group_p_better, tuple(cases), tuple((c, tuple(v)) for c, v in sorted(by_check.items())),
    )  # fmt: skip


@dataclass(frozen=True)
class _Adjusted:
    """Corrected p-values of one (group, candidate) and the levels they amount to.

    ``test_alpha``/``group_alpha`` are the Bonferroni bounds of the per-test and group levels
    (for the samples advice and the cluster-robust check); ``ni_alpha`` is the one-sided level
    of the non-inferiority bound.
    """

    test_p: dict[int, float]  # index in _Prepared.tests -> adjusted p
    group_p: float | None
    group_p_better: float | None
    test_alpha: float
    group_alpha: float
    ni_alpha: float
    score_alpha: float = 0.05  # one-sided, for score regressions and improvements
    score_ni_alpha: float = 0.05


def _adjust(prepared: Sequence[_Prepared], policy: GatePolicy, n_candidates: int) -> list[_Adjusted]:
    """Apply ``policy.correction`` to the raw p-values of one candidate's groups.

    * ``holm`` (the default): the candidate's share of alpha is ``alpha / K`` over K
      candidates, split in half between the group family (Holm over the candidate's group
      tests) and the per-test family (Holm over every test of the candidate, across groups),
      so the false alarm of the whole suite stays within alpha. Improvement is its own claim:
      Holm over the groups at ``alpha / K``. Non-inferiority bounds are Bonferroni over groups
      and candidates: ``alpha / (G * K)``.
    * ``holm-group``: Holm within each group's per-test family, the group test at alpha, no
      adjustment across groups or candidates (each group's own error only);
    * ``none``: nothing is adjusted.
    """
    alpha = policy.alpha
    k = max(1, n_candidates)
    n_scores = sum(len(p.scores) for p in prepared)
    families = 3 if n_scores else 2  # per test, per group, and the scores when there are any
    with_group = [i for i, p in enumerate(prepared) if p.group_p is not None]
    with_cases = sum(1 for p in prepared if p.cases)
    flat = [(gi, ti) for gi, p in enumerate(prepared) for ti in p.tested]
    test_q: dict[tuple[int, int], float] = {}
    group_q: dict[int, float] = {}
    better_q: dict[int, float] = {}
    if policy.correction == "holm":
        holm = stats.holm_adjust([_prob(prepared[gi].tests[ti][3]) for gi, ti in flat])
        test_q = {key: min(1.0, families * k * q) for key, q in zip(flat, holm, strict=True)}
        holm = stats.holm_adjust([_prob(prepared[i].group_p) for i in with_group])
        group_q = {i: min(1.0, families * k * q) for i, q in zip(with_group, holm, strict=True)}
        holm = stats.holm_adjust([_prob(prepared[i].group_p_better) for i in with_group])
        better_q = {i: min(1.0, k * q) for i, q in zip(with_group, holm, strict=True)}
        test_alpha = alpha / (families * k * max(1, len(flat)))
        group_alpha = alpha / (families * k * max(1, len(with_group)))
        ni_alpha = alpha / (k * max(1, with_cases) * policy.looks)
        score_alpha = alpha / (families * k * max(1, n_scores))
        score_ni_alpha = alpha / (k * max(1, n_scores) * policy.looks)
    out: list[_Adjusted] = []
    for i, prep in enumerate(prepared):
        family = prep.tested
        raw = [_prob(prep.tests[j][3]) for j in family]
        if policy.correction == "holm":
            test_p = {j: test_q[(i, j)] for j in family}
            out.append(
                _Adjusted(
                    test_p, group_q.get(i), better_q.get(i), test_alpha, group_alpha, ni_alpha,
                    score_alpha, score_ni_alpha,
                )
            )  # fmt: skip
        elif policy.correction == "holm-group":
            within = stats.holm_adjust(raw)
            test_p = dict(zip(family, within, strict=True))
            level = alpha / max(1, len(family))
            out.append(
                _Adjusted(test_p, prep.group_p, prep.group_p_better, level, alpha, alpha, alpha, alpha)
            )
        else:
            test_p = dict(zip(family, raw, strict=True))
            out.append(
                _Adjusted(test_p, prep.group_p, prep.group_p_better, alpha, alpha, alpha, alpha, alpha)
            )
    return out


def _prob(p: float | None) -> float:
    if p is None:  # pragma: no cover - callers pass only tested entries
        raise ValueError("missing p-value")
    return p


def _compare_test(index: int, prep: _Prepared, adjusted: _Adjusted, policy: GatePolicy) -> TestComparison:
    test, inc, cand, p = prep.tests[index]
    if _is_missing(inc, cand):
        return TestComparison(test, "missing", inc, cand, None, None)
    inc_rate, cand_rate = _rate(inc), _rate(cand)
    lower = inc_rate - cand_rate > prep.tolerance + _EPS
    if p is None:
        if prep.deterministic:
            # temperature 0: the recorded answers are the behaviour, a flip is a regression
            return TestComparison(test, "regressed" if lower else "ok", inc, cand, None, None)
        # one sample each: a flip is evidence for the group's tests, not a test on its own
        return TestComparison(test, "changed" if lower else "ok", inc, cand, None, None)
    q = adjusted.test_p[index]
    if not lower:
        return TestComparison(test, "ok", inc, cand, p, None, q)
    if q <= policy.alpha:
        return TestComparison(test, "regressed", inc, cand, p, None, q)
    needed = _needed_for(inc_rate, inc_rate - cand_rate, adjusted.test_alpha, policy)
    taken = max(_tally(inc).total, _tally(cand).total)
    advice = None if needed is None else max(needed, taken + 1)
    return TestComparison(test, "investigate", inc, cand, p, advice, q)


def _pts(value: float) -> str:
    return f"{100 * value:g} pts"


def _evidence(drop: Drop | None, policy: GatePolicy) -> str:
    """``drop +12 pts [-3, +27] at 99% (margin 5 pts; 3 tests, 30 vs 30 samples, 4 losses / 1 win)``."""
    if drop is None:
        return "no paired evidence"
    text = drop.describe()
    details: list[str] = []
    if drop.method == "exact":
        details.append("deterministic: exact")
    elif drop.high is None:
        details.append(f"{drop.clusters} cluster: no interval")
    else:
        details.append(f"{100 * (1 - 2 * drop.alpha):.3g}% interval")
    details.append(f"margin {_pts(policy.margin)}")
    details.append(
        f"{drop.tests} test{'s' if drop.tests != 1 else ''}, "
        f"{drop.incumbent_samples} vs {drop.candidate_samples} samples"
    )
    if drop.clusters is not None and drop.high is not None:
        details.append(f"{drop.clusters} clusters")
    if drop.losses is not None and drop.losses + (drop.wins or 0):
        details.append(f"{drop.losses} lost / {drop.wins} won rounds")
    return f"{text} ({'; '.join(details)})"


def _compare_score(
    check: str, cases: Sequence[ScoreCase], prep: _Prepared, adjusted: _Adjusted, policy: GatePolicy
) -> ScoreComparison:
    """One score of one group: improved, non-inferior, regressed or undecided on ``score_margin``.

    Improved when the upper bound (at the regression level) is below 0; non-inferior when the
    upper bound at the non-inferiority level is below the margin; regressed when the lower bound
    is above 0; otherwise undecided. Deterministic groups compare the exact mean difference with
    the margin.
    """
    margin = policy.score_margin
    drop = score_drop(cases, adjusted.score_alpha, deterministic=prep.deterministic)
    if drop is None:  # pragma: no cover - _prepare keeps only checks scored on both models
        raise ValueError("no score")
    if prep.deterministic:
        finding = (
            "regressed"
            if drop.estimate > margin
            else "improved"
            if drop.estimate < -margin
            else "non-inferior"
        )
        return ScoreComparison(check, finding, drop, drop.estimate)
    bound = score_drop(cases, adjusted.score_ni_alpha)
    high = bound.high if bound is not None else None
    # a drop shown smaller than the margin is within what was declared acceptable, even when it is
    # certain (scores that do not vary between samples): non-inferior before regressed
    if drop.high is not None and drop.high < 0:
        finding = "improved"
    elif high is not None and high < margin:
        finding = "non-inferior"
    elif drop.low is not None and drop.low > 0:
        finding = "regressed"
    else:
        finding = "undecided"
    return ScoreComparison(check, finding, drop, high)


def _judge_group(
    prep: _Prepared, adjusted: _Adjusted, candidate: str, policy: GatePolicy
) -> tuple[Verdict, list[Regression]]:
    group, tolerance = prep.group, prep.tolerance
    comparisons = tuple(_compare_test(i, prep, adjusted, policy) for i in range(len(prep.tests)))
    complete = [c for c in comparisons if c.status != "missing"]
    missing = [c for c in comparisons if c.status == "missing"]
    regressions = [
        Regression.measured(
            "test", group, c.test, candidate, _rate(c.incumbent), _rate(c.candidate), c.p_value, c.p_adjusted
        )
        for c in comparisons
        if c.status == "regressed"
    ]
    inc_rate, cand_rate = prep.inc_rate, prep.cand_rate
    rates: dict[str, float | None] = {"incumbent": inc_rate, "candidate": cand_rate}
    drop = paired_drop(prep.cases, adjusted.ni_alpha, deterministic=prep.deterministic)

    group_p, group_q = prep.group_p, adjusted.group_p
    group_lower = False
    if inc_rate is not None and cand_rate is not None and group_p is not None and group_q is not None:
        group_lower = inc_rate - cand_rate > tolerance + _EPS
        significant = group_lower and group_q <= policy.alpha
        if significant and drop is not None and drop.clusters is not None:
            # tests that share a source are not independent: the cluster-robust bound must agree
            robust = paired_drop(prep.cases, adjusted.group_alpha)
            significant = robust is not None and robust.low is not None and robust.low > tolerance
        if significant:
            regressions.append(
                Regression.measured("group", group, None, candidate, inc_rate, cand_rate, group_p, group_q)
            )

    scores = tuple(_compare_score(check, cases, prep, adjusted, policy) for check, cases in prep.scores)
    for sc in scores:
        if sc.finding == "regressed":
            regressions.append(
                Regression(
                    "score", group, None, candidate,
                    f"score {sc.check} of group {group} {sc.drop.describe().replace('pts', 'pts of score')}",
                )
            )  # fmt: skip

    def verdict(kind: str, finding: str, reason: str, needed: int | None = None) -> Verdict:
        return Verdict(
            kind, reason, rates, group_p, needed, comparisons, group_q, finding, drop,
            adjusted.group_p_better, prep.deterministic, scores,
        )  # fmt: skip

    pooled = f"{pct(inc_rate)} -> {pct(cand_rate)}"
    if group_p is not None:
        pooled += f" ({fmt_p_pair(group_p, group_q, prefix='group ')})"
    evidence = _evidence(drop, policy)
    if regressions:
        reason = "regressed: " + "; ".join(r.describe() for r in regressions) + f"; {evidence}"
        return verdict("re-engineer", "regressed", reason), regressions
    open_scores = [sc for sc in scores if sc.finding == "undecided"]
    if not complete:
        reason = f"no evidence: none of {len(comparisons)} test(s) has samples on both models"
        return verdict("investigate", "no-evidence", reason), []
    if not cand_rate:
        everyone = "on every model" if not inc_rate else f"on {candidate}"
        reason = f"no passing sample {everyone}: nothing shows the prompt works; {pooled}"
        return verdict("investigate", "no-evidence", reason), []

    lower = [c for c in complete if c.status == "investigate"]
    changed = [c for c in complete if c.status == "changed"]
    if prep.deterministic:
        improved = not missing and any(_rate(c.incumbent) < _rate(c.candidate) for c in complete)
        non_inferior = not missing
    else:
        better = adjusted.group_p_better
        improved = bool(
            not missing and better is not None and better <= policy.alpha and drop and drop.estimate < 0
        )
        high = drop.high if drop is not None else None
        non_inferior = not missing and high is not None and high < policy.margin
    if open_scores and (improved or non_inferior):
        # the pass rate is settled, a score is not: not yet a migration
        improved = non_inferior = False
    if improved:
        detail = (
            "better on every test that changed"
            if prep.deterministic
            else fmt_p_pair(prep.group_p_better or 1.0, adjusted.group_p_better, prefix="improvement ")
        )
        reason = f"improved: {pct(inc_rate)} -> {pct(cand_rate)} ({detail}); {evidence}"
        return verdict("migrate", "improved", reason), []
    if non_inferior:
        if prep.deterministic:
            reason = f"non-inferior: no test lower (deterministic); {pooled}"
        else:
            reason = f"non-inferior: upper bound below the margin; {evidence}"
        return verdict("migrate", "non-inferior", reason), []

    parts: list[str] = []
    if open_scores:
        parts.append("; ".join(sc.describe() for sc in open_scores))
    if missing:
        parts.append(f"{len(missing)} of {len(comparisons)} test(s) lack samples on one model")
    if lower:
        parts.append(
            f"{len(lower)} test(s) lower but not significant ("
            + ", ".join(f"{c.test} {pct(_rate(c.incumbent))} -> {pct(_rate(c.candidate))}" for c in lower)
            + ")"
        )
    elif group_lower:
        parts.append("group lower but not significant")
    if changed:
        parts.append(
            f"{len(changed)} one-sample flip(s) pass -> fail (changed: evidence for the group, not a "
            "regression alone; mark the prompt deterministic to block on them)"
        )
    parts.append(pooled)
    parts.append(evidence + (" not below the margin" if drop is not None and drop.high is not None else ""))
    needed: int | None = None
    if not missing:
        candidates = [
            stats_needed
            for stats_needed in [
                samples_to_decide(
                    prep.cases,
                    margin=policy.margin,
                    ni_alpha=adjusted.ni_alpha,
                    regression_alpha=adjusted.group_alpha,
                    power=policy.power,
                ),
                *(c.samples_needed for c in lower),
            ]
            if stats_needed is not None
        ]
        if candidates:
            needed = min(candidates)
            parts.append(f"~{needed} samples per test would decide it at {100 * policy.power:.0f}% power")
    return verdict("investigate", "undecided", "undecided: " + "; ".join(parts), needed), []


def _tally(t: Tally | None) -> Tally:
    if t is None:  # pragma: no cover - callers filter missing comparisons out first
        raise ValueError("missing tally")
    return t


def _rate(t: Tally | None) -> float:
    tally = _tally(t)
    return tally.passed / tally.total


def _validate(
    groups: Mapping[str, Mapping[str, Mapping[str, Tally]]], models: Sequence[str], policy: GatePolicy
) -> str:
    if not models:
        raise ValueError("models must not be empty")
    if len(set(models)) != len(models):
        raise ValueError(f"models must be unique, got {list(models)}")
    incumbent = models[0] if policy.incumbent is None else policy.incumbent
    if incumbent not in models:
        raise ValueError(f"unknown incumbent {incumbent!r}: not one of {', '.join(models)}")
    return incumbent


def compare(
    groups: Mapping[str, Mapping[str, Mapping[str, Tally]]],
    models: Sequence[str],
    policy: GatePolicy,
    design: Mapping[str, TestDesign] | None = None,
    scores: Mapping[str, Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]]] | None = None,
) -> Comparison:
    """Judge every candidate against the incumbent, group by group and test by test.

    ``groups`` maps prompt group -> test id -> model -> :class:`Tally`. Tallies for models not
    in ``models`` are ignored. The result does not depend on the order of groups or tests.
    """
    incumbent = _validate(groups, models, policy)
    candidates = tuple(m for m in models if m != incumbent)

    failures = {m: 0 for m in models}
    for tests in groups.values():
        for per_model in tests.values():
            for model, tally in per_model.items():
                if model in failures and tally.failed:
                    failures[model] += 1

    verdicts: dict[str, dict[str, Verdict]] = {}
    regressions: list[Regression] = []
    order = sorted(groups)
    for group in order:
        verdicts[group] = {}
    for candidate in candidates:
        # The correction needs every group's raw p-values of this candidate before deciding.
        prepared = [
            _prepare(
                group, groups[group], incumbent, candidate, policy, design or {}, (scores or {}).get(group)
            )
            for group in order
        ]
        for prep, adjusted in zip(prepared, _adjust(prepared, policy, len(candidates)), strict=True):
            verdict, found = _judge_group(prep, adjusted, candidate, policy)
            verdicts[prep.group][candidate] = verdict
            regressions.extend(found)
    # Group by group, then candidate (the order the summary lines use).
    rank = {group: i for i, group in enumerate(order)}
    cand_rank = {c: i for i, c in enumerate(candidates)}
    regressions.sort(key=lambda r: (rank[r.group], cand_rank[r.candidate]))
    return Comparison(incumbent, candidates, verdicts, regressions, failures)
