"""The prompt migration matrix document (Markdown): one section per prompt.

Pure; takes the run dict. Per prompt (``@pytest.mark.prompt(name, purpose=..., sensitivities=[...])``,
or the module for unmarked tests): its purpose, known sensitivities, the verdict per candidate,
its version and why it changed (``version=``, ``rationale=``, ``target_model=``), its regression
cases (``@pytest.mark.regression_case``: the past failures it guards, with results per model and
the triage they give), every test with its results, the checks that failed, the drift scores per
candidate, and the baselines per model (quality, latency, tokens, cost); under the verdict, the
prompt's under-evidence flags. Given the migration history (``history.py``), each prompt
also lists its earlier migrations: what broke and in which later one it passed again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..files import write_atomically
from ..metrics import run_metrics
from ..results import short_test_name
from .breakdown import format_count, run_breakdown
from .markdown import VERDICT_MARK, escape
from .terminal import cell_text, fmt_ms, fmt_tokens, fmt_usd, shows_intervals

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["render_migration_doc", "write_migration_doc"]


def _prompt_info(run: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    info: dict[str, dict[str, Any]] = {}
    for o in run.get("outcomes") or []:
        prompt = o.get("prompt")
        group = str(o.get("group", ""))
        entry = info.setdefault(group, {"purpose": None, "sensitivities": [], "cases": {}})
        if isinstance(prompt, Mapping):
            for key in ("purpose", "version", "rationale", "target_model"):
                if prompt.get(key) and not entry.get(key):
                    entry[key] = str(prompt[key])
            for s in prompt.get("sensitivities") or []:
                if str(s) not in entry["sensitivities"]:
                    entry["sensitivities"].append(str(s))
        case = o.get("regression_case")
        if isinstance(case, Mapping) and case.get("description"):
            entry["cases"].setdefault(str(o.get("test", "")), dict(case))
    return info


def _case_triage(cells: list[Mapping[str, Any] | None]) -> str:
    """The regression cases on one model: all pass, all fail, or some (the seed's language)."""
    rated = [c for c in cells if c and int(c.get("total") or 0) > 0]
    if not rated:
        return "no evidence"
    passing = sum(int(c["passed"]) == int(c["total"]) for c in rated)
    failing = sum(int(c["passed"]) == 0 for c in rated)
    if passing == len(cells):
        return f"migrate as is (all {passing} regression case(s) pass)"
    if failing == len(cells):
        return f"re-engineer (all {failing} regression case(s) fail)"
    return f"investigate ({passing} of {len(cells)} regression case(s) pass)"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join([":---"] + ["---:"] * (len(header) - 1)) + " |",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def render_migration_doc(run: Mapping[str, Any], history: Sequence[Mapping[str, Any]] | None = None) -> str:
    """The document; with ``history`` (``history.load_history`` entries), each prompt also lists its
    earlier migrations: what broke and in which later one it passed again (this run left out)."""
    matrix = run.get("matrix") or {}
    models: list[str] = list(matrix.get("models") or [])
    incumbent = run.get("incumbent")
    interval = shows_intervals(run)
    info = _prompt_info(run)
    metrics = run_metrics(run)
    breakdown = run_breakdown(run)
    gate = run.get("gate") if isinstance(run.get("gate"), Mapping) else None
    verdicts: Mapping[str, Mapping[str, Any]] = (gate or {}).get("verdicts") or {}

    lines = [
        "# Prompt migration matrix",
        "",
        f"Models: {', '.join(escape(m) + (' (incumbent)' if m == incumbent else '') for m in models)}. "
        f"Run {escape(run.get('created', '?'))}, record mode {escape(run.get('record_mode', '?'))}"
        + (f", {run['samples']} sample(s) per test" if isinstance(run.get("samples"), int) else "")
        + ".",
        "",
    ]
    if gate is not None:
        mark = "✅" if gate.get("passed") else "❌"
        for rec in gate.get("recommendations") or []:
            reasons = "; ".join(str(r) for r in rec.get("reasons") or [])
            lines.append(f"- **{escape(rec.get('headline', ''))}**: {escape(reasons)}")
        sunset = gate.get("sunset")
        if isinstance(sunset, Mapping) and sunset.get("line"):
            lines.append(f"- {escape(sunset['line'])}")
        if gate.get("recommendations"):
            lines.append("")
        lines += [
            f"{mark} Migration gate ({escape(gate.get('mode', '?'))}): {escape(gate.get('reason', ''))}",
            "",
        ]
    for group in matrix.get("groups") or []:
        name = str(group["name"])
        entry = info.get(name, {"purpose": None, "sensitivities": [], "cases": {}})
        lines += [f"## {escape(name)}", ""]
        lines.append(f"**Purpose:** {escape(entry['purpose']) if entry['purpose'] else '_not stated_'}")
        lines.append("")
        if entry.get("version") or entry.get("rationale") or entry.get("target_model"):
            version = f"**Version:** {escape(entry.get('version') or '_not stated_')}"
            if entry.get("target_model"):
                version += f", tuned for {escape(entry['target_model'])}"
            if entry.get("rationale"):
                version += f". Why: {escape(entry['rationale'])}"
            lines += [version, ""]
        if entry["sensitivities"]:
            lines.append("**Known sensitivities:**")
            lines.append("")
            lines += [f"- {escape(s)}" for s in entry["sensitivities"]]
        else:
            lines.append("**Known sensitivities:** _none recorded_")
        lines.append("")
        per_candidate = verdicts.get(name) or {}
        if per_candidate:
            lines.append("**Verdict:**")
            lines.append("")
            for cand, v in per_candidate.items():
                verdict = str(v.get("verdict", ""))
                lines.append(
                    f"- {escape(cand)}: {VERDICT_MARK.get(verdict, '')} **{escape(verdict)}**: "
                    f"{escape(v.get('reason', ''))}"
                )
            lines.append("")
        lines += _under_evidence_lines(run, name)
        lines += _variant_lines(run, name)

        if history is not None:
            lines += _earlier_lines(run, history, name)
        cases: Mapping[str, Mapping[str, Any]] = entry.get("cases") or {}
        lines += ["### Regression cases", ""]
        case_rows = [row for row in group["tests"] if row["name"] in cases]
        if case_rows:
            lines += _table(
                ["past failure", "fixed in", "test", *(escape(m) for m in models)],
                [
                    [
                        escape(str(cases[row["name"]]["description"])),
                        escape(str(cases[row["name"]].get("fixed_in") or "")),
                        escape(short_test_name(row["name"], name)),
                    ]
                    + [cell_text(row["cells"].get(m), interval=interval) for m in models]
                    for row in case_rows
                ],
            )
            lines += ["", "**Triage from the regression cases:**", ""]
            for m in models:
                if m == incumbent:
                    continue
                triage = _case_triage([row["cells"].get(m) for row in case_rows])
                statistical = (per_candidate.get(m) or {}).get("verdict")
                beside = f" (statistical verdict: {escape(str(statistical))})" if statistical else ""
                lines.append(f"- {escape(m)}: {triage}{beside}")
        else:
            lines.append(
                "_none marked: mark a test that guards a past failure "
                '`@pytest.mark.regression_case("what broke", fixed_in="v2")`_'
            )
        lines += ["", "### Tests", ""]
        rows = [
            [escape(short_test_name(row["name"], name))]
            + [cell_text(row["cells"].get(m), interval=interval) for m in models]
            for row in group["tests"]
        ]
        lines += _table(["test", *(escape(m) for m in models)], rows)
        lines.append("")

        checks = (breakdown.get("groups") or {}).get(name) or {}
        failing = {c: per for c, per in checks.items() if any(x.get("failed") for x in per.values())}
        if failing:
            lines += ["### Checks that failed", ""]
            lines += _table(
                ["check", *(escape(m) for m in models)],
                [[escape(c)] + [format_count(per.get(m)) for m in models] for c, per in failing.items()],
            )
            lines.append("")
        lines += _drift_lines(run, name)

        lines += _calibration_lines(run, name)
        lines += ["### Baselines", ""]
        group_metrics = (metrics.get("groups") or {}).get(name) or {}
        rows = []
        for m in models:
            gm = group_metrics.get(m)
            quality = cell_text(group["totals"].get(m), interval=interval)
            if gm is None:
                rows.append([escape(m), quality, "n/a", "n/a", "n/a", "n/a", "n/a"])
                continue
            rows.append(
                [
                    escape(m),
                    quality,
                    fmt_ms(gm["latency_ms"]["p50"]),
                    fmt_ms(gm["latency_ms"]["p95"]),
                    fmt_tokens(gm["tokens"]["input_per_test"]),
                    fmt_tokens(gm["tokens"]["output_per_test"]),
                    fmt_usd(gm["cost_usd"]["per_test"]),
                ]
            )
        lines += _table(
            ["model", "quality (pass rate)", "p50", "p95", "input tok/test", "output tok/test", "cost/test"],
            rows,
        )
        lines.append("")
    lines.append(
        f"_Latency measured at record time; percentiles {escape(metrics.get('percentile', 'nearest-rank'))}; "
        "per test = per sample run; n/a = not recorded or no price configured._"
    )
    return "\n".join(lines).rstrip() + "\n"


def _variant_lines(run: Mapping[str, Any], group: str) -> list[str]:
    """``### Prompt variants``: per variant-ed test its variants, and per model the one to ship."""
    section = run.get("variants") if isinstance(run.get("variants"), Mapping) else {}
    tests = [t for t in (section or {}).get("tests") or [] if t.get("group") == group]
    if not tests:
        return []
    lines = ["### Prompt variants", ""]
    for test in tests:
        declared = "; ".join(
            f"{v['name']} ({'targets ' + ', '.join(v['targets']) if v.get('targets') else 'every model'})"
            + (f": {v['rationale']}" if v.get("rationale") else "")
            for v in test.get("variants") or []
        )
        lines.append(f"- {escape(short_test_name(str(test.get('test')), group))}: {escape(declared)}")
        lines += [f"  - {escape(str(e.get('line')))}" for e in (test.get("models") or {}).values()]
    return [*lines, ""]


def _under_evidence_lines(run: Mapping[str, Any], group: str) -> list[str]:
    """The group's under-evidence flags, after its verdict (information: the verdict stands)."""
    from ..under_evidence import flag_rows

    flags = [f for f in flag_rows(run) if f.get("group") == group]
    if not flags:
        return []
    lines = ["**Under-evidenced** (information only; the verdict stands):", ""]
    return [*lines, *(f"- ⚠️ {escape(f.get('line', ''))}" for f in flags), ""]


def _drift_lines(run: Mapping[str, Any], group: str) -> list[str]:
    """The group's drift scores per candidate (``run["drift"]``)."""
    from ..drift_scores import DRIFT_HEADER, DRIFT_NOTE, drift_cells, unscored_notes

    rows = [r for r in run.get("drift") or [] if isinstance(r, Mapping) and r.get("group") == group]
    if not rows:
        return []
    lines = ["### Drift from the incumbent", ""]
    lines += _table(
        [escape(h) for h in DRIFT_HEADER[1:]], [[escape(c) for c in drift_cells(r)[1:]] for r in rows]
    )
    lines += ["", f"_{escape(DRIFT_NOTE)}._"]
    lines += [f"- {escape(note)}" for note in unscored_notes(rows)]
    return [*lines, ""]


def _calibration_lines(run: Mapping[str, Any], group: str) -> list[str]:
    """The group's confidence distribution per model and the candidates' threshold matches."""
    from ..calibration import CALIBRATION_HEADER, fmt_threshold, model_rows, unavailable_lines

    entry = ((run.get("calibration") or {}).get("groups") or {}).get(group)
    if not isinstance(entry, Mapping):
        return []
    t = entry.get("threshold")
    lines = ["### Calibration", ""]
    if t is not None:
        lines += [f"Threshold t = {fmt_threshold(t)} ({escape(', '.join(entry.get('checks') or []))}).", ""]
    rows = [[escape(c) for c in row] for row in model_rows(entry)]
    if rows:
        lines += [*_table([escape(h) for h in CALIBRATION_HEADER], rows), ""]
    notes = [*unavailable_lines(entry)]
    for comp in (entry.get("comparisons") or {}).values():
        notes += comp.get("lines") or []
    lines += [f"- {escape(n)}" for n in notes]
    return [*lines, ""] if notes else lines


def _earlier_lines(run: Mapping[str, Any], history: Sequence[Mapping[str, Any]], group: str) -> list[str]:
    from ..history import earlier_migration_lines

    found = earlier_migration_lines(history, group, run)
    return ["### Earlier migrations", "", *(found or ["_none in the history_"]), ""]


def write_migration_doc(
    path: Path, run: Mapping[str, Any], history: Sequence[Mapping[str, Any]] | None = None
) -> None:
    write_atomically(path, render_migration_doc(run, history))
