"""The prompt migration matrix document (Markdown): one section per prompt.

Pure; takes the run dict. Per prompt (``@pytest.mark.prompt(name, purpose=..., sensitivities=[...])``,
or the module for unmarked tests): its purpose, known sensitivities, the verdict per candidate,
its regression cases (the tests that guard it, with results per model), the checks that
failed, and the baselines per model (quality, latency, tokens, cost).
"""

from __future__ import annotations

from collections.abc import Mapping
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
        entry = info.setdefault(group, {"purpose": None, "sensitivities": []})
        if isinstance(prompt, Mapping):
            if prompt.get("purpose") and not entry["purpose"]:
                entry["purpose"] = str(prompt["purpose"])
            for s in prompt.get("sensitivities") or []:
                if str(s) not in entry["sensitivities"]:
                    entry["sensitivities"].append(str(s))
    return info


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join([":---"] + ["---:"] * (len(header) - 1)) + " |",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def render_migration_doc(run: Mapping[str, Any]) -> str:
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
        lines += [
            f"{mark} Migration gate ({escape(gate.get('mode', '?'))}): {escape(gate.get('reason', ''))}",
            "",
        ]
    for group in matrix.get("groups") or []:
        name = str(group["name"])
        entry = info.get(name, {"purpose": None, "sensitivities": []})
        lines += [f"## {escape(name)}", ""]
        lines.append(f"**Purpose:** {escape(entry['purpose']) if entry['purpose'] else '_not stated_'}")
        lines.append("")
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

        lines += ["### Regression cases", ""]
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


def write_migration_doc(path: Path, run: Mapping[str, Any]) -> None:
    write_atomically(path, render_migration_doc(run))
