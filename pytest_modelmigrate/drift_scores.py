"""Drift scores per prompt group and candidate: how far each candidate's answers moved from the
incumbent's, as a distribution (``checks.drift``, :func:`~pytest_modelmigrate.checks.drift`).

Pure module: no pytest import. :func:`drift_scores` reads the outcomes' check records once (in
``analysis.analyse``); the run file keeps the rows under ``drift`` and every renderer reads them
from there (:func:`drift_lines`, :data:`DRIFT_HEADER`, :func:`drift_cells`).

A score is the drift check's similarity to the incumbent's answer for the same test (1 = the
same wording; ``lexical`` measures shared words, not meaning). One score per sample: a drift
check with the same name run twice in one sample counts as the mean of its scores, as
``analysis.check_scores`` counts every other score. The incumbent is left out: its drift is its
similarity to itself. A sample whose drift check found no incumbent answer has no score and is
counted as ``unscored``.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .metrics import percentile

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from .results import Outcome

__all__ = [
    "DRIFT_HEADER",
    "DRIFT_NOTE",
    "DriftScores",
    "below_text",
    "drift_cells",
    "drift_lines",
    "drift_scores",
    "unscored_notes",
]

DRIFT_HEADER = (
    "prompt group",
    "candidate",
    "check",
    "scorer",
    "samples",
    "min",
    "p10",
    "median",
    "mean",
    "max",
    "below min_score",
)


@dataclass(frozen=True)
class DriftScores:
    """The drift scores of one (prompt group, candidate, drift check), one per scored sample."""

    group: str
    model: str
    check: str  # the name reports show: ``drift``, or the label given with ``name=``
    scorer: str  # ``lexical``, ``openai:<model>``...
    kind: str  # ``lexical`` or ``embedding``
    scores: tuple[float, ...]
    below: int  # scored samples under the check's min_score
    min_score: float | None  # None: the check set none (or its samples set different ones)
    tests: int
    unscored: int = 0  # samples whose drift check had no incumbent answer to compare with

    def to_dict(self) -> dict[str, Any]:
        values = sorted(self.scores)
        return {
            "group": self.group,
            "model": self.model,
            "check": self.check,
            "scorer": self.scorer,
            "kind": self.kind,
            "tests": self.tests,
            "samples": len(values),
            "unscored": self.unscored,
            "min": values[0] if values else None,
            "p10": percentile(values, 10),
            "median": statistics.median(values) if values else None,
            "mean": statistics.fmean(values) if values else None,
            "max": values[-1] if values else None,
            "min_score": self.min_score,
            "below": self.below,
        }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


class _Gather:
    """The scores of one (group, candidate, check) while the outcomes are read."""

    def __init__(self) -> None:
        self.scorer = ""
        self.kind = ""
        self.tests: set[str] = set()
        self.unscored = 0
        self.per_sample: dict[tuple[str, int], list[float]] = {}
        self.bounds: dict[tuple[str, int], float | None] = {}


def drift_scores(
    outcomes: Sequence[Outcome], incumbent: str | None, models: Sequence[str]
) -> list[DriftScores]:
    """Every (group, candidate, drift check) that ran, in the matrix's order of groups and models.

    ``incumbent``: left out (None: no model is, as when a candidate is recorded alone against
    the incumbent's cassettes). Only outcomes that are evidence count (not skipped, errored or
    missing ones).
    """
    gathered: dict[tuple[str, str, str], _Gather] = {}
    for o in outcomes:
        if not o.is_evidence or o.model == incumbent:
            continue
        for check in o.checks:
            found = check.get("details")
            details: dict[str, Any] = found if isinstance(found, dict) else {}
            if (details.get("check") or check.get("name")) != "drift":
                continue
            name = str(check.get("name"))
            g = gathered.setdefault((o.group, o.model, name), _Gather())
            g.scorer = g.scorer or str(details.get("scorer") or "")
            g.kind = g.kind or str(details.get("kind") or "")
            g.tests.add(o.test)
            score = _number(check.get("score"))
            if score is None:
                g.unscored += 1
                continue
            sample = check.get("sample")
            key = (o.nodeid, sample if isinstance(sample, int) else 0)
            g.per_sample.setdefault(key, []).append(score)
            g.bounds.setdefault(key, _number(details.get("min_score")))
    group_order = {g: i for i, g in enumerate(dict.fromkeys(o.group for o in outcomes))}
    model_order = {m: i for i, m in enumerate(models)}
    rows = []
    for (group, model, name), g in sorted(
        gathered.items(),
        key=lambda item: (
            group_order.get(item[0][0], 0),
            model_order.get(item[0][1], len(model_order)),
            item[0][1],
            item[0][2],
        ),
    ):
        scores = {key: sum(v) / len(v) for key, v in g.per_sample.items()}
        below = sum(
            1 for key, score in scores.items() if (bound := g.bounds.get(key)) is not None and score < bound
        )
        bounds = set(g.bounds.values())
        rows.append(
            DriftScores(
                group=group,
                model=model,
                check=name,
                scorer=g.scorer,
                kind=g.kind,
                scores=tuple(scores[key] for key in sorted(scores)),
                below=below,
                min_score=next(iter(bounds)) if len(bounds) == 1 else None,
                tests=len(g.tests),
                unscored=g.unscored,
            )
        )
    return rows


# -- rendering: rows of the run file (``run["drift"]``) ------------------------------------------


def _fmt(value: Any) -> str:
    return "n/a" if not isinstance(value, (int, float)) or isinstance(value, bool) else f"{value:.2f}"


def below_text(row: Mapping[str, Any]) -> str:
    """``2 of 5 < 0.6``; ``-`` when the check set no min_score."""
    bound = row.get("min_score")
    below = int(row.get("below") or 0)
    if not isinstance(bound, (int, float)) or isinstance(bound, bool):
        return f"{below} of {row.get('samples', 0)} below their min_score" if below else "-"
    return f"{below} of {row.get('samples', 0)} < {bound:g}"


def drift_cells(row: Mapping[str, Any]) -> list[str]:
    """One row's values as text, in the order of :data:`DRIFT_HEADER` (not escaped)."""
    return [
        str(row.get("group", "")),
        str(row.get("model", "")),
        str(row.get("check", "")),
        str(row.get("scorer") or row.get("kind") or "?"),
        str(row.get("samples", 0)),
        *(_fmt(row.get(k)) for k in ("min", "p10", "median", "mean", "max")),
        below_text(row),
    ]


def unscored_notes(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One sentence per row with samples that had no incumbent answer to compare with."""
    return [
        f"{r.get('group')} on {r.get('model')} ({r.get('check')}): {r['unscored']} sample(s) not scored, "
        "no incumbent answer recorded for them (record the incumbent's cassettes)"
        for r in rows
        if int(r.get("unscored") or 0)
    ]


DRIFT_NOTE = (
    "Similarity of each candidate answer to the incumbent's answer for the same test "
    "(1 = the same; lexical = shared wording, not meaning); p10 nearest-rank"
)


def drift_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The terminal table of the run's drift rows, with what the numbers are; [] with none."""
    if not rows:
        return []
    table = [list(DRIFT_HEADER), *(drift_cells(r) for r in rows)]
    widths = [max(len(r[i]) for r in table) for i in range(len(DRIFT_HEADER))]
    left = 4  # the text columns: group, candidate, check, scorer
    lines = ["drift from the incumbent, per prompt group and candidate:"]
    for cells in table:
        text = [
            f"{c:<{w}}" if i < left else f"{c:>{w}}"
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        lines.append(("  " + "  ".join(text)).rstrip())
    lines.append(f"  {DRIFT_NOTE}.")
    lines += ["  " + note for note in unscored_notes(rows)]
    return lines
