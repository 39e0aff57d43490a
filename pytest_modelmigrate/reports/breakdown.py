"""Which named check broke on which model, and how often: the per-check breakdown.

Pure module: no pytest import. Counting is per sample: within one sample of one (test, model),
a check that ran several times counts once, failed if any of its runs failed. ``total`` is the
number of (test, model, sample) in which the check ran.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["MAX_TESTS", "breakdown_lines", "check_breakdown", "format_count", "run_breakdown"]

# How many failing tests each (check, model) lists.
MAX_TESTS = 10


def _counts(outcomes: Sequence[Mapping[str, Any]], models: Sequence[str]) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for outcome in outcomes:
        model = str(outcome.get("model", ""))
        per_sample: dict[tuple[str, int], bool] = {}
        for check in outcome.get("checks") or []:
            key = (str(check.get("name", "")), int(check.get("sample", 0) or 0))
            per_sample[key] = per_sample.get(key, False) or not check.get("passed", False)
        for (name, _sample), failed in per_sample.items():
            row = table.setdefault(name, {m: {"failed": 0, "total": 0, "tests": []} for m in models})
            cell = row.setdefault(model, {"failed": 0, "total": 0, "tests": []})
            cell["total"] += 1
            if failed:
                cell["failed"] += 1
                test = str(outcome.get("test", outcome.get("nodeid", "")))
                if test not in cell["tests"] and len(cell["tests"]) < MAX_TESTS:
                    cell["tests"].append(test)
    return table


def _worst_first(table: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    def worst(item: tuple[str, dict[str, Any]]) -> float:
        return max((c["failed"] / c["total"] for c in item[1].values() if c["total"]), default=0.0)

    # Stable: checks that fail most come first, the rest keep the order they were first seen.
    return dict(sorted(table.items(), key=lambda item: -worst(item)))


def check_breakdown(outcomes: Sequence[Mapping[str, Any]], model_ids: Sequence[str]) -> dict[str, Any]:
    """``{"models": [...], "checks": {name: {model: {failed, total, tests}}}, "groups": {group: {...}}}``.

    Checks are ordered worst first (highest failure rate on any model), then as first seen.
    """
    models = list(model_ids)
    for outcome in outcomes:
        model = str(outcome.get("model", ""))
        if model not in models:
            models.append(model)
    by_group: dict[str, list[Mapping[str, Any]]] = {}
    for outcome in outcomes:
        by_group.setdefault(str(outcome.get("group", "")), []).append(outcome)
    return {
        "models": models,
        "checks": _worst_first(_counts(outcomes, models)),
        "groups": {group: _worst_first(_counts(items, models)) for group, items in by_group.items()},
    }


def format_count(cell: Mapping[str, Any] | None) -> str:
    if not cell or not cell.get("total"):
        return "-"
    return f"{cell['failed']}/{cell['total']}"


def breakdown_lines(
    breakdown: Mapping[str, Any],
    *,
    column_names: Sequence[str] | None = None,
    failing_only: bool = False,
    max_rows: int | None = None,
) -> list[str]:
    """The terminal table: one row per check, ``failed/total`` samples per model.

    ``failing_only`` drops checks that never failed; ``max_rows`` caps the rows and says how
    many were left out. No lines when no check ran.
    """
    models: list[str] = list(breakdown.get("models", []))
    names = list(column_names or models)
    checks: Mapping[str, Mapping[str, Any]] = breakdown.get("checks", {})
    rows = [
        (name, [format_count(per.get(m)) for m in models])
        for name, per in checks.items()
        if not failing_only or any(c.get("failed") for c in per.values())
    ]
    if not rows:
        return []
    hidden = 0
    if max_rows is not None and len(rows) > max_rows:
        hidden = len(rows) - max_rows
        rows = rows[:max_rows]
    label_width = max(len("check"), *(len(label) for label, _ in rows))
    widths = [max(len(names[i]), *(len(cells[i]) for _, cells in rows)) for i in range(len(names))]
    header = f"{'check':<{label_width}}" + "".join(f"  {n:>{w}}" for n, w in zip(names, widths, strict=True))
    lines = [header.rstrip()]
    for label, cells in rows:
        line = f"{label:<{label_width}}" + "".join(f"  {c:>{w}}" for c, w in zip(cells, widths, strict=True))
        lines.append(line.rstrip())
    if hidden:
        lines.append(f"... {hidden} more check(s) not shown")
    return lines


def run_breakdown(run: Mapping[str, Any]) -> dict[str, Any]:
    """The run's ``checks`` breakdown, computed from its outcomes when it has none."""
    stored = run.get("checks")
    if isinstance(stored, Mapping):
        return dict(stored)
    return check_breakdown(run.get("outcomes") or [], [str(m["id"]) for m in run.get("models") or []])
