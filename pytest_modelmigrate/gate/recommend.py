"""One recommendation per candidate: quality, cost, latency and the incumbent's sunset, weighed.

Pure module (no pytest). Input is the decision's verdicts per prompt group (what the statistics
found), the cost and latency ratios against the incumbent, and the declared budgets and sunset
dates; output is one :class:`Recommendation` per candidate, the first thing every report shows.
The rules, in order (``docs/gate.md``):

1. ``don't migrate``: a budget is exceeded (cost or p95 latency above the declared ratio), or a
   group marked blocking (``@pytest.mark.prompt(..., blocking=True)``) regressed;
2. ``re-engineer first``: groups regressed, listed with their failing checks (``re-threshold``
   where every failing check is a calibration threshold, not the prompt);
3. ``investigate``: groups undecided, with the extra calls (and cost) that would decide them;
4. ``migrate``: every group non-inferior or improved, and a reason to move: a significant
   improvement, a cost or latency saving of at least ``min_gain``, or the incumbent's sunset
   inside the horizon;
5. ``defer``: every group non-inferior, but no improvement, no saving and no sunset pressure.

With the incumbent's sunset inside the horizon the summary says it must migrate by that date,
names the best candidate and how many groups it needs re-engineered, and ``defer`` becomes
``migrate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["ACTIONS", "THRESHOLD_CHECKS", "RecommendPolicy", "Recommendation", "Sunset", "recommend"]

ACTIONS = ("migrate", "defer", "investigate", "re-engineer first", "don't migrate")
# checks whose failure is a threshold on a score the model reports, not the prompt's behaviour
THRESHOLD_CHECKS = frozenset({"label_confidence", "confidence"})


@dataclass(frozen=True)
class RecommendPolicy:
    """The declared inputs: budgets as ratios against the incumbent, sunset dates, blocking groups."""

    max_cost_ratio: float | None = None
    max_latency_ratio: float | None = None
    min_gain: float = 0.1
    sunset: Mapping[str, str] = field(default_factory=dict)  # model id or name -> ISO date
    horizon_days: int = 90
    blocking: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_cost_ratio": self.max_cost_ratio,
            "max_latency_p95_ratio": self.max_latency_ratio,
            "min_gain": self.min_gain,
            "sunset": dict(self.sunset),
            "horizon_days": self.horizon_days,
            "blocking": list(self.blocking),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecommendPolicy:
        def ratio(key: str) -> float | None:
            value = data.get(key)
            return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

        return cls(
            max_cost_ratio=ratio("max_cost_ratio"),
            max_latency_ratio=ratio("max_latency_p95_ratio"),
            min_gain=float(data.get("min_gain", 0.1)),
            sunset={str(k): str(v) for k, v in (data.get("sunset") or {}).items()},
            horizon_days=int(data.get("horizon_days", 90)),
            blocking=tuple(str(g) for g in data.get("blocking") or ()),
        )


@dataclass(frozen=True)
class Sunset:
    """The incumbent's retirement: the date, days left from the run's date, and the pressure."""

    model: str
    date: str
    days_left: int
    pressing: bool  # inside the horizon (or past)
    best: str | None = None
    to_reengineer: int = 0

    @property
    def line(self) -> str:
        left = f"{self.days_left} days left" if self.days_left >= 0 else f"{-self.days_left} days past"
        head = f"{self.model} retires on {self.date} ({left})"
        if not self.pressing:
            return head
        best = "no candidate ran" if self.best is None else f"best candidate {self.best}"
        work = f", {self.to_reengineer} group(s) to re-engineer" if self.best is not None else ""
        return f"must migrate by {self.date} ({left}): {best}{work}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "date": self.date,
            "days_left": self.days_left,
            "pressing": self.pressing,
            "best": self.best,
            "to_reengineer": self.to_reengineer,
            "line": self.line,
        }


@dataclass(frozen=True)
class Recommendation:
    """What to do about one candidate, and everything it rests on."""

    candidate: str
    action: str
    reasons: tuple[str, ...]
    regressed: dict[str, dict[str, Any]]  # group -> {"checks": [...], "remedy": ...}
    undecided: tuple[str, ...]
    improved: tuple[str, ...]
    non_inferior: tuple[str, ...]
    cost_ratio: float | None
    latency_ratio: float | None
    extra_calls: int | None = None
    extra_cost_usd: float | None = None
    must_migrate_by: str | None = None
    cost_interval: tuple[float, float] | None = None  # paired by test, 95%
    latency_interval: tuple[float, float] | None = None  # of the mean latency, paired by test, 95%
    # group -> the calibration shift line (calibration.rethreshold_notes): re-threshold, not the prompt
    rethreshold: dict[str, str] = field(default_factory=dict)

    @property
    def headline(self) -> str:
        # a calibration shift is never a silent migrate: the groups to re-threshold ride along
        note = f" (re-threshold {', '.join(self.rethreshold)})" if self.rethreshold else ""
        if self.action == "migrate":
            return f"migrate to {self.candidate}{note}"
        return f"{self.candidate}: {self.action}{note}"

    @property
    def line(self) -> str:
        return f"{self.candidate}: {self.action}: " + "; ".join(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "action": self.action,
            "headline": self.headline,
            "line": self.line,
            "reasons": list(self.reasons),
            "regressed": {g: dict(v) for g, v in self.regressed.items()},
            "undecided": list(self.undecided),
            "improved": list(self.improved),
            "non_inferior": list(self.non_inferior),
            "cost_ratio": self.cost_ratio,
            "latency_p95_ratio": self.latency_ratio,
            "extra_calls": self.extra_calls,
            "extra_cost_usd": self.extra_cost_usd,
            "must_migrate_by": self.must_migrate_by,
            "cost_interval": None if self.cost_interval is None else list(self.cost_interval),
            "latency_interval": None if self.latency_interval is None else list(self.latency_interval),
            "rethreshold": dict(self.rethreshold),
        }


NAMED = 8  # groups a reason names before "and N more": the recommendation stays one readable line


def _more(count: int) -> str:
    return f" and {count - NAMED} more (see the verdicts)" if count > NAMED else ""


def _ratio(deltas: Mapping[str, Any], key: str) -> float | None:
    value = (deltas.get(key) or {}).get("ratio")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _interval(data: Any) -> tuple[float, float] | None:
    if not isinstance(data, dict):
        return None
    low, high = data.get("low"), data.get("high")
    if isinstance(low, (int, float)) and isinstance(high, (int, float)):
        return float(low), float(high)
    return None


def _cost_text(cost: float, interval: tuple[float, float] | None) -> str:
    """``cost 0.16x [0.15-0.17]``: paired by test, with its 95% interval when there is one."""
    return f"cost {cost:.2f}x" + ("" if interval is None else f" [{interval[0]:.2f}-{interval[1]:.2f}]")


def _latency_text(p95: float, mean: float | None, interval: tuple[float, float] | None) -> str:
    """``p95 latency 0.52x (mean 0.53x [0.51-0.55])``: the p95 ratio, and the paired mean's."""
    text = f"p95 latency {p95:.2f}x"
    if mean is not None and interval is not None:
        text += f" (mean {mean:.2f}x [{interval[0]:.2f}-{interval[1]:.2f}])"
    return text


def _gain(ratio: float | None, min_gain: float, interval: tuple[float, float] | None = None) -> bool:
    """A saving of at least ``min_gain``, and, where the paired interval exists, a real one (its
    upper end below 1): latencies that are noise do not count as a reason to migrate."""
    if ratio is None or ratio > 1.0 - min_gain + 1e-12:
        return False
    return interval is None or interval[1] < 1.0


def _sunset_of(policy: RecommendPolicy, incumbent: str, names: Mapping[str, str]) -> str | None:
    for key in (incumbent, names.get(incumbent, incumbent)):
        if key in policy.sunset:
            return policy.sunset[key]
    return None


def recommend(
    verdicts: Mapping[str, Mapping[str, Mapping[str, Any]]],
    *,
    incumbent: str,
    candidates: Sequence[str],
    policy: RecommendPolicy,
    deltas: Mapping[str, Mapping[str, Any]],
    failing_checks: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
    extra: Mapping[str, tuple[int, float | None]] | None = None,
    today: date | None = None,
    names: Mapping[str, str] | None = None,
    paired: Mapping[str, Mapping[str, Any]] | None = None,
    calibration: Mapping[str, Mapping[str, str]] | None = None,
    variants: Mapping[str, Sequence[str]] | None = None,
) -> tuple[list[Recommendation], Sunset | None]:
    """The recommendation per candidate, and the incumbent's sunset when one is declared.

    ``verdicts``: group -> candidate -> the verdict's ``to_dict()``; ``deltas``: candidate ->
    the metrics' deltas (``cost_per_test_usd``, ``latency_p95_ms`` with their ``ratio``);
    ``failing_checks``: group -> candidate -> names of the checks that failed; ``extra``:
    candidate -> (calls, cost or None) that would decide its undecided groups; ``paired``:
    candidate -> the metrics' paired ratios with intervals (``cost_per_test``, ``latency_mean``),
    quoted beside the point ratios; ``calibration``: candidate -> group -> the line of a calibration
    shift (``calibration.rethreshold_notes``), added as a ``re-threshold`` reason whatever the action;
    ``variants``: candidate -> the prompt variant to ship per variant-ed test, with its evidence
    (``test: model: ship v2 (3/3, 100% [44-100]); ...``), added as reasons.
    """
    failing_checks = failing_checks or {}
    extra = extra or {}
    sunset: Sunset | None = None
    when = _sunset_of(policy, incumbent, names or {})
    if when is not None:
        day = date.fromisoformat(when)
        left = (day - (today or date.today())).days
        sunset = Sunset(incumbent, when, left, left <= policy.horizon_days)
    pressing = sunset is not None and sunset.pressing
    out: list[Recommendation] = []
    for cand in candidates:
        findings = {
            g: str((per.get(cand) or {}).get("finding") or "") for g, per in verdicts.items() if cand in per
        }
        regressed_groups = [g for g, f in findings.items() if f == "regressed"]
        undecided = tuple(g for g, f in findings.items() if f in ("undecided", "no-evidence"))
        improved = tuple(g for g, f in findings.items() if f == "improved")
        non_inferior = tuple(g for g, f in findings.items() if f == "non-inferior")
        regressed: dict[str, dict[str, Any]] = {}
        for g in regressed_groups:
            checks = sorted(set((failing_checks.get(g) or {}).get(cand) or ()))
            scores = [
                str(sc.get("check"))
                for sc in (verdicts[g].get(cand) or {}).get("scores") or ()
                if sc.get("finding") == "regressed"
            ]
            checks += [f"score of {name}" for name in scores if name not in checks]
            remedy = (
                "re-threshold"
                if checks and all(c.removeprefix("score of ") in THRESHOLD_CHECKS for c in checks)
                else "re-engineer"
            )
            regressed[g] = {"checks": checks, "remedy": remedy}
        cost = _ratio(deltas.get(cand) or {}, "cost_per_test_usd")
        latency = _ratio(deltas.get(cand) or {}, "latency_p95_ms")
        cost_paired = (paired or {}).get(cand, {}).get("cost_per_test")
        cost_ci = _interval(cost_paired)
        if cost_ci is not None and isinstance(cost_paired, dict):
            cost = float(cost_paired["ratio"])  # paired by test: the estimate its interval is about
        latency_paired = (paired or {}).get(cand, {}).get("latency_mean")
        latency_ci = _interval(latency_paired)
        mean_latency = None
        if latency_ci is not None and isinstance(latency_paired, dict):
            mean_latency = float(latency_paired["ratio"])
        calls, extra_cost = extra.get(cand, (None, None))
        reasons: list[str] = []
        over = []
        if policy.max_cost_ratio is not None and cost is not None and cost > policy.max_cost_ratio:
            over.append(
                _cost_text(cost, cost_ci) + f" the incumbent's, over the budget {policy.max_cost_ratio:g}x"
            )
        max_latency = policy.max_latency_ratio
        if max_latency is not None and latency is not None and latency > max_latency:
            over.append(
                _latency_text(latency, mean_latency, latency_ci) + f", over the budget {max_latency:g}x"
            )
        blocking = [g for g in regressed_groups if g in policy.blocking]
        if over or blocking:
            action = "don't migrate"
            reasons.extend(over)
            if blocking:
                reasons.append(
                    "blocking prompt(s) regressed: " + ", ".join(blocking[:NAMED]) + _more(len(blocking))
                )
        elif regressed:
            action = "re-engineer first"
            named = [
                f"{g} ({v['remedy']}: {', '.join(v['checks']) or 'failing tests or dataset rules'})"
                for g, v in list(regressed.items())[:NAMED]
            ]
            reasons.append(
                f"{len(regressed)} group(s) regressed: " + "; ".join(named) + _more(len(regressed))
            )
        elif undecided:
            action = "investigate"
            text = (
                f"{len(undecided)} group(s) undecided: {', '.join(undecided[:NAMED])}{_more(len(undecided))}"
            )
            if calls:
                text += f"; ~{calls} more call(s)"
                text += f" (~${extra_cost:.2f})" if extra_cost is not None else " (cost unknown: no prices)"
                text += " would decide them"
            reasons.append(text)
        else:
            gains = []
            if improved:
                gains.append(f"improved on {', '.join(improved[:NAMED])}{_more(len(improved))}")
            if cost is not None and _gain(cost, policy.min_gain, cost_ci):
                gains.append(_cost_text(cost, cost_ci) + " the incumbent's")
            if latency is not None and _gain(latency, policy.min_gain, latency_ci):
                gains.append(_latency_text(latency, mean_latency, latency_ci))
            if gains or pressing:
                action = "migrate"
                reasons.append(f"every group non-inferior or improved ({len(findings)} group(s))")
                reasons.extend(gains)
            else:
                action = "defer"
                reasons.append(
                    f"non-inferior on {len(findings)} group(s), but no significant improvement, no cost or "
                    f"latency saving of {100 * policy.min_gain:.0f}% or more, and no sunset pressure"
                )
        shifted = dict((calibration or {}).get(cand) or {})
        reasons += [f"re-threshold {g} (calibration, not the prompt): {line}" for g, line in shifted.items()]
        if action != "migrate" and not over:
            shown = [_cost_text(cost, cost_ci) if cost is not None else ""]
            shown.append(_latency_text(latency, mean_latency, latency_ci) if latency is not None else "")
            reasons.append(", ".join(s for s in shown if s))
        reasons.extend((variants or {}).get(cand, ()))  # the prompt variant the evidence rests on
        out.append(
            Recommendation(
                cand, action, tuple(r for r in reasons if r), regressed, undecided, improved, non_inferior,
                cost, latency, calls, extra_cost, sunset.date if pressing and sunset is not None else None,
                cost_ci, latency_ci, shifted,
            )
        )  # fmt: skip
    if sunset is not None and pressing:
        best = _best(out)
        sunset = Sunset(
            sunset.model, sunset.date, sunset.days_left, True,
            None if best is None else best.candidate, 0 if best is None else len(best.regressed),
        )  # fmt: skip
    return out, sunset


def _best(recommendations: Sequence[Recommendation]) -> Recommendation | None:
    """The candidate closest to migrating: by action, then fewest regressed and undecided groups."""
    ranked = sorted(
        recommendations,
        key=lambda r: (
            ACTIONS.index(r.action) if r.action != "don't migrate" else len(ACTIONS),
            len(r.regressed),
            len(r.undecided),
            r.cost_ratio if r.cost_ratio is not None else 1.0,
        ),
    )
    return ranked[0] if ranked else None
