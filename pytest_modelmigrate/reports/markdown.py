"""The Markdown report: a sticky PR comment or ``$GITHUB_STEP_SUMMARY``. Pure; takes the run dict.

Order: the decision first (title, the gate line with its reason, the run's context), then the
verdict per prompt group and candidate with its reason, and the under-evidence flags (never
cut); then the details: the pass-rate matrix (Wilson intervals with several samples), the checks
that failed, the drift scores, metrics and deltas, dataset metrics, the comparison with a
baseline, the missing recordings and the failing tests. A detail section longer than
:data:`FOLD_LINES` lines is folded in ``<details>``, and the failing tests always are when listed.

Big suites stay compact: rows are capped and the report says how many were left out. The whole
report stays under ``max_chars`` (GitHub refuses a comment over 65,536 characters): past it,
:data:`CUTS` shortens the least important sections first, each saying what it left out and
where to read it. The decision and the verdicts are never cut; only when they alone are too
long are the verdict reasons shortened, and the report says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..files import write_atomically
from ..metrics import run_metrics
from ..results import short_test_name
from .breakdown import format_count, run_breakdown
from .terminal import METRIC_HEADER, cell_text, delta_phrases, metrics_rows, shows_intervals

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "CUTS",
    "FOLD_LINES",
    "MAX_CHARS",
    "VERDICT_MARK",
    "escape",
    "failing_outcomes",
    "render_markdown",
    "write_markdown",
]

VERDICT_MARK = {"migrate": "✅", "re-engineer": "❌", "investigate": "🔍"}
MAX_MESSAGE = 1500
MAX_CHARS = 65_000
"""The default bound: a GitHub comment holds 65,536 characters; the rest is room for a link."""
FOLD_LINES = 12
"""A detail section with more lines than this is folded in ``<details>``."""
CUTS: tuple[tuple[str, int], ...] = (
    ("failures", 1),  # failure messages
    ("failures", 2),  # the list of failing tests
    ("matrix", 1),  # per-test rows (the group totals stay)
    ("checks", 1),
    ("datasets", 1),
    ("drift", 1),  # the drift table (a note says where to read it)
    ("metrics", 1),
    ("baseline", 1),  # the list of regressions (the counts stay)
    ("missing", 1),  # the list of recordings (the command stays)
    ("matrix", 2),  # the group rows (the total stays)
    ("missing", 2),  # the command
)
"""What a report over ``max_chars`` gives up, in order: (section, shorter version)."""
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


# -- sections and what they left out -------------------------------------------------------------


@dataclass(frozen=True)
class _Section:
    """A detail section: a ``###`` heading and its body, or folded under a ``<summary>``."""

    title: str  # plain text: it also goes into the HTML <summary>
    body: tuple[str, ...]
    fold: bool = False

    def lines(self) -> list[str]:
        if self.fold or sum(1 + line.count("\n") for line in self.body) > FOLD_LINES:
            # GitHub needs the blank line after <summary> to render the Markdown inside
            return [f"<details><summary>{self.title}</summary>", "", *self.body, "", "</details>", ""]
        return [f"### {self.title}", "", *self.body, ""]


@dataclass(frozen=True)
class _Notes:
    """The sentence each cut adds: what it left out, and where to read it in full."""

    max_chars: int | None
    details_url: str | None

    def left_out(self, what: str, *, where: str = "html") -> str:
        name = "the HTML report" if where == "html" else "the JSON run file"
        if self.details_url:
            url = self.details_url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
            source = f"[{name}]({url})"
        else:
            source = f"{name} artifact"
        if where != "html":
            source += " (`modelmigrate show` prints it)"
        return (
            f"_Left out to keep this report under {self.max_chars or 0:,} characters: {what}. See {source}._"
        )


def _gate_line(run: Mapping[str, Any]) -> str:
    gate = run.get("gate")
    if not isinstance(gate, Mapping):
        return "⚪ **No migration gate evaluated** for this run."
    mark, word = ("✅", "PASSED") if gate.get("passed") else ("❌", "FAILED")
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


def _reason_cut(reason: str, limit: int | None) -> str:
    if limit is None or len(reason) <= limit:
        return reason
    return reason[:limit].rstrip() + "…" if limit else ""


ACTION_MARK = {
    "migrate": "✅",
    "defer": "⏸️",
    "investigate": "🔍",
    "re-engineer first": "🛠️",
    "don't migrate": "⛔",
}


def _recommendations(run: Mapping[str, Any]) -> list[str]:
    """One line per candidate, then the sunset: the first thing a team lead reads."""
    gate = run.get("gate")
    if not isinstance(gate, Mapping) or not gate.get("recommendations"):
        return []
    out = ["### Recommendation", ""]
    for rec in gate["recommendations"]:
        action = str(rec.get("action", ""))
        reasons = "; ".join(str(r) for r in rec.get("reasons") or [])
        out.append(
            f"- {ACTION_MARK.get(action, '')} **{escape(rec.get('headline', action))}**: {escape(reasons)}"
        )
    sunset = gate.get("sunset")
    if isinstance(sunset, Mapping) and sunset.get("line"):
        out.append(f"- ⏳ {escape(sunset['line'])}")
    return [*out, ""]


def _delta_cell(v: Mapping[str, Any]) -> str:
    delta = v.get("delta")
    if not isinstance(delta, Mapping) or not isinstance(delta.get("estimate"), (int, float)):
        return "n/a"
    text = f"{100 * delta['estimate']:+.1f}"
    low, high = delta.get("low"), delta.get("high")
    if isinstance(low, (int, float)) and isinstance(high, (int, float)) and delta.get("method") != "exact":
        text += f" [{100 * low:+.1f}, {100 * high:+.1f}]"
    return text


def _verdicts(run: Mapping[str, Any], notes: _Notes, reason_limit: int | None = None) -> list[str]:
    gate = run.get("gate")
    if not isinstance(gate, Mapping) or not gate.get("verdicts"):
        return []
    rows = [
        [
            escape(group),
            escape(cand),
            f"{VERDICT_MARK.get(v.get('verdict', ''), '')} {escape(v.get('verdict'))}",
            escape(v.get("finding") or ""),
            _delta_cell(v),
            escape(_reason_cut(" ".join(str(v.get("reason", "")).split()), reason_limit)),
        ]
        for group, per in gate["verdicts"].items()
        for cand, v in per.items()
    ]
    header = ["prompt group", "candidate", "verdict", "finding", "drop, pts [interval]", "reason"]
    out = ["### Verdicts", "", *_table(header, rows, "llllrl")]
    if reason_limit is not None:
        what = (
            f"the verdict reasons past {reason_limit:,} characters" if reason_limit else "the verdict reasons"
        )
        out += ["", notes.left_out(what)]
    return [*out, ""]


def _row_interesting(row: Mapping[str, Any]) -> bool:
    rates = [c.get("rate") for c in row["cells"].values() if c.get("total")]
    return any(r is not None and r < 1 for r in rates) or len(set(rates)) > 1


def _matrix(run: Mapping[str, Any], max_rows: int, notes: _Notes) -> list[_Section]:
    """Every interesting test row (up to ``max_rows``); then group totals only; then the total only."""
    matrix = run.get("matrix") or {}
    models: list[str] = list(matrix.get("models") or [])
    if not models:
        return []
    interval = shows_intervals(run)
    groups = matrix.get("groups") or []
    n_tests = sum(len(g["tests"]) for g in groups)
    only_interesting = n_tests > max_rows
    header = ["test", *(escape(m) for m in models)]
    total = ["**total**"] + [
        f"**{cell_text((matrix.get('totals') or {}).get(m), interval=interval)}**" for m in models
    ]
    footer = ["", "_Pass rate over samples, with its 95% Wilson interval._"] if interval else []
    title = f"Pass rates ({n_tests} test(s), {len(groups)} prompt group(s))"

    def group_row(group: Mapping[str, Any]) -> list[str]:
        return [f"**{escape(group['name'])}**"] + [
            f"**{cell_text(group['totals'].get(m), interval=interval)}**" for m in models
        ]

    rows: list[list[str]] = []
    hidden = 0
    for group in groups:
        rows.append(group_row(group))
        for row in group["tests"]:
            if (only_interesting and not _row_interesting(row)) or len(rows) >= max_rows + len(groups):
                hidden += 1
                continue
            label = "&nbsp;&nbsp;" + escape(short_test_name(row["name"], group["name"]))
            rows.append([label] + [_mark(row["cells"].get(m), interval) for m in models])
    full = _table(header, [*rows, total])
    if hidden:
        why = "tests that pass on every model, and " if only_interesting else ""
        full += [
            "",
            f"_{hidden} test row(s) not shown ({why}beyond {max_rows} rows); "
            "the JSON and HTML reports list every test._",
        ]
    totals = _table(header, [*(group_row(g) for g in groups), total])
    totals += ["", notes.left_out(f"the rows of the {n_tests} test(s); the group totals are complete")]
    only_total = _table(header, [total])
    only_total += ["", notes.left_out(f"the rows of the {len(groups)} prompt group(s) and {n_tests} test(s)")]
    return [
        _Section(title, (*full, *footer)),
        _Section(title, (*totals, *footer)),
        _Section(title, (*only_total, *footer)),
    ]


def _mark(cell: Mapping[str, Any] | None, interval: bool) -> str:
    text = cell_text(cell, interval=interval)
    if not cell or not cell.get("total"):
        return text
    return ("✅ " if cell["passed"] == cell["total"] else "❌ ") + text


def _checks(run: Mapping[str, Any], max_rows: int, notes: _Notes) -> list[_Section]:
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
    out = ["_Failed samples / samples in which the check ran._", ""]
    out += _table(["check", *(escape(m) for m in models)], rows[:max_rows])
    if hidden:
        out.append(f"\n_{hidden} more failing check(s) not shown._")
    title = "Checks that failed"
    return [
        _Section(title, tuple(out)),
        _Section(title, (notes.left_out(f"the breakdown of {len(rows)} failing check(s)"),)),
    ]


def _drift(run: Mapping[str, Any], max_rows: int, notes: _Notes) -> list[_Section]:
    """The drift scores per prompt group and candidate (``run["drift"]``)."""
    from ..drift_scores import DRIFT_HEADER, DRIFT_NOTE, drift_cells, unscored_notes

    rows = [r for r in run.get("drift") or [] if isinstance(r, Mapping)]
    if not rows:
        return []
    out = _table(
        [escape(h) for h in DRIFT_HEADER],
        [[escape(c) for c in drift_cells(r)] for r in rows[:max_rows]],
        "llllrrrrrrr",
    )
    if len(rows) > max_rows:
        out.append(f"\n_{len(rows) - max_rows} more drift row(s) not shown._")
    out += ["", f"_{escape(DRIFT_NOTE)}._"]
    out += [f"- {escape(note)}" for note in unscored_notes(rows)]
    title = "Drift from the incumbent"
    return [
        _Section(title, tuple(out)),
        _Section(
            title,
            (
                notes.left_out(
                    f"the drift scores of {len(rows)} prompt group(s) and candidate(s)", where="json"
                ),
            ),
        ),
    ]


def _under_evidence(run: Mapping[str, Any]) -> list[str]:
    """The under-evidence flags (``run["under_evidence"]``), after the verdicts; never cut."""
    from ..under_evidence import FLAGS_NOTE, flag_rows

    flags = flag_rows(run)
    if not flags:
        return []
    out = ["### Under-evidenced", "", f"_{escape(FLAGS_NOTE)}._", ""]
    out += [f"- ⚠️ **{escape(f.get('group', ''))}**: {escape(f.get('line', ''))}" for f in flags]
    return [*out, ""]


def _metrics(run: Mapping[str, Any], notes: _Notes) -> list[_Section]:
    metrics = run_metrics(run)
    rows = metrics_rows(metrics)
    if not rows or not any(m.get("calls") for m in (metrics.get("models") or {}).values()):
        return []
    out = _table(list(METRIC_HEADER), [[escape(c) for c in r] for r in rows])
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
    title = "Latency, tokens, cost"
    return [
        _Section(title, tuple(out)),
        _Section(title, (notes.left_out(f"latency, tokens and cost of the {len(rows)} model(s)"),)),
    ]


def _datasets(run: Mapping[str, Any], notes: _Notes) -> list[_Section]:
    """The terminal's dataset lines per dataset test, in a code block (labels are model text)."""
    datasets = run.get("datasets") or {}
    if not datasets:
        return []
    from ..datasets import DatasetMetrics, render_dataset_lines

    out: list[str] = []
    for test, by_model in datasets.items():
        metrics = {model: DatasetMetrics.from_dict(m) for model, m in by_model.items()}
        out += [_fence("\n".join(render_dataset_lines(metrics, title=test))), ""]
    title = f"Dataset metrics ({len(datasets)} test(s))"
    return [
        _Section(title, tuple(out[:-1])),
        _Section(title, (notes.left_out(f"the metrics of {len(datasets)} dataset test(s)", where="json"),)),
    ]


def _calibration(run: Mapping[str, Any]) -> list[_Section]:
    """Per prompt group: each model's confidence distribution, and the candidates' threshold matches."""
    from ..calibration import CALIBRATION_HEADER, fmt_threshold, model_rows, sparkline, unavailable_lines

    groups = (run.get("calibration") or {}).get("groups") or {}
    out: list[str] = []
    for group, entry in groups.items():
        t = entry.get("threshold")
        out += [f"**{escape(group)}**" + (f", threshold t = {fmt_threshold(t)}" if t is not None else ""), ""]
        models = entry.get("models") or {}
        rows = [
            [escape(c) for c in row] + [sparkline((models.get(row[0]) or {}).get("histogram") or [])]
            for row in model_rows(entry)
        ]
        if rows:
            out += [*_table([*(escape(h) for h in CALIBRATION_HEADER), "histogram 0→1"], rows), ""]
        notes = [*unavailable_lines(entry)]
        for comp in (entry.get("comparisons") or {}).values():
            notes += comp.get("lines") or []
        out += [f"- {escape(line)}" for line in notes]
        out.append("")
    if not out:
        return []
    return [_Section(f"Calibration ({len(groups)} group(s))", tuple(out[:-1]))]


def _baseline(run: Mapping[str, Any], max_rows: int, notes: _Notes) -> list[_Section]:
    comparison = run.get("baseline")
    if not isinstance(comparison, Mapping):
        return []
    regressions = comparison.get("regressions") or []
    mark = "❌" if regressions else "✅"
    counts = (
        f"{mark} {len(regressions)} regression(s), {len(comparison.get('improved') or [])} improved, "
        f"{len(comparison.get('appeared') or [])} new, {len(comparison.get('disappeared') or [])} gone"
        + (f" (baseline {escape(comparison['old_created'])})" if comparison.get("old_created") else "")
    )
    out = [counts]
    for change in regressions[:max_rows]:
        out.append(
            f"- {escape(change['test'])} on **{escape(change['model'])}**: "
            f"{escape(change.get('describe', ''))}"
        )
    if len(regressions) > max_rows:
        out.append(f"- ... {len(regressions) - max_rows} more")
    title = "Against the baseline"
    short = [counts]
    if regressions:
        short += ["", notes.left_out(f"the list of {len(regressions)} regression(s) against the baseline")]
    return [_Section(title, tuple(out)), _Section(title, tuple(short))]


def _missing(run: Mapping[str, Any], max_rows: int, notes: _Notes) -> list[_Section]:
    missing = run.get("missing") or {}
    recordings = missing.get("recordings") or []
    if not recordings:
        return []
    intro = "_Not counted for or against any model._"
    rows = [
        [escape(r.get("test", r.get("nodeid", ""))), escape(r.get("model", "")), escape(r.get("reason", ""))]
        for r in recordings[:max_rows]
    ]
    table = _table(["test", "model", "reason"], rows, "lll")
    if len(recordings) > max_rows:
        table += ["", f"_{len(recordings) - max_rows} more missing recording(s) not shown._"]
    command = str(missing.get("command") or "")
    record = ["", "Record them with:", "", _fence(command)] if command else []
    title = f"Missing recordings ({len(recordings)})"
    n = len(recordings)
    return [
        _Section(title, (intro, "", *table, *record)),
        _Section(title, (intro, *record, "", notes.left_out(f"the list of {n} recording(s)", where="json"))),
        _Section(
            title,
            (
                intro,
                "",
                notes.left_out(
                    f"the list of {n} recording(s) and the command that records them", where="json"
                ),
            ),
        ),
    ]


def _failures(run: Mapping[str, Any], max_failures: int, notes: _Notes) -> list[_Section]:
    failing = failing_outcomes(run)
    if not failing:
        return []

    def listed(messages: bool) -> list[str]:
        out: list[str] = []
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
            if message and messages:
                out += ["", _fence(_clip(str(message)))]
            out.append("")
        if len(failing) > max_failures:
            out += [f"_{len(failing) - max_failures} more failing test(s) not shown._", ""]
        return out

    title = f"Failing tests ({len(failing)})"
    return [
        _Section(title, tuple(listed(True)[:-1]), fold=True),
        _Section(title, (*listed(False), notes.left_out("the failure messages")), fold=True),
        _Section(title, (notes.left_out(f"the list of the {len(failing)} failing test(s)"),)),
    ]


# -- the report ------------------------------------------------------------------------------------


def render_markdown(
    run: Mapping[str, Any],
    *,
    max_rows: int = 60,
    max_failures: int = 20,
    max_chars: int | None = MAX_CHARS,
    details_url: str | None = None,
) -> str:
    """The whole report; ``max_rows`` caps the matrix and table rows, ``max_failures`` the details.

    ``max_chars`` bounds its length (None: no bound) by applying :data:`CUTS` in order until it
    fits, then shortening the verdict reasons; ``details_url`` (e.g. the CI run's artifacts page)
    is where the notes of what was left out point, instead of "the HTML report artifact".
    """
    notes = _Notes(max_chars, details_url)
    head = [_title(run), "", *_recommendations(run), _gate_line(run), "", _context(run), ""]
    builders: dict[str, Callable[[], list[_Section]]] = {
        "matrix": lambda: _matrix(run, max_rows, notes),
        "checks": lambda: _checks(run, max_rows, notes),
        "drift": lambda: _drift(run, max_rows, notes),
        "metrics": lambda: _metrics(run, notes),
        "datasets": lambda: _datasets(run, notes),
        "calibration": lambda: _calibration(run),
        "baseline": lambda: _baseline(run, max_rows, notes),
        "missing": lambda: _missing(run, max_rows, notes),
        "failures": lambda: _failures(run, max_failures, notes),
    }
    versions = {key: [s.lines() for s in build()] for key, build in builders.items()}
    level = dict.fromkeys(versions, 0)

    flags = _under_evidence(run)  # never cut: what the decision lacks

    def assemble(verdicts: list[str]) -> str:
        lines = [*head, *verdicts, *flags]
        for key, texts in versions.items():
            if texts:
                lines += texts[level[key]]
        return "\n".join(lines).rstrip() + "\n"

    verdicts = _verdicts(run, notes)
    text = assemble(verdicts)
    if max_chars is None or len(text) <= max_chars:
        return text
    for key, step in CUTS:
        if step >= len(versions[key]):
            continue
        kept, level[key] = level[key], step
        shorter = assemble(verdicts)
        if len(shorter) >= len(text):  # a note longer than the short list it would replace
            level[key] = kept
            continue
        text = shorter
        if len(text) <= max_chars:
            return text
    return _cut_reasons(run, notes, assemble, max_chars)


def _cut_reasons(
    run: Mapping[str, Any], notes: _Notes, assemble: Callable[[list[str]], str], max_chars: int
) -> str:
    """The longest verdict reasons that fit (binary search); with none, it may still not fit."""
    gate = run.get("gate")
    verdicts = gate.get("verdicts") if isinstance(gate, Mapping) else None
    longest = max(
        (len(str(v.get("reason", ""))) for per in (verdicts or {}).values() for v in per.values()), default=0
    )
    best = assemble(_verdicts(run, notes, reason_limit=0)) if verdicts else assemble([])
    low, high = 1, longest - 1
    while verdicts and low <= high:
        mid = (low + high) // 2
        text = assemble(_verdicts(run, notes, reason_limit=mid))
        if len(text) <= max_chars:
            best, low = text, mid + 1
        else:
            high = mid - 1
    return best


def write_markdown(path: Path, run: Mapping[str, Any]) -> None:
    write_atomically(path, render_markdown(run))
