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

from .regression import Regression, fmt_p_pair, pct

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "CORRECTIONS",
    "MODES",
    "VERDICTS",
    "Comparison",
    "GatePolicy",
    "Tally",
    "TestComparison",
    "Verdict",
    "compare",
]

MODES = ("strict", "no-regression", "report")
VERDICTS = ("migrate", "re-engineer", "investigate")
CORRECTIONS = ("holm", "holm-group", "none")

# Rates are ratios of small integers; compare them with a little slack so that, e.g.,
# 0.7 - 0.6 is not taken as "more than 0.1".
_EPS = 1e-9


@dataclass(frozen=True)
class Tally:
    """Pass count of one test on one model over its samples."""

    passed: int
    total: int

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

    def __post_init__(self) -> None:
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
        }


@dataclass(frozen=True)
class TestComparison:
    """One test, candidate against incumbent.

    ``status``: ``ok`` (not lower by more than the tolerance), ``regressed`` (decided),
    ``investigate`` (lower, not decided) or ``missing`` (no samples on one side).
    ``p_value`` is the raw one-sided Fisher p-value, ``p_adjusted`` the value after the
    policy's correction (the one compared with alpha); both None at one sample each.
    """

    __test__ = False  # not a pytest test class

    test: str
    status: str
    incumbent: Tally | None
    candidate: Tally | None
    p_value: float | None
    samples_needed: int | None
    p_adjusted: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "status": self.status,
            "incumbent": None if self.incumbent is None else self.incumbent.to_dict(),
            "candidate": None if self.candidate is None else self.candidate.to_dict(),
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "samples_needed": self.samples_needed,
        }


@dataclass(frozen=True)
class Verdict:
    """The verdict on one prompt group for one candidate.

    ``rates`` holds the pooled pass rates ``{"incumbent": ..., "candidate": ...}`` over the
    tests both models ran; ``p_value`` is the group's stratified test and ``p_adjusted`` its
    value after the correction across the candidate's groups (the one compared with alpha);
    ``samples_needed`` the samples per test at which the group test would detect ``min_drop``
    at ``power`` at the corrected level (set when the verdict is ``investigate``).
    """

    verdict: str
    reason: str
    rates: dict[str, float | None]
    p_value: float | None
    samples_needed: int | None
    tests: tuple[TestComparison, ...] = ()
    p_adjusted: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "rates": dict(self.rates),
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "samples_needed": self.samples_needed,
            "tests": [t.to_dict() for t in self.tests],
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


def _needed_for(p_incumbent: float, alpha: float, policy: GatePolicy) -> int | None:
    drop = min(policy.min_drop, p_incumbent)
    if drop <= 0.0:
        return None
    return stats.samples_needed(p_incumbent, drop, alpha, policy.power)


@dataclass(frozen=True)
class _Prepared:
    """One (group, candidate) before any decision: raw p-values and pooled rates."""

    group: str
    tolerance: float
    # (test, incumbent tally, candidate tally, raw Fisher p or None); None tallies when missing
    tests: tuple[tuple[str, Tally | None, Tally | None, float | None], ...]
    inc_rate: float | None
    cand_rate: float | None
    group_p: float | None

    @property
    def tested(self) -> list[int]:
        """Indices of the tests that have a p-value (the per-test Holm family)."""
        return [i for i, t in enumerate(self.tests) if t[3] is not None]


def _is_missing(inc: Tally | None, cand: Tally | None) -> bool:
    return inc is None or cand is None or inc.total == 0 or cand.total == 0


def _prepare(
    group: str, tests: Mapping[str, Mapping[str, Tally]], incumbent: str, candidate: str, policy: GatePolicy
) -> _Prepared:
    rows: list[tuple[str, Tally | None, Tally | None, float | None]] = []
    strata: list[stats.Stratum] = []
    for name in sorted(tests):
        inc, cand = tests[name].get(incumbent), tests[name].get(candidate)
        p: float | None = None
        if not _is_missing(inc, cand):
            i, c = _tally(inc), _tally(cand)
            strata.append((i.passed, i.total, c.passed, c.total))
            if not (i.total == 1 and c.total == 1):  # one sample each: deterministic, no test
                p = stats.fisher_exact_less(i.passed, i.total, c.passed, c.total)
        rows.append((name, inc, cand, p))
    inc_total = sum(s[1] for s in strata)
    cand_total = sum(s[3] for s in strata)
    inc_rate = sum(s[0] for s in strata) / inc_total if inc_total else None
    cand_rate = sum(s[2] for s in strata) / cand_total if cand_total else None
    group_p = stats.stratified_test(strata) if strata else None
    return _Prepared(group, policy.tolerance_for(group), tuple(rows), inc_rate, cand_rate, group_p)


@dataclass(frozen=True)
class _Adjusted:
    """Corrected p-values of one (group, candidate) and the levels used for samples-needed."""

    test_p: dict[int, float]  # index in _Prepared.tests -> adjusted p
    group_p: float | None
    test_alpha: float  # the smallest per-test level (Bonferroni bound) the correction applies
    group_alpha: float


def _adjust(prepared: Sequence[_Prepared], policy: GatePolicy) -> list[_Adjusted]:
    """Apply ``policy.correction`` to the raw p-values of one candidate's groups.

    * ``none``: nothing is adjusted;
    * ``holm-group``: Holm within each group's per-test family; the group test at alpha;
    * ``holm``: as ``holm-group``, then Bonferroni over the candidate's per-test families
      (each group's family gets alpha / G) and Holm over the candidate's group-level tests.
    """
    alpha = policy.alpha
    families = [p.tested for p in prepared]
    n_families = sum(1 for f in families if f)
    with_group = [i for i, p in enumerate(prepared) if p.group_p is not None]
    group_adjusted: dict[int, float] = {}
    if policy.correction == "holm":
        holm = stats.holm_adjust([_prob(prepared[i].group_p) for i in with_group])
        group_adjusted = dict(zip(with_group, holm, strict=True))
    out: list[_Adjusted] = []
    for i, (prep, family) in enumerate(zip(prepared, families, strict=True)):
        raw = [_prob(prep.tests[j][3]) for j in family]
        if policy.correction == "none":
            test_p = dict(zip(family, raw, strict=True))
            test_alpha, group_p, group_alpha = alpha, prep.group_p, alpha
        else:
            within = stats.holm_adjust(raw)
            scale = max(1, n_families) if policy.correction == "holm" else 1
            test_p = {j: min(1.0, scale * q) for j, q in zip(family, within, strict=True)}
            test_alpha = alpha / (scale * max(1, len(family)))
            if policy.correction == "holm":
                group_p = group_adjusted.get(i)
                group_alpha = alpha / max(1, len(with_group))
            else:
                group_p, group_alpha = prep.group_p, alpha
        out.append(_Adjusted(test_p, group_p, test_alpha, group_alpha))
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
        # Deterministic replay: nothing to sample, the recorded answers are the behaviour.
        return TestComparison(test, "regressed" if lower else "ok", inc, cand, None, None)
    q = adjusted.test_p[index]
    if not lower:
        return TestComparison(test, "ok", inc, cand, p, None, q)
    if q <= policy.alpha:
        return TestComparison(test, "regressed", inc, cand, p, None, q)
    needed = _needed_for(inc_rate, adjusted.test_alpha, policy)
    return TestComparison(test, "investigate", inc, cand, p, needed, q)


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

    group_p, group_q = prep.group_p, adjusted.group_p
    group_lower = False
    if inc_rate is not None and cand_rate is not None and group_p is not None and group_q is not None:
        group_lower = inc_rate - cand_rate > tolerance + _EPS
        if group_lower and group_q <= policy.alpha:
            regressions.append(
                Regression.measured("group", group, None, candidate, inc_rate, cand_rate, group_p, group_q)
            )

    pooled = f"{pct(inc_rate)} -> {pct(cand_rate)}"
    if group_p is not None:
        pooled += f" ({fmt_p_pair(group_p, group_q, prefix='group ')})"
    if regressions:
        reason = "regressed: " + "; ".join(r.describe() for r in regressions)
        verdict = Verdict("re-engineer", reason, rates, group_p, None, comparisons, group_q)
        return verdict, regressions

    lower = [c for c in complete if c.status == "investigate"]
    if not complete:
        reason = f"no evidence: none of {len(comparisons)} test(s) has samples on both models"
        return Verdict("investigate", reason, rates, group_p, None, comparisons, group_q), []
    if not cand_rate:
        everyone = "on every model" if not inc_rate else f"on {candidate}"
        reason = f"no passing sample {everyone}: nothing shows the prompt works; {pooled}"
        return Verdict("investigate", reason, rates, group_p, None, comparisons, group_q), []
    if not missing and not lower and not group_lower:
        if all(_tally(c.candidate).failed == 0 for c in complete):
            reason = f"no failures on {len(complete)} test(s); {pooled}"
        else:
            reason = f"no test lower than the incumbent beyond tolerance {tolerance:g}; {pooled}"
        return Verdict("migrate", reason, rates, group_p, None, comparisons, group_q), []

    parts: list[str] = []
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
    parts.append(pooled)
    needed: int | None = None
    if complete and (lower or group_lower):
        rates_inc = [_rate(c.incumbent) for c in complete]
        if any(r > 0.0 for r in rates_inc):
            needed = stats.samples_needed_group(
                rates_inc, policy.min_drop, adjusted.group_alpha, policy.power
            )
            parts.append(
                f"~{needed} samples per test would detect a {100 * policy.min_drop:.0f}-point drop "
                f"at {100 * policy.power:.0f}% power"
            )
    return Verdict("investigate", "; ".join(parts), rates, group_p, needed, comparisons, group_q), []


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
        prepared = [_prepare(group, groups[group], incumbent, candidate, policy) for group in order]
        for prep, adjusted in zip(prepared, _adjust(prepared, policy), strict=True):
            verdict, found = _judge_group(prep, adjusted, candidate, policy)
            verdicts[prep.group][candidate] = verdict
            regressions.extend(found)
    # Group by group, then candidate (the order the summary lines use).
    rank = {group: i for i, group in enumerate(order)}
    cand_rank = {c: i for i, c in enumerate(candidates)}
    regressions.sort(key=lambda r: (rank[r.group], cand_rank[r.candidate]))
    return Comparison(incumbent, candidates, verdicts, regressions, failures)
