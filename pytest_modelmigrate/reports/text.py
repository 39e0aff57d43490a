"""The run as text: what the terminal section prints and ``modelmigrate show --format text`` writes.

Pure module: one function, :func:`text_lines`, reads the run (``Run.to_dict()``, or the same
read back from a JSON file), so the two can never tell different stories.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..gate import gate_lines
from .breakdown import breakdown_lines, run_breakdown
from .terminal import MAX_TEST_ROWS, matrix_from_dict, matrix_lines, metrics_lines

__all__ = ["render_text", "text_lines"]


def _dataset_lines(run: Mapping[str, Any]) -> list[str]:
    from ..datasets import DatasetMetrics, render_dataset_lines

    lines: list[str] = []
    for test, by_model in (run.get("datasets") or {}).items():
        metrics = {model: DatasetMetrics.from_dict(m) for model, m in by_model.items()}
        lines += ["", *render_dataset_lines(metrics, title=test)]
    return lines


def _calibration_lines(run: Mapping[str, Any]) -> list[str]:
    from ..calibration import calibration_lines

    found = calibration_lines(run)
    return ["", *found] if found else []


def _drift_lines(run: Mapping[str, Any]) -> list[str]:
    from ..drift_scores import drift_lines

    found = drift_lines(run.get("drift") or [])
    return ["", *found] if found else []


def _under_evidence_lines(run: Mapping[str, Any]) -> list[str]:
    from ..under_evidence import flag_lines

    found = flag_lines(run)
    return ["", *found] if found else []


def missing_lines(run: Mapping[str, Any], max_items: int = 20) -> list[str]:
    """The recordings the run lacked, and the one command that records them."""
    missing = run.get("missing") or {}
    recordings = missing.get("recordings") or []
    if not recordings:
        return []
    lines = [f"missing recordings ({len(recordings)}), not counted for or against any model:"]
    for r in recordings[:max_items]:
        lines.append(f"  {r['nodeid']}: {r['reason']}")
    if len(recordings) > max_items:
        lines.append(f"  ... and {len(recordings) - max_items} more")
    lines.append(f"record them with: {missing.get('command')}")
    return lines


def text_lines(run: Mapping[str, Any], *, max_tests: int | None = MAX_TEST_ROWS) -> list[str]:
    """The matrix, failed checks, drift, dataset metrics, metrics, baseline, sampling, gaps, the
    under-evidence flags and the decision.

    The last line is the gate line (the terminal colours it). Past ``max_tests`` test rows the
    matrix folds the passing tests (None: every row).
    """
    from ..adaptive import summary_lines
    from ..baseline import comparison_lines

    models = ", ".join(str(m["id"]) for m in run.get("models") or [])
    lines = [
        f"run {run.get('created', '?')}; models {models}; incumbent {run.get('incumbent')}; "
        f"record mode {run.get('record_mode', '?')}",
    ]
    gate = run.get("gate")
    if isinstance(gate, Mapping) and gate.get("recommendations"):
        # the decision first (in full, with the sunset, beside the gate line at the end)
        lines.append("decision: " + "; ".join(str(r.get("headline")) for r in gate["recommendations"]))
    lines.append("")
    matrix = run.get("matrix")
    if isinstance(matrix, Mapping) and matrix.get("models"):
        lines += matrix_lines(matrix_from_dict(matrix), max_tests=max_tests)
    checks = breakdown_lines(run_breakdown(run), failing_only=True)
    if checks:
        lines += [
            "",
            "checks that failed (failed samples / samples, per model):",
            *("  " + c for c in checks),
        ]
    lines += _drift_lines(run)
    lines += _dataset_lines(run)
    lines += _calibration_lines(run)
    lines += _variant_lines(run)
    has_calls = any(o.get("calls") for o in run.get("outcomes") or [])
    metrics = metrics_lines(run.get("metrics") or {}) if has_calls else []
    if metrics:
        lines += ["", *metrics]
    baseline = run.get("baseline")
    if isinstance(baseline, Mapping):
        lines += ["", *comparison_lines(baseline)]
    adaptive = run.get("adaptive")
    if isinstance(adaptive, Mapping):
        lines += ["", *summary_lines(adaptive)]
    missing = missing_lines(run)
    if missing:
        lines += ["", *missing]
    lines += _under_evidence_lines(run)
    lines.append("")
    if isinstance(gate, Mapping):
        lines += gate_lines(gate)
    else:
        lines.append("no migration gate evaluated for this run")
    return lines


def _variant_lines(run: Mapping[str, Any]) -> list[str]:
    """Per prompt-variant test and model, the variant to ship with its evidence."""
    from ..variants import ship_lines

    variants = run.get("variants")
    shown = ship_lines(variants if isinstance(variants, Mapping) else None)
    if not shown:
        return []
    head = "prompt variants (the gate compares each candidate's best with the incumbent's shipped one):"
    return ["", head, *("  " + line for line in shown)]


def render_text(run: Mapping[str, Any]) -> str:
    return "\n".join(lines.rstrip() for lines in text_lines(run)).rstrip() + "\n"
