"""The Markdown report: a PR comment or ``$GITHUB_STEP_SUMMARY``. Pure; takes the run dict.

Order: title, the gate line, verdicts per prompt group and candidate, the pass-rate matrix
(Wilson intervals with several samples), the checks that failed, metrics and deltas, the
comparison with a baseline (when the run has one), and the failing tests in ``<details>``.
Big suites stay compact: rows are capped and the report says how many were left out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..files import write_atomically
from ..metrics import run_metrics
from ..results import short_test_name
from .breakdown import format_count, run_breakdown
from .terminal import METRIC_HEADER, cell_text, delta_phrases, metrics_rows, shows_intervals

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["VERDICT_MARK", "escape", "failing_outcomes", "render_markdown", "write_markdown"]

VERDICT_MARK = {"migrate": "✅", "re-engineer": "❌", "investigate": "🔍"}
MAX_MESSAGE = 1500
_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")
FAILING = ("failed", "error", "xpassed")


def escape(text: object) -> str:
    """Inline Markdown for a table cell: HTML-escaped, specials backslashed, one line."""
    s = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _SPECIAL.sub(r"\\\1", s)
    return " ".join(s.split())


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _clip(text: str, limit: int = MAX_MESSAGE) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n... ({len(text) - limit} more characters)"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "l" + "r" * 40) -> list[str]:
    marks = [":---" if align[i] == "l" else "---:" for i in range(len(header))]
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(marks) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def failing_outcomes(run: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Outcomes that failed, errored or passed only some samples."""
    found = []
    for o in run.get("outcomes") or []:
        partial = 0 < int(o.get("passed", 0) or 0) < int(o.get("total", 0) or 0)
        if o.get("outcome") in FAILING or partial:
            found.append(o)
    return found


def _gate_line(run: Mapping[str, Any]) -> str:
    gate = run.get("gate")
    if not isinstance(gate, Mapping):
        return "⚪ **No migration gate evaluated** for this run."
    mark, word = ("✅", "passed") if gate.get("passed") else ("❌", "FAILED")
    mode, reason = escape(gate.get("mode", "?")), escape(gate.get("reason", ""))
    return f"{mark} **Migration gate {word}** ({mode}): {reason}"


def _title(run: Mapping[str, Any]) -> str:
    models = [str(m["id"]) for m in run.get("models") or []]
    incumbent = run.get("incumbent")
    candidates = [m for m in models if m != incumbent]
    if incumbent and candidates:
        return f"## Model migration: {escape(incumbent)} → {escape(', '.join(candidates))}"
    return f"## Model migration: {escape(', '.join(models) or 'no models')}"


def _context(run: Mapping[str, Any]) -> str:
    parts = []
    if run.get("incumbent"):
        parts.append(f"incumbent {escape(run['incumbent'])}")
    if isinstance(run.get("samples"), int):
        parts.append(f"{run['samples']} sample(s) per test")
    parts.append(f"{len(run.get('outcomes') or [])} test × model result(s)")
    parts.append(f"record mode {escape(run.get('record_mode', '?'))}")
    if run.get("created"):
        parts.append(escape(run["created"]))
    tool = run.get("tool") or {}
    parts.append(
        f"{escape(tool.get('name', 'pytest-modelmigrate'))} {escape(tool.get('version', ''))}".strip()
    )
    return "<sub>" + " · ".join(parts) + "</sub>"


def _verdicts(run: Mapping[str, Any]) -> list[str]:
    gate = run.get("gate")
    if not isinstance(gate, Mapping) or not gate.get("verdicts"):
        return []
    rows = [
        [
            escape(group),
            escape(cand),
            f"{VERDICT_MARK.get(v.get('verdict', ''), '')} {escape(v.get('verdict'))}",
            escape(v.get("reason", "")),
        ]
        for group, per in gate["verdicts"].items()
        for cand, v in per.items()
    ]
    return ["### Verdicts", "", *_table(["prompt group", "candidate", "verdict", "reason"], rows, "llll"), ""]


def _row_interesting(row: Mapping[str, Any]) -> bool:
    rates = [c.get("rate") for c in row["cells"].values() if c.get("total")]
    return any(r is not None and r < 1 for r in rates) or len(set(rates)) > 1


def _matrix(run: Mapping[str, Any], max_rows: int) -> list[str]:
    matrix = run.get("matrix") or {}
    models: list[str] = list(matrix.get("models") or [])
    if not models:
        return []
    interval = shows_intervals(run)
    groups = matrix.get("groups") or []
    n_tests = sum(len(g["tests"]) for g in groups)
    only_interesting = n_tests > max_rows
    rows: list[list[str]] = []
    hidden = 0
    for group in groups:
        rows.append(
            [f"**{escape(group['name'])}**"]
            + [f"**{cell_text(group['totals'].get(m), interval=interval)}**" for m in models]
        )
        for row in group["tests"]:
            if (only_interesting and not _row_interesting(row)) or len(rows) >= max_rows + len(groups):
                hidden += 1
                continue
            label = "&nbsp;&nbsp;" + escape(short_test_name(row["name"], group["name"]))
            rows.append([label] + [_mark(row["cells"].get(m), interval) for m in models])
    rows.append(
        ["**total**"]
        + [f"**{cell_text((matrix.get('totals') or {}).get(m), interval=interval)}**" for m in models]
    )
    out = ["### Pass rates", "", *_table(["test", *(escape(m) for m in models)], rows)]
    if hidden:
        why = "tests that pass on every model, and " if only_interesting else ""
        out.append(
            f"\n_{hidden} test row(s) not shown ({why}beyond {max_rows} rows); "
            "the JSON and HTML reports list every test._"
        )
    if interval:
        out.append("\n_Pass rate over samples, with its 95% Wilson interval._")
    return [*out, ""]


def _mark(cell: Mapping[str, Any] | None, interval: bool) -> str:
    text = cell_text(cell, interval=interval)
    if not cell or not cell.get("total"):
        return text
    return ("✅ " if cell["passed"] == cell["total"] else "❌ ") + text


def _checks(run: Mapping[str, Any], max_rows: int) -> list[str]:
    breakdown = run_breakdown(run)
    models: list[str] = list(breakdown.get("models") or [])
    failing = {
        name: per
        for name, per in (breakdown.get("checks") or {}).items()
        if any(c.get("failed") for c in per.values())
    }
    if not failing:
        return []
    rows = [[escape(name)] + [format_count(per.get(m)) for m in models] for name, per in failing.items()]
    hidden = max(0, len(rows) - max_rows)
    out = ["### Checks that failed", "", "_Failed samples / samples in which the check ran._", ""]
    out += _table(["check", *(escape(m) for m in models)], rows[:max_rows])
    if hidden:
        out.append(f"\n_{hidden} more failing check(s) not shown._")
    return [*out, ""]


def _metrics(run: Mapping[str, Any]) -> list[str]:
    metrics = run_metrics(run)
    rows = metrics_rows(metrics)
    if not rows or not any(m.get("calls") for m in (metrics.get("models") or {}).values()):
        return []
    out = [
        "### Latency, tokens, cost",
        "",
        *_table(list(METRIC_HEADER), [[escape(c) for c in r] for r in rows]),
    ]
    incumbent = metrics.get("incumbent")
    deltas = metrics.get("deltas") or {}
    if deltas:
        out.append("")
        for cand, delta in deltas.items():
            out.append(
                f"- **{escape(cand)}** vs {escape(incumbent)}: "
                + ", ".join(escape(p) for p in delta_phrases(delta))
            )
    out.append("")
    out.append(
        f"_Latency measured at record time; percentiles {escape(metrics.get('percentile', 'nearest-rank'))}; "
        "per test = per sample run; n/a = no price or no tokens recorded._"
    )
    return [*out, ""]


def _baseline(run: Mapping[str, Any], max_rows: int) -> list[str]:
    comparison = run.get("baseline")
    if not isinstance(comparison, Mapping):
        return []
    regressions = comparison.get("regressions") or []
    mark = "❌" if regressions else "✅"
    out = [
        "### Against the baseline",
        "",
        f"{mark} {len(regressions)} regression(s), {len(comparison.get('improved') or [])} improved, "
        f"{len(comparison.get('appeared') or [])} new, {len(comparison.get('disappeared') or [])} gone"
        + (f" (baseline {escape(comparison['old_created'])})" if comparison.get("old_created") else ""),
    ]
    for change in regressions[:max_rows]:
        out.append(
            f"- {escape(change['test'])} on **{escape(change['model'])}**: "
            f"{escape(change.get('describe', ''))}"
        )
    if len(regressions) > max_rows:
        out.append(f"- ... {len(regressions) - max_rows} more")
    return [*out, ""]


def _failures(run: Mapping[str, Any], max_failures: int) -> list[str]:
    failing = failing_outcomes(run)
    if not failing:
        return []
    out = [f"<details><summary>Failing tests ({len(failing)})</summary>", ""]
    for o in failing[:max_failures]:
        out.append(
            f"**{escape(o.get('test', o.get('nodeid', '')))}** on **{escape(o.get('model', ''))}**: "
            f"{escape(o.get('outcome', ''))}, {o.get('passed', 0)}/{o.get('total', 0)} sample(s) passed"
        )
        failed_checks = sorted({str(c.get("name")) for c in o.get("checks") or [] if not c.get("passed")})
        if failed_checks:
            out.append("")
            out.append("failed checks: " + ", ".join(escape(c) for c in failed_checks))
        message = o.get("message")
        if message:
            out += ["", _fence(_clip(str(message)))]
        out.append("")
    if len(failing) > max_failures:
        out += [f"_{len(failing) - max_failures} more failing test(s) not shown._", ""]
    out += ["</details>", ""]
    return out


def render_markdown(run: Mapping[str, Any], *, max_rows: int = 60, max_failures: int = 20) -> str:
    """The whole report; ``max_rows`` caps the matrix and table rows, ``max_failures`` the details."""
    lines = [_title(run), "", _gate_line(run), "", _context(run), ""]
    lines += _verdicts(run)
    lines += _matrix(run, max_rows)
    lines += _checks(run, max_rows)
    lines += _metrics(run)
    lines += _baseline(run, max_rows)
    lines += _failures(run, max_failures)
    return "\n".join(lines).rstrip() + "\n"


def write_markdown(path: Path, run: Mapping[str, Any]) -> None:
    write_atomically(path, render_markdown(run))
