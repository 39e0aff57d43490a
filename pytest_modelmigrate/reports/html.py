"""The HTML report: one self-contained file (inline CSS, no scripts, no external assets).

Pure; takes the run dict. Every piece of text from tests, checks and models is escaped. Colour
never carries meaning alone: each matrix cell also shows its counts and a ✓/✗/~ mark.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape as _escape
from typing import TYPE_CHECKING, Any

from ..files import write_atomically
from ..metrics import run_metrics
from ..results import short_test_name
from .breakdown import format_count, run_breakdown
from .markdown import MAX_MESSAGE, failing_outcomes
from .terminal import METRIC_HEADER, cell_text, delta_phrases, metrics_rows, shows_intervals

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["rate_colour", "render_html", "write_html"]

MAX_FAILURES = 200
# Plain symbols, not emoji: they render with the fonts any system has.
VERDICT_MARK = {"migrate": "✓", "re-engineer": "✗", "investigate": "?"}

_CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1f24;
  background: #fff; margin: 0; }
main { max-width: 1200px; margin: 0 auto; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 12px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
.gate { font-size: 16px; font-weight: 600; padding: 10px 14px; border-radius: 6px; margin: 0 0 8px; }
.gate.pass { background: #dafbe1; border: 1px solid #2da44e; }
.gate.fail { background: #ffebe9; border: 1px solid #cf222e; }
.gate.none { background: #f6f8fa; border: 1px solid #d0d7de; }
.context, .note { color: #57606a; font-size: 12px; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
td, th { overflow-wrap: break-word; }
/* long unbreakable names (test ids, reasons that quote them) wrap instead of widening the page */
.gate, td.wrap, th.test, summary code { overflow-wrap: anywhere; }
td.name { white-space: nowrap; }
thead th { background: #f6f8fa; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.matrix td.cell { text-align: center; white-space: nowrap; font-variant-numeric: tabular-nums;
  color: #111; min-width: 110px; }
.matrix tr.group th, .matrix tr.group td { font-weight: 600; border-top: 2px solid #8c959f; }
.matrix tr.total th, .matrix tr.total td { font-weight: 700; border-top: 2px solid #57606a; }
.matrix th.test { font-weight: normal; padding-left: 22px; font-family: ui-monospace, monospace;
  max-width: 40em;
  font-size: 12px; }
td.none { background: #f6f8fa; color: #57606a; }
.verdict-migrate { color: #116329; font-weight: 600; }
.verdict-re-engineer { color: #a40e26; font-weight: 600; }
.verdict-investigate { color: #7d4e00; font-weight: 600; }
.action-migrate { color: #116329; } .action-re-engineer-first, .action-dont-migrate { color: #a40e26; }
.action-investigate, .action-defer { color: #7d4e00; }
figure.forest { margin: 12px 0; overflow-x: auto; }
details { margin: 6px 0; border: 1px solid #d0d7de; border-radius: 6px; padding: 6px 10px; }
summary { cursor: pointer; }
pre { background: #f6f8fa; padding: 8px; overflow-x: auto; white-space: pre-wrap;
  word-break: break-word; font-size: 12px; }
code { font-family: ui-monospace, monospace; font-size: 12px; }
"""


def esc(value: object) -> str:
    return _escape(str(value), quote=True)


def rate_colour(rate: float | None) -> str:
    """Red (0%) through amber to green (100%), light enough for dark text (contrast ≥ 7:1).

    The hue follows rate³: pass rates cluster near 100%, so 97% and 80% must look different
    (80% is amber-yellow, 50% already red-orange).
    """
    if rate is None:
        return "#f6f8fa"
    hue = round(120 * max(0.0, min(1.0, rate)) ** 3)
    return f"hsl({hue}, 65%, 82%)"


def _mark(cell: Mapping[str, Any] | None) -> str:
    if not cell or not cell.get("total"):
        return ""
    if cell["passed"] == cell["total"]:
        return "✓ "
    return "✗ " if cell["passed"] == 0 else "~ "


def _cell(cell: Mapping[str, Any] | None, interval: bool) -> str:
    if not cell or not cell.get("total"):
        return f'<td class="cell none">{esc(cell_text(cell))}</td>'
    rate = cell["passed"] / cell["total"]
    return (
        f'<td class="cell" style="background:{rate_colour(rate)}">'
        f"{_mark(cell)}{esc(cell_text(cell, interval=interval))}</td>"
    )


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    """Header cells are escaped here; row cells are HTML already."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _gate(run: Mapping[str, Any]) -> str:
    gate = run.get("gate")
    if not isinstance(gate, Mapping):
        return '<p class="gate none">No migration gate evaluated for this run.</p>'
    ok = bool(gate.get("passed"))
    mark, word, cls = ("✓", "PASSED", "pass") if ok else ("✗", "FAILED", "fail")
    return (
        f'<p class="gate {cls}">{mark} Migration gate {word} ({esc(gate.get("mode", "?"))}): '
        f"{esc(gate.get('reason', ''))}</p>"
    )


def _title(run: Mapping[str, Any]) -> str:
    models = [str(m["id"]) for m in run.get("models") or []]
    incumbent = run.get("incumbent")
    candidates = [m for m in models if m != incumbent]
    if incumbent and candidates:
        return f"Model migration: {incumbent} → {', '.join(candidates)}"
    return f"Model migration: {', '.join(models) or 'no models'}"


def _context(run: Mapping[str, Any]) -> str:
    tool = run.get("tool") or {}
    parts = [
        f"incumbent {run.get('incumbent')}" if run.get("incumbent") else "no incumbent",
        f"{run['samples']} sample(s) per test" if isinstance(run.get("samples"), int) else "",
        f"{len(run.get('outcomes') or [])} test × model result(s)",
        f"record mode {run.get('record_mode', '?')}",
        str(run.get("created", "")),
        f"{tool.get('name', 'pytest-modelmigrate')} {tool.get('version', '')}".strip(),
    ]
    return '<p class="context">' + " · ".join(esc(p) for p in parts if p) + "</p>"


def _recommendations(run: Mapping[str, Any]) -> str:
    gate = run.get("gate")
    if not isinstance(gate, Mapping) or not gate.get("recommendations"):
        return ""
    items = []
    for rec in gate["recommendations"]:
        action = str(rec.get("action", ""))
        reasons = "; ".join(str(r) for r in rec.get("reasons") or [])
        items.append(
            f'<li><strong class="action-{esc(action.replace(" ", "-").replace(chr(39), ""))}">'
            f"{esc(rec.get('headline', action))}</strong>: {esc(reasons)}</li>"
        )
    sunset = gate.get("sunset")
    if isinstance(sunset, Mapping) and sunset.get("line"):
        items.append(f"<li><strong>sunset</strong>: {esc(sunset['line'])}</li>")
    return "<section><h2>Recommendation</h2><ul>" + "".join(items) + "</ul></section>"


MAX_FOREST_ROWS = 40


def _forest_section(run: Mapping[str, Any]) -> str:
    gate = run.get("gate")
    if not isinstance(gate, Mapping):
        return ""
    figure = _forest(gate)
    if not figure:
        return ""
    return "<section><h2>Paired drop per prompt group and candidate</h2>" + figure + "</section>"


def _forest(gate: Mapping[str, Any]) -> str:
    """Δ and its interval per group and candidate against the margin (inline SVG).

    Past :data:`MAX_FOREST_ROWS` rows, the ones with the highest upper bound (the most worrying)
    are drawn, in their order, and a note says how many more the verdict table lists.
    """
    from .forest import forest_svg

    rows = []
    for group, per in (gate.get("verdicts") or {}).items():
        for cand, v in per.items():
            delta = v.get("delta") if isinstance(v, Mapping) else None
            delta = delta if isinstance(delta, Mapping) else {}
            rows.append(
                {
                    "group": str(group),
                    "candidate": str(cand),
                    "estimate": delta.get("estimate"),
                    "low": delta.get("low"),
                    "high": delta.get("high"),
                    "finding": str(v.get("finding") or ""),
                }
            )
    note = ""
    if len(rows) > MAX_FOREST_ROWS:

        def worry(index: int) -> float:
            row = rows[index]
            value = row["high"] if isinstance(row["high"], (int, float)) else row["estimate"]
            return float(value) if isinstance(value, (int, float)) else -2.0

        keep = sorted(sorted(range(len(rows)), key=worry, reverse=True)[:MAX_FOREST_ROWS])
        note = (
            f'<p class="note">The {MAX_FOREST_ROWS} pairs with the highest upper bound of '
            f"{len(rows)}; the verdicts below list every one.</p>"
        )
        rows = [rows[i] for i in keep]
    margin = (gate.get("policy") or {}).get("margin", 0.05)
    svg = forest_svg(rows, float(margin) if isinstance(margin, (int, float)) else 0.05)
    return f'<figure class="forest">{svg}</figure>{note}' if svg else ""


def _verdicts(run: Mapping[str, Any]) -> str:
    gate = run.get("gate")
    if not isinstance(gate, Mapping) or not gate.get("verdicts"):
        return ""
    rows = []
    for group, per in gate["verdicts"].items():
        for cand, v in per.items():
            verdict = str(v.get("verdict", ""))
            mark = VERDICT_MARK.get(verdict, "")
            rows.append(
                [
                    f"<td>{esc(group)}</td>",
                    f'<td class="name">{esc(cand)}</td>',
                    f'<td class="name verdict-{esc(verdict)}">{mark} {esc(verdict)}</td>',
                    f'<td class="name">{esc(v.get("finding") or "")}</td>',
                    f'<td class="wrap">{esc(v.get("reason", ""))}</td>',
                ]
            )
    return (
        "<section><h2>Verdicts</h2>"
        + _table(["prompt group", "candidate", "verdict", "finding", "reason"], rows)
        + "</section>"
    )


def _matrix(run: Mapping[str, Any]) -> str:
    matrix = run.get("matrix") or {}
    models: list[str] = list(matrix.get("models") or [])
    if not models:
        return ""
    interval = shows_intervals(run)
    rows: list[list[str]] = []
    classes: list[str] = []
    for group in matrix.get("groups") or []:
        rows.append(
            [f'<th scope="row">{esc(group["name"])}</th>']
            + [_cell(group["totals"].get(m), interval) for m in models]
        )
        classes.append("group")
        for row in group["tests"]:
            label = esc(short_test_name(row["name"], group["name"]))
            rows.append(
                [f'<th scope="row" class="test" title="{esc(row["name"])}">{label}</th>']
                + [_cell(row["cells"].get(m), interval) for m in models]
            )
            classes.append("")
    rows.append(
        ['<th scope="row">total</th>']
        + [_cell((matrix.get("totals") or {}).get(m), interval) for m in models]
    )
    classes.append("total")
    head = "<th>test</th>" + "".join(f"<th>{esc(m)}</th>" for m in models)
    body = "".join(
        (f'<tr class="{c}">' if c else "<tr>") + "".join(row) + "</tr>"
        for row, c in zip(rows, classes, strict=True)
    )
    legend = "✓ every sample passed · ~ some passed · ✗ none passed · colour: red 0% → green 100%"
    if interval:
        legend += " · (95% Wilson interval)"
    return (
        f'<section><h2>Pass rates</h2><table class="matrix"><thead><tr>{head}</tr></thead>'
        f'<tbody>{body}</tbody></table><p class="note">{esc(legend)}</p></section>'
    )


def _checks(run: Mapping[str, Any]) -> str:
    breakdown = run_breakdown(run)
    models: list[str] = list(breakdown.get("models") or [])
    checks: Mapping[str, Mapping[str, Any]] = breakdown.get("checks") or {}
    if not checks:
        return ""
    rows = []
    for name, per in checks.items():
        cells = [f'<th scope="row"><code>{esc(name)}</code></th>']
        for m in models:
            c = per.get(m)
            if not c or not c.get("total"):
                cells.append('<td class="cell none">-</td>')
                continue
            rate = 1 - c["failed"] / c["total"]
            tests = c.get("tests") or []
            title = f' title="{esc("failed in: " + ", ".join(tests))}"' if tests else ""
            style = f"background:{rate_colour(rate)}"
            cells.append(f'<td class="cell" style="{style}"{title}>{esc(format_count(c))} failed</td>')
        rows.append(cells)
    return (
        "<section><h2>Checks</h2>"
        '<p class="note">Failed samples / samples in which the check ran, per model.</p>'
        + _table(["check", *models], rows, "matrix")
        + "</section>"
    )


def _drift(run: Mapping[str, Any]) -> str:
    """The drift scores per prompt group and candidate (``run["drift"]``)."""
    from ..drift_scores import DRIFT_HEADER, DRIFT_NOTE, drift_cells, unscored_notes

    rows = [r for r in run.get("drift") or [] if isinstance(r, Mapping)]
    if not rows:
        return ""
    left = 4  # group, candidate, check, scorer
    html_rows = [
        [
            f"<td>{esc(c)}</td>" if i < left else f'<td class="num">{esc(c)}</td>'
            for i, c in enumerate(drift_cells(r))
        ]
        for r in rows
    ]
    notes = "".join(f"<li>{esc(n)}</li>" for n in unscored_notes(rows))
    return (
        "<section><h2>Drift from the incumbent</h2>"
        + _table(DRIFT_HEADER, html_rows)
        + f'<p class="note">{esc(DRIFT_NOTE)}.</p>'
        + (f"<ul>{notes}</ul>" if notes else "")
        + "</section>"
    )


def _under_evidence(run: Mapping[str, Any]) -> str:
    """The under-evidence flags (``run["under_evidence"]``), after the verdicts."""
    from ..under_evidence import FLAGS_NOTE, flag_rows

    flags = flag_rows(run)
    if not flags:
        return ""
    items = "".join(
        f"<li><strong>{esc(f.get('group', ''))}</strong>: {esc(f.get('line', ''))}</li>" for f in flags
    )
    return (
        f'<section><h2>Under-evidenced</h2><p class="note">{esc(FLAGS_NOTE)}.</p><ul>{items}</ul></section>'
    )


def _metrics(run: Mapping[str, Any]) -> str:
    metrics = run_metrics(run)
    rows = metrics_rows(metrics)
    if not rows or not any(m.get("calls") for m in (metrics.get("models") or {}).values()):
        return ""
    html_rows = [[f"<td>{esc(r[0])}</td>"] + [f'<td class="num">{esc(c)}</td>' for c in r[1:]] for r in rows]
    out = "<section><h2>Latency, tokens, cost</h2>" + _table(METRIC_HEADER, html_rows)
    deltas = metrics.get("deltas") or {}
    if deltas:
        items = "".join(
            f"<li><strong>{esc(c)}</strong> vs {esc(metrics.get('incumbent'))}: "
            f"{esc(', '.join(delta_phrases(d)))}</li>"
            for c, d in deltas.items()
        )
        out += f"<ul>{items}</ul>"
    out += (
        f'<p class="note">Latency measured at record time; percentiles {esc(metrics.get("percentile", ""))}; '
        "per test = per sample run; n/a = no price or no tokens recorded.</p></section>"
    )
    return out


def _histogram_svg(histogram: Sequence[int], threshold: float | None, label: str) -> str:
    """10 bars over [0, 1] and a dashed line at the threshold: inline SVG, no script."""
    width, height, bar = 200, 48, 20
    top = max(histogram, default=0) or 1
    rects = "".join(
        f'<rect x="{i * bar + 1}" y="{height - 12 - round(c / top * (height - 16))}" width="{bar - 2}" '
        f'height="{round(c / top * (height - 16))}" fill="#54aeff">'
        f"<title>{esc(f'{i / 10:.1f}-{(i + 1) / 10:.1f}: {c}')}</title></rect>"
        for i, c in enumerate(histogram)
    )
    line = ""
    if threshold is not None:
        x = round(threshold * width, 1)
        line = (
            f'<line x1="{x}" y1="0" x2="{x}" y2="{height - 12}" stroke="#cf222e" stroke-dasharray="3,2">'
            f"<title>threshold {esc(threshold)}</title></line>"
        )
    axis = (
        f'<text x="0" y="{height - 1}" font-size="10">0</text>'
        f'<text x="{width - 6}" y="{height - 1}" font-size="10">1</text>'
    )
    return (
        f'<svg class="calibration-histogram" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(label)}">{rects}{line}{axis}</svg>'
    )


def _calibration(run: Mapping[str, Any]) -> str:
    from ..calibration import CALIBRATION_HEADER, fmt_threshold, model_rows, unavailable_lines

    groups = (run.get("calibration") or {}).get("groups") or {}
    if not groups:
        return ""
    parts = [
        "<section><h2>Calibration</h2>",
        '<p class="note">Recorded confidences per prompt group (label_confidence from logprobs, '
        "confidence self-reported); t = the group's threshold, the dashed line in each histogram.</p>",
    ]
    for group, entry in groups.items():
        t = entry.get("threshold")
        parts.append(
            f"<h3>{esc(group)}"
            + (f", threshold t = {esc(fmt_threshold(t))}" if t is not None else "")
            + "</h3>"
        )
        models = entry.get("models") or {}
        rows = []
        for row in model_rows(entry):
            histogram = (models.get(row[0]) or {}).get("histogram") or []
            svg = _histogram_svg(histogram, t, f"confidence histogram of {row[0]}") if histogram else ""
            rows.append(
                [
                    f"<td>{esc(row[0])}</td>",
                    *(f'<td class="num">{esc(c)}</td>' for c in row[1:]),
                    f"<td>{svg}</td>",
                ]
            )
        if rows:
            parts.append(_table([*CALIBRATION_HEADER, "histogram"], rows))
        notes = [*unavailable_lines(entry)]
        for comp in (entry.get("comparisons") or {}).values():
            notes += comp.get("lines") or []
        if notes:
            parts.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    parts.append("</section>")
    return "".join(parts)


def _baseline(run: Mapping[str, Any]) -> str:
    comparison = run.get("baseline")
    if not isinstance(comparison, Mapping):
        return ""
    regressions = comparison.get("regressions") or []
    items = "".join(
        f"<li>{esc(c.get('test'))} on <strong>{esc(c.get('model'))}</strong>: "
        f"{esc(c.get('describe', ''))}</li>"
        for c in regressions
    )
    summary = (
        f"{len(regressions)} regression(s), {len(comparison.get('improved') or [])} improved, "
        f"{len(comparison.get('appeared') or [])} new, {len(comparison.get('disappeared') or [])} gone"
    )
    return f"<section><h2>Against the baseline</h2><p>{esc(summary)}</p><ul>{items}</ul></section>"


def _failures(run: Mapping[str, Any]) -> str:
    failing = failing_outcomes(run)
    if not failing:
        return ""
    parts = [f"<section><h2>Failing tests ({len(failing)})</h2>"]
    for o in failing[:MAX_FAILURES]:
        failed_checks = sorted({str(c.get("name")) for c in o.get("checks") or [] if not c.get("passed")})
        message = str(o.get("message") or "")
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE] + f"\n... ({len(message) - MAX_MESSAGE} more characters)"
        parts.append(
            f"<details><summary><code>{esc(o.get('test', o.get('nodeid', '')))}</code> on "
            f"<strong>{esc(o.get('model', ''))}</strong>: {esc(o.get('outcome', ''))}, "
            f"{esc(o.get('passed', 0))}/{esc(o.get('total', 0))} sample(s) passed</summary>"
        )
        if failed_checks:
            parts.append(f"<p>failed checks: {esc(', '.join(failed_checks))}</p>")
        if message:
            parts.append(f"<pre>{esc(message)}</pre>")
        parts.append("</details>")
    if len(failing) > MAX_FAILURES:
        parts.append(f'<p class="note">{len(failing) - MAX_FAILURES} more failing test(s) not shown.</p>')
    parts.append("</section>")
    return "".join(parts)


def render_html(run: Mapping[str, Any]) -> str:
    """The whole report as one HTML document."""
    title = _title(run)
    body = "\n".join(
        part
        for part in (
            f"<h1>{esc(title)}</h1>",
            _recommendations(run),
            _gate(run),
            _context(run),
            _forest_section(run),
            _verdicts(run),
            _under_evidence(run),
            _matrix(run),
            _checks(run),
            _drift(run),
            _metrics(run),
            _calibration(run),
            _baseline(run),
            _failures(run),
        )
        if part
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def write_html(path: Path, run: Mapping[str, Any]) -> None:
    write_atomically(path, render_html(run))
