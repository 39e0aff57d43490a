"""The one place the migration decision is made: verdicts, regressions, the gate and the exit status.

Pure module (no pytest). :func:`decide` takes the fixed-N :class:`~.compare.Comparison` and
every other source of regression (dataset rules, a baseline, the sequential rule) and returns a
:class:`Decision`: the verdict per prompt group and candidate, every :class:`Regression` with
its source, whether the gate passed and why, and the exit status the plugin applies. Nothing
after it edits the result; every report renders it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .compare import Comparison, GatePolicy, Verdict

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from .recommend import Recommendation, RecommendPolicy, Sunset
    from .regression import Regression

__all__ = ["Decision", "decide", "gate_line", "gate_lines"]

OK, TESTS_FAILED = 0, 1  # pytest.ExitCode values, without importing pytest


@dataclass(frozen=True)
class Decision:
    mode: str
    passed: bool
    reason: str
    incumbent: str
    candidates: tuple[str, ...]
    verdicts: dict[str, dict[str, Verdict]]
    regressions: tuple[Regression, ...]
    failures: dict[str, int]
    missing: int
    errors: int
    policy: GatePolicy
    recommendations: tuple[Recommendation, ...] = ()
    sunset: Sunset | None = None
    recommend_policy: RecommendPolicy | None = None

    @property
    def line(self) -> str:
        return gate_line(self.mode, self.passed, self.reason)

    def exit_status(self, *, tests_failed: bool, other_failures: int) -> int:
        """The session's exit status under the gate mode.

        strict: pytest's own rule, and the gate; no-regression: the gate, and failures of tests
        that are not model tests; report: only those other failures.
        """
        if self.mode == "strict":
            failed = tests_failed or not self.passed
        elif self.mode == "no-regression":
            failed = other_failures > 0 or not self.passed
        else:
            failed = other_failures > 0
        return TESTS_FAILED if failed else OK

    def lines(self) -> list[str]:
        return gate_lines(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "passed": self.passed,
            "reason": self.reason,
            "line": self.line,
            "incumbent": self.incumbent,
            "candidates": list(self.candidates),
            "policy": self.policy.to_dict(),
            "failures": dict(self.failures),
            "missing": self.missing,
            "errors": self.errors,
            "regressions": [r.to_dict() for r in self.regressions],
            "recommendations": [r.to_dict() for r in self.recommendations],
            "sunset": None if self.sunset is None else self.sunset.to_dict(),
            "recommend_policy": None if self.recommend_policy is None else self.recommend_policy.to_dict(),
            "verdicts": {
                group: {cand: v.to_dict() for cand, v in per.items()} for group, per in self.verdicts.items()
            },
        }


def gate_line(mode: str, passed: bool, reason: str) -> str:
    return f"migration gate ({mode}): {'PASSED' if passed else 'FAILED'}: {reason}"


def gate_lines(gate: Mapping[str, Any]) -> list[str]:
    """The decision as text, from its ``to_dict()`` form (what the terminal and ``show`` print).

    The settings, a line per group and candidate, the regressions no verdict shows (baseline),
    then the gate line.
    """
    p: Mapping[str, Any] = gate.get("policy") or {}
    candidates = ", ".join(gate.get("candidates") or []) or "(none)"
    out = [
        f"incumbent: {gate.get('incumbent')}; candidates: {candidates}; gate: {gate.get('mode')} "
        f"(alpha {p.get('alpha', 0.05):g}, correction {p.get('correction', 'holm')}, "
        f"margin {p.get('margin', 0.05):g}, tolerance {p.get('tolerance', 0):g}, "
        f"min drop {p.get('min_drop', 0.15):g} at power {p.get('power', 0.8):g})"
    ]
    for rec in gate.get("recommendations") or []:
        out.append(f"recommendation: {rec.get('line')}")
    sunset = gate.get("sunset")
    if isinstance(sunset, dict) and sunset.get("line"):
        out.append(f"sunset: {sunset['line']}")
    verdicts: Mapping[str, Mapping[str, Mapping[str, Any]]] = gate.get("verdicts") or {}
    width = max((len(g) for g in verdicts), default=0)
    for group, per_candidate in verdicts.items():
        for candidate, verdict in per_candidate.items():
            out.append(
                f"{group:<{width}}  {candidate}: {verdict.get('verdict')}: {verdict.get('reason', '')}"
            )
    for r in gate.get("regressions") or []:
        if r.get("source") == "baseline":
            out.append(f"baseline regression on {r.get('candidate')}: {r.get('summary')}")
    out.append(str(gate.get("line") or gate_line(str(gate.get("mode")), bool(gate.get("passed")), "")))
    return out


def _pair_reason(found: Sequence[Regression]) -> str:
    return "regressed: " + "; ".join(r.summary for r in found)


def _summarise(regressions: Sequence[Regression], *, detail: int = 2) -> str:
    """Per candidate, the first regressions with their numbers, then a count."""
    by_candidate: dict[str, list[Regression]] = {}
    for r in regressions:
        by_candidate.setdefault(r.candidate, []).append(r)
    parts = []
    for cand, items in by_candidate.items():
        shown = ", ".join(
            f"{r.group}: {r.summary}" if r.source in ("test", "dataset") else r.summary
            for r in items[:detail]
        )
        rest = items[detail:]
        if rest:
            shown += f" and {len(rest)} more in {', '.join(sorted({r.group for r in rest}))}"
        parts.append(f"on {cand}: {shown}")
    return "; ".join(parts)


def _replace(base: Verdict | None, verdict: str, finding: str, reason: str) -> Verdict:
    """``base`` (the fixed-N verdict) with another verdict, keeping its evidence."""
    if base is None:
        return Verdict(verdict, reason, {}, None, None, finding=finding)
    return replace(base, verdict=verdict, finding=finding, reason=reason, samples_needed=None)


def _sequential_verdict(sequential: Verdict, base: Verdict | None) -> Verdict:
    """Under ``--samples=auto``: a sequential regression, or the non-inferiority call.

    A futility or horizon stop means only "not shown to regress": it gives ``migrate`` when the
    paired drop's upper bound is below the margin, else ``investigate``. The fixed-N regression
    tests do not hold for adaptively stopped tallies, so they are not used.
    """
    if sequential.verdict == "re-engineer":
        return _replace(base, "re-engineer", "regressed", sequential.reason)
    if base is not None and base.finding in ("improved", "non-inferior") and base.rates.get("candidate"):
        return _replace(base, "migrate", base.finding, f"{sequential.reason}; {base.reason}")
    evidence = ""
    if base is not None and base.drop is not None:
        evidence = "; not shown non-inferior: " + base.drop.describe()
    if base is not None and not base.rates.get("candidate"):
        evidence = "; no passing sample on the candidate"
    return _replace(base, "investigate", "undecided", sequential.reason + evidence)


def decide(
    comparison: Comparison,
    policy: GatePolicy,
    *,
    regressions: Sequence[Regression] = (),
    sequential: tuple[Mapping[str, Mapping[str, Verdict]], Sequence[Regression]] | None = None,
    missing: int = 0,
    errors: int = 0,
) -> Decision:
    """The decision from the comparison and every other source.

    ``regressions``: dataset and baseline regressions. A dataset regression makes its group's
    verdict for that candidate ``re-engineer``, quoting the same numbers, so the verdict and the
    gate cannot disagree. ``sequential``: under ``--samples=auto`` the sequential verdicts and
    regressions replace the fixed-N ones (whose error rates do not hold for adaptively stopped
    tallies). ``missing``: recordings missing or stale; ``errors``: (test, model) pairs that
    errored outside the test body (a fixture, a setup); the gate cannot pass over either.
    """
    verdicts = {group: dict(per) for group, per in comparison.verdicts.items()}
    found: list[Regression] = list(comparison.regressions)
    if sequential is not None:
        seq_verdicts, seq_regressions = sequential
        found = list(seq_regressions)
        for group, per in seq_verdicts.items():
            for cand, verdict in per.items():
                base = verdicts.get(group, {}).get(cand)
                verdicts.setdefault(group, {})[cand] = _sequential_verdict(verdict, base)
    found.extend(regressions)
    for group, cand in {(r.group, r.candidate) for r in found if r.source == "dataset"}:
        here = [r for r in found if r.group == group and r.candidate == cand and not r.against_baseline]
        base = verdicts.get(group, {}).get(cand)
        verdicts.setdefault(group, {})[cand] = _replace(base, "re-engineer", "regressed", _pair_reason(here))

    incumbent = comparison.incumbent
    failing = {m: n for m, n in comparison.failures.items() if n}
    parts: list[str] = []
    if policy.mode == "strict" and failing:
        parts.append(
            "failing tests on "
            + ", ".join(f"{m} ({n} test{'s' if n != 1 else ''})" for m, n in failing.items())
        )
    against = [r for r in found if not r.against_baseline]
    if against:
        kind = (
            "sequential regression(s)" if all(r.source == "sequential" for r in against) else "regression(s)"
        )
        parts.append(f"{len(against)} {kind} against {incumbent}: {_summarise(against)}")
    baseline = [r for r in found if r.against_baseline]
    if baseline:
        parts.append(f"{len(baseline)} regression(s) against the baseline: {_summarise(baseline)}")
    if missing:
        parts.append(f"{missing} recording(s) missing or stale, so not compared")
    if errors:
        parts.append(
            f"{errors} test(s) errored before reaching a verdict (setup or teardown), so not compared"
        )

    if policy.mode == "report":
        passed = True
        reason = "report mode: model outcomes never fail the run" + (
            f" ({'; '.join(parts)})" if parts else ""
        )
    elif policy.mode == "strict":
        passed = not parts
        reason = "strict: " + ("; ".join(parts) if parts else "no failing tests on any model")
    else:
        passed = not parts
        if passed:
            undecided = sum(v.verdict == "investigate" for per in verdicts.values() for v in per.values())
            reason = f"no regression against {incumbent}" + (
                f" ({undecided} group/candidate pair(s) to investigate)" if undecided else ""
            )
        else:
            reason = "; ".join(parts)
    return Decision(
        mode=policy.mode,
        passed=passed,
        reason=reason,
        incumbent=incumbent,
        candidates=comparison.candidates,
        verdicts=verdicts,
        regressions=tuple(found),
        failures=dict(comparison.failures),
        missing=missing,
        errors=errors,
        policy=policy,
    )
