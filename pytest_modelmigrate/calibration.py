"""Calibration analysis: how sure each model is of its answers, and what a threshold means on it.

Pure module: no pytest import. It reads the confidences the tests recorded, as check results of
the outcomes (``checks.label_confidence``: a label's probability from logprobs;
``checks.confidence``: a self-reported confidence), and per prompt group and model computes:

* the distribution: ``n``, quantiles p10/p25/p50/p75/p90, the mean, a 10-bin histogram on [0, 1];
* where correctness is known (``expected=`` / ``correct=``): the accuracy, the expected
  calibration error (ECE: the count-weighted mean of |accuracy - mean confidence| over the 10
  equal-width bins) and the reliability table (accuracy and mean confidence per non-empty bin);
* the threshold's effect: the auto-route rate (share of confidences >= the threshold), and the
  accuracy above and below it.

Per candidate against the incumbent, in the same group:

* the candidate threshold that keeps the incumbent's auto-route rate (quantile matching: the
  threshold's position in the gap between the incumbent's order statistics, mapped onto the same
  gap of the candidate's), and the lowest candidate threshold whose accuracy above it is at least
  the incumbent's precision (accuracy above its threshold);
* a **shift**: the median confidence moved by more than ``tolerance`` (0.03) and a two-sided
  Mann-Whitney U test (normal approximation, tie-corrected, with continuity correction) finds the
  two distributions different at ``alpha`` (0.05). A move over the tolerance that the test cannot
  confirm (too few samples) is a ``possible shift``; in a group marked deterministic the samples
  are exact, as in the gate, and a move beyond the tolerance is a shift. Lower confidences make
  the threshold **too conservative** on the candidate (fewer answers auto-routed than before at
  the same threshold), higher ones **too aggressive**. The remedy is ``re-threshold``, not a
  prompt change; the pass/fail statistics of the gate are not touched.

Documented in docs/calibration.md.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ALPHA",
    "BINS",
    "CONFIDENCE_CHECKS",
    "TOLERANCE",
    "Observation",
    "analyse_calibration",
    "calibration_lines",
    "expected_calibration_error",
    "fmt_threshold",
    "mann_whitney_p",
    "match_precision",
    "match_rate",
    "observations",
    "quantile",
    "rethreshold_notes",
    "sparkline",
    "summarise",
]

CONFIDENCE_CHECKS = frozenset({"label_confidence", "confidence"})
BINS = 10
TOLERANCE = 0.03
ALPHA = 0.05
QUANTILES = (("p10", 0.10), ("p25", 0.25), ("p50", 0.50), ("p75", 0.75), ("p90", 0.90))


@dataclass(frozen=True)
class Observation:
    """One recorded confidence: its value, whether the answer was right (None: unknown), the
    threshold the test declared and the check's name."""

    confidence: float
    correct: bool | None
    threshold: float
    check: str


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def observations(
    outcomes: Sequence[Any],
) -> tuple[dict[str, dict[str, list[Observation]]], dict[str, dict[str, int]]]:
    """(group -> model -> the confidences recorded, group -> model -> checks with none available).

    ``outcomes`` are :class:`~pytest_modelmigrate.results.Outcome` objects; only evidence counts
    (a skipped or missing recording says nothing of the model). A ``label_confidence`` without
    logprobs (``details.available`` false: Anthropic) counts as unavailable.
    """
    found: dict[str, dict[str, list[Observation]]] = {}
    unavailable: dict[str, dict[str, int]] = {}
    for o in outcomes:
        if not o.is_evidence:
            continue
        for check in o.checks:
            details = check.get("details")
            if not isinstance(details, Mapping):
                continue
            kind = details.get("check") or check.get("name")
            if kind not in CONFIDENCE_CHECKS:
                continue
            value = _number(details.get("confidence" if kind == "confidence" else "probability"))
            threshold = _number(details.get("threshold"))
            if value is None or threshold is None:
                if details.get("available") is False:
                    per = unavailable.setdefault(o.group, {})
                    per[o.model] = per.get(o.model, 0) + 1
                continue
            correct = details.get("correct")
            found.setdefault(o.group, {}).setdefault(o.model, []).append(
                Observation(
                    min(1.0, max(0.0, value)),
                    correct if isinstance(correct, bool) else None,
                    threshold,
                    str(check.get("name")),
                )
            )
    return found, unavailable


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile by linear interpolation between order statistics (numpy's default)."""
    if not values:
        raise ValueError("quantile of no values")
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _bin(value: float) -> int:
    return min(BINS - 1, max(0, math.floor(value * BINS + 1e-9)))


def reliability(points: Sequence[tuple[float, bool]]) -> list[dict[str, Any]]:
    """Per non-empty bin of [0, 1]: its bounds, count, mean confidence and accuracy."""
    bins: dict[int, list[tuple[float, bool]]] = {}
    for conf, ok in points:
        bins.setdefault(_bin(conf), []).append((conf, ok))
    return [
        {
            "low": i / BINS,
            "high": (i + 1) / BINS,
            "n": len(items),
            "confidence": math.fsum(c for c, _ in items) / len(items),
            "accuracy": sum(ok for _, ok in items) / len(items),
        }
        for i, items in sorted(bins.items())
    ]


def expected_calibration_error(points: Sequence[tuple[float, bool]]) -> float | None:
    """ECE over 10 equal-width bins: sum of (bin count / n) * |accuracy - mean confidence|."""
    if not points:
        return None
    return math.fsum(b["n"] / len(points) * abs(b["accuracy"] - b["confidence"]) for b in reliability(points))


def _accuracy(points: Sequence[tuple[float, bool]]) -> float | None:
    return sum(ok for _, ok in points) / len(points) if points else None


def summarise(obs: Sequence[Observation], threshold: float) -> dict[str, Any]:
    """One model's distribution, calibration and threshold effect (see the module)."""
    values = [o.confidence for o in obs]
    known = [(o.confidence, o.correct) for o in obs if o.correct is not None]
    histogram = [0] * BINS
    for v in values:
        histogram[_bin(v)] += 1
    above = [v for v in values if v >= threshold]
    known_above = [(c, ok) for c, ok in known if c >= threshold]
    known_below = [(c, ok) for c, ok in known if c < threshold]
    return {
        "n": len(values),
        "mean": math.fsum(values) / len(values),
        "quantiles": {name: quantile(values, q) for name, q in QUANTILES},
        "histogram": histogram,
        "correct_known": len(known),
        "accuracy": _accuracy(known),
        "ece": expected_calibration_error(known),
        "reliability": reliability(known),
        "above": {"n": len(above), "rate": len(above) / len(values), "accuracy": _accuracy(known_above)},
        "below": {"n": len(values) - len(above), "accuracy": _accuracy(known_below)},
    }


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of the Mann-Whitney U test (normal approximation with tie and continuity
    corrections). 1.0 when every value is tied (nothing to tell apart) or a side is empty."""
    n1, n2 = len(a), len(b)
    if not n1 or not n2:
        return 1.0
    pooled = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    n = n1 + n2
    ranks = [0.0] * n
    ties = 0.0
    i = 0
    while i < n:
        j = i
        while j + 1 < n and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        rank = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[k] = rank
        t = j - i + 1
        ties += t**3 - t
        i = j + 1
    r1 = math.fsum(r for r, (_, side) in zip(ranks, pooled, strict=True) if side == 0)
    u = r1 - n1 * (n1 + 1) / 2
    mean = n1 * n2 / 2
    var = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    if var <= 0:
        return 1.0
    z = max(0.0, abs(u - mean) - 0.5) / math.sqrt(var)
    return min(1.0, math.erfc(z / math.sqrt(2)))


def fmt_threshold(value: float) -> str:
    """``0.85``: two decimals, three when two would hide a difference (``0.855``)."""
    text = f"{value:.2f}"
    return text if abs(float(text) - value) < 1e-9 else f"{value:.3f}".rstrip("0")


def _rate(values: Sequence[float], threshold: float) -> float:
    return sum(v >= threshold for v in values) / len(values)


def _short(value: float, low: float, high: float) -> float:
    """``value`` rounded to 2 (else 3) decimals when that keeps it in (low, high], else as is."""
    for digits in (2, 3):
        rounded = round(value, digits)
        if low < rounded <= high:
            return rounded
    return value


def match_rate(incumbent: Sequence[float], candidate: Sequence[float], threshold: float) -> dict[str, Any]:
    """The candidate threshold that auto-routes the share the incumbent does at ``threshold``.

    Quantile matching: the incumbent's rate r = k/n picks the candidate's k' = round(r n') highest
    values; the threshold's position in the incumbent's gap (between its k-th and (k+1)-th highest
    values, 0 and 1 at the ends) is mapped onto the candidate's gap. With ties across the gap the
    candidate cannot reach r exactly: ``candidate_rate`` says what it reaches.
    """
    inc = sorted(incumbent, reverse=True)
    cand = sorted(candidate, reverse=True)
    k = sum(v >= threshold for v in inc)
    rate = k / len(inc)
    kc = round(rate * len(cand))

    def gap(values: Sequence[float], count: int) -> tuple[float, float]:
        high = values[count - 1] if count > 0 else 1.0
        low = values[count] if count < len(values) else 0.0
        return low, high

    low_i, high_i = gap(inc, k)
    low_c, high_c = gap(cand, kc)
    position = (threshold - low_i) / (high_i - low_i) if high_i > low_i else 1.0
    mapped = low_c + min(1.0, max(0.0, position)) * (high_c - low_c)
    mapped = _short(mapped, low_c, high_c) if high_c > low_c else mapped
    return {"threshold": mapped, "incumbent_rate": rate, "candidate_rate": _rate(cand, mapped)}


def match_precision(
    incumbent: Sequence[tuple[float, bool]], candidate: Sequence[tuple[float, bool]], threshold: float
) -> dict[str, Any] | None:
    """The lowest candidate threshold whose accuracy above it is at least the incumbent's precision
    (its accuracy above ``threshold``). None when correctness is unknown on either side or the
    incumbent auto-routes nothing; ``threshold`` None when no candidate threshold reaches it."""
    above = [ok for c, ok in incumbent if c >= threshold]
    if not above or not candidate:
        return None
    precision = sum(above) / len(above)
    ordered = sorted(candidate, key=lambda p: p[0], reverse=True)
    best: tuple[float, float, float] | None = None
    hits = 0
    for i, (conf, ok) in enumerate(ordered):
        hits += ok
        if i + 1 < len(ordered) and ordered[i + 1][0] == conf:
            continue  # a threshold takes every tied value at once
        if hits / (i + 1) >= precision - 1e-12:
            low = ordered[i + 1][0] if i + 1 < len(ordered) else 0.0
            best = (_short(conf, low, conf) if conf > low else conf, hits / (i + 1), (i + 1) / len(ordered))
    result: dict[str, Any] = {"incumbent_precision": precision, "threshold": None}
    if best is not None:
        result.update(threshold=best[0], candidate_precision=best[1], candidate_rate=best[2])
    return result


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def _compare(
    inc_obs: Sequence[Observation],
    cand_obs: Sequence[Observation],
    threshold: float,
    incumbent: str,
    candidate: str,
    tolerance: float,
    alpha: float,
    exact: bool = False,
) -> dict[str, Any]:
    inc = [o.confidence for o in inc_obs]
    cand = [o.confidence for o in cand_obs]
    shift = quantile(cand, 0.5) - quantile(inc, 0.5)
    p = mann_whitney_p(inc, cand)
    moved = abs(shift) > tolerance + 1e-12
    finding = "stable" if not moved else ("shift" if p < alpha or exact else "possible shift")
    direction = None if finding == "stable" else ("too conservative" if shift < 0 else "too aggressive")
    rate = match_rate(inc, cand, threshold)
    known_inc = [(o.confidence, o.correct) for o in inc_obs if o.correct is not None]
    known_cand = [(o.confidence, o.correct) for o in cand_obs if o.correct is not None]
    precision = match_precision(known_inc, known_cand, threshold) if known_inc and known_cand else None
    t = fmt_threshold(threshold)
    lines = []
    same = (
        f"same auto-route rate {_pct(rate['incumbent_rate'])}"
        if round(100 * rate["incumbent_rate"]) == round(100 * rate["candidate_rate"])
        else f"auto-route rate {_pct(rate['incumbent_rate'])}; {_pct(rate['candidate_rate'])} on {candidate}"
    )
    lines.append(f"{t} on {incumbent} ≈ {fmt_threshold(rate['threshold'])} on {candidate} ({same})")
    if precision is not None:
        if precision["threshold"] is None:
            lines.append(
                f"no threshold on {candidate} reaches {incumbent}'s precision "
                f"{_pct(precision['incumbent_precision'])} at {t}"
            )
        else:
            kept = _pct(precision["incumbent_precision"])
            got = _pct(precision["candidate_precision"])
            same_precision = (
                f"same precision {kept}" if kept == got else f"precision {kept}; {got} on {candidate}"
            )
            lines.append(
                f"{t} on {incumbent} ≈ {fmt_threshold(precision['threshold'])} on {candidate} "
                f"({same_precision}, auto-route rate {_pct(precision['candidate_rate'])} on {candidate})"
            )
    med_i, med_c = quantile(inc, 0.5), quantile(cand, 0.5)
    evidence = f"Mann-Whitney p={p:.3g}, n {len(inc)} vs {len(cand)}"
    if exact and p >= alpha:
        evidence = f"deterministic prompt: exact, n {len(inc)} vs {len(cand)}"
    if finding == "stable":
        lines.append(
            f"no shift on {candidate}: median {med_i:.2f} → {med_c:.2f} ({shift:+.2f}, within ±{tolerance:g})"
        )
    elif finding == "shift":
        lines.append(
            f"calibration shift on {candidate}: median {med_i:.2f} → {med_c:.2f} ({shift:+.2f}, {evidence}): "
            f"{t} is {direction} on {candidate}; remedy re-threshold"
        )
    else:
        lines.append(
            f"possible calibration shift on {candidate}: median {med_i:.2f} → {med_c:.2f} ({shift:+.2f}, "
            f"{evidence}: too few samples to confirm): {t} may be {direction}; "
            "re-threshold or record more samples"
        )
    return {
        "incumbent": incumbent,
        "median_shift": shift,
        "p_value": p,
        "finding": finding,
        "direction": direction,
        "remedy": None if finding == "stable" else "re-threshold",
        "rate_match": rate,
        "precision_match": precision,
        "lines": lines,
    }


def analyse_calibration(
    outcomes: Sequence[Any],
    models: Sequence[str],
    incumbent: str | None,
    *,
    tolerance: float = TOLERANCE,
    alpha: float = ALPHA,
    deterministic: Collection[str] = (),
) -> dict[str, Any] | None:
    """The run file's ``calibration``, or None when no test recorded a confidence.

    ``models``: the run's model ids in order; comparisons need ``incumbent`` and a candidate with
    confidences in the same group. ``deterministic``: groups marked
    ``@pytest.mark.prompt(..., deterministic=True)``; as in the gate, their samples are exact (the
    model answers the same on every draw), so a median move beyond the tolerance is a shift
    without the Mann-Whitney test.
    """
    found, unavailable = observations(outcomes)
    if not found and not unavailable:
        return None
    groups: dict[str, Any] = {}
    for group in sorted(set(found) | set(unavailable)):
        per_model = found.get(group) or {}
        thresholds = sorted({o.threshold for obs in per_model.values() for o in obs})
        counts: dict[float, int] = {}
        for obs in per_model.values():
            for o in obs:
                counts[o.threshold] = counts.get(o.threshold, 0) + 1
        # the threshold the group's tests declare most often (the lowest on a tie)
        threshold = max(sorted(counts), key=lambda t: counts[t]) if counts else None
        entry: dict[str, Any] = {
            "threshold": threshold,
            "thresholds": thresholds,
            "checks": sorted({o.check for obs in per_model.values() for o in obs}),
            "models": {},
            "comparisons": {},
        }
        for m in models:
            recorded = per_model.get(m)
            missing = (unavailable.get(group) or {}).get(m, 0)
            if recorded and threshold is not None:
                entry["models"][m] = {**summarise(recorded, threshold), "unavailable": missing}
            elif missing:
                entry["models"][m] = {"n": 0, "unavailable": missing}
        base = per_model.get(incumbent or "")
        if base and threshold is not None and incumbent is not None:
            for m in models:
                if m != incumbent and per_model.get(m):
                    entry["comparisons"][m] = _compare(
                        base, per_model[m], threshold, incumbent, m, tolerance, alpha, group in deterministic
                    )
        groups[group] = entry
    return {"tolerance": tolerance, "alpha": alpha, "bins": BINS, "groups": groups}


def rethreshold_notes(calibration: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
    """candidate -> group -> one line, for every (possible) shift: what the recommendation shows."""
    notes: dict[str, dict[str, str]] = {}
    for group, entry in ((calibration or {}).get("groups") or {}).items():
        for cand, comp in (entry.get("comparisons") or {}).items():
            if comp.get("finding") in ("shift", "possible shift"):
                lines = list(comp.get("lines") or [])
                # the shift, then the threshold that keeps the auto-route rate
                notes.setdefault(str(cand), {})[str(group)] = "; ".join(lines[-1:] + lines[:1])
    return notes


def _fmt(value: Any, pct: bool = False) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "-"
    return _pct(float(value)) if pct else f"{float(value):.2f}"


CALIBRATION_HEADER = (
    "model", "n", "p10", "p25", "p50", "p75", "p90", "auto-route", "acc ≥ t", "acc < t", "accuracy", "ECE",
)  # fmt: skip


def model_rows(entry: Mapping[str, Any]) -> list[list[str]]:
    """One row per model of a group: the columns of :data:`CALIBRATION_HEADER`."""
    rows = []
    for model, m in (entry.get("models") or {}).items():
        if not m.get("n"):
            rows.append([str(model), "0", *["-"] * (len(CALIBRATION_HEADER) - 2)])
            continue
        q = m.get("quantiles") or {}
        rows.append(
            [
                str(model),
                str(m["n"]),
                *(_fmt(q.get(name)) for name, _ in QUANTILES),
                f"{_pct(m['above']['rate'])} ({m['above']['n']})",
                _fmt(m["above"].get("accuracy"), pct=True),
                _fmt(m["below"].get("accuracy"), pct=True),
                _fmt(m.get("accuracy"), pct=True),
                _fmt(m.get("ece")),
            ]
        )
    return rows


def sparkline(histogram: Sequence[int]) -> str:
    """The 10 bins as block characters (``▁▁▁▁▁▁▁▁▃█``), 0 to 1 left to right; ``·`` for an empty bin."""
    top = max(histogram, default=0)
    if not top:
        return ""
    blocks = "▁▂▃▄▅▆▇█"
    return "".join("·" if not c else blocks[max(0, math.ceil(c / top * len(blocks)) - 1)] for c in histogram)


def unavailable_lines(entry: Mapping[str, Any]) -> list[str]:
    return [
        f"{model}: {m['unavailable']} confidence check(s) without logprobs (not counted; "
        "record a self-reported confidence with checks.confidence)"
        for model, m in (entry.get("models") or {}).items()
        if m.get("unavailable")
    ]


def calibration_lines(run: Mapping[str, Any]) -> list[str]:
    """The terminal's calibration section (also ``modelmigrate show --format text``)."""
    calibration = run.get("calibration")
    if not isinstance(calibration, Mapping) or not calibration.get("groups"):
        return []
    lines = ["calibration (recorded confidences per prompt group; t = the group's threshold):"]
    for group, entry in calibration["groups"].items():
        t = entry.get("threshold")
        thresholds = entry.get("thresholds") or []
        head = f"  {group}: threshold t = {fmt_threshold(t)}" if t is not None else f"  {group}"
        if len(thresholds) > 1:
            head += " (tests declare " + ", ".join(fmt_threshold(x) for x in thresholds) + ")"
        lines.append(head)
        rows = model_rows(entry)
        if rows:
            table = [list(CALIBRATION_HEADER), *rows]
            widths = [max(len(r[i]) for r in table) for i in range(len(CALIBRATION_HEADER))]
            for r in table:
                cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
                lines.append("    " + "  ".join(cells).rstrip())
        lines += ["    " + line for line in unavailable_lines(entry)]
        for comp in (entry.get("comparisons") or {}).values():
            lines += ["    " + line for line in comp.get("lines") or []]
    return lines
