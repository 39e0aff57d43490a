"""Text building blocks: the matrix, the metrics, values as every renderer shows them."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..results import Cell, Group, Matrix, Row, cell_label, percent, short_test_name

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

MAX_LABEL = 56


def format_cell(cell: Cell) -> str:
    return cell.label


def _cell(data: Mapping[str, Any] | None) -> Cell:
    if not data:
        return Cell()
    return Cell(
        passed=int(data["passed"]), total=int(data["total"]), outcomes=list(data.get("outcomes") or [])
    )


def matrix_from_dict(data: Mapping[str, Any]) -> Matrix:
    """A :class:`Matrix` back from its ``to_dict()`` form (for :func:`matrix_lines`)."""
    models = [str(m) for m in data.get("models") or []]
    groups = [
        Group(
            name=str(g["name"]),
            tests=[
                Row(name=str(r["name"]), cells={m: _cell(r["cells"].get(m)) for m in models})
                for r in g["tests"]
            ],
            totals={m: _cell(g["totals"].get(m)) for m in models},
        )
        for g in data.get("groups") or []
    ]
    return Matrix(
        models=models, groups=groups, totals={m: _cell((data.get("totals") or {}).get(m)) for m in models}
    )


def _clip(label: str, width: int = MAX_LABEL) -> str:
    if len(label) <= width:
        return label
    keep = width - 1
    return label[: keep // 2] + "…" + label[-(keep - keep // 2) :]


MAX_TEST_ROWS = 200  # test rows the terminal matrix shows before it folds the passing ones


def _clean(row: Row, models: Sequence[str]) -> bool:
    """Every model passed every sample of this test: nothing to read in its row."""
    return all(
        row.cells[m].total > 0
        and row.cells[m].passed == row.cells[m].total
        and set(row.cells[m].outcomes) <= {"passed"}
        for m in models
    )


def matrix_lines(
    matrix: Matrix, *, column_names: Sequence[str] | None = None, max_tests: int | None = None
) -> list[str]:
    """The pass-rate grid: a row per prompt group (its total), a row per test, a total row.

    Past ``max_tests`` test rows, each group shows only its tests with something to read (a
    failure, a missing or errored cell; at most ``max_tests`` of them in all) and one line for
    the rest, so a 10,000-test suite reads group by group.
    """
    names = list(column_names or matrix.models)
    rows: list[tuple[str, list[str]]] = []
    fold = max_tests is not None and sum(len(g.tests) for g in matrix.groups) > max_tests
    budget = max_tests or 0
    folded = 0
    for group in matrix.groups:
        rows.append((_clip(group.name), [format_cell(group.totals[m]) for m in matrix.models]))
        tests = group.tests
        if fold:
            tests = [row for row in group.tests if not _clean(row, matrix.models)][: max(budget, 0)]
            budget -= len(tests)
        for row in tests:
            label = "  " + _clip(short_test_name(row.name, group.name), MAX_LABEL - 2)
            rows.append((label, [format_cell(row.cells[m]) for m in matrix.models]))
        hidden = len(group.tests) - len(tests)
        if hidden:
            folded += hidden
            rows.append((f"  ({hidden} more test(s) not shown)", ["" for _ in matrix.models]))
    rows.append(("total", [format_cell(matrix.totals[m]) for m in matrix.models]))
    label_width = max(len(label) for label, _ in rows)
    widths = [max(len(names[i]), *(len(cells[i]) for _, cells in rows)) for i in range(len(names))]
    header = " " * label_width + "".join(f"  {name:>{w}}" for name, w in zip(names, widths, strict=True))
    lines = [header.rstrip()]
    for label, cells in rows:
        line = f"{label:<{label_width}}" + "".join(f"  {c:>{w}}" for c, w in zip(cells, widths, strict=True))
        lines.append(line.rstrip())
    if folded:
        lines.append(
            f"{folded} test row(s) not shown: past {max_tests} test rows, only tests with a failed, "
            "missing or errored cell are listed; pytest -v and the JSON, Markdown and HTML reports "
            "show every test"
        )
    return lines


# -- values, as every renderer shows them -----------------------------------------------------


def fmt_ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} ms"


def fmt_tokens(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if float(value).is_integer() or value >= 100 else f"{value:,.1f}"


def fmt_usd(value: float | None) -> str:
    """Never "$0" for an unknown cost: None is "n/a"; tiny costs keep their digits."""
    if value is None:
        return "n/a"
    if value == 0:
        return "$0.00"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    # three significant digits, never in exponent notation
    decimals = max(2, 2 - math.floor(math.log10(abs(value))))
    whole, _, frac = f"{value:.{decimals}f}".partition(".")
    frac = frac.rstrip("0").ljust(2, "0")
    return f"${whole}.{frac}"


def fmt_ratio(delta: Mapping[str, Any] | None) -> str:
    """``×1.35`` (candidate / incumbent), or n/a."""
    if not delta or delta.get("ratio") is None:
        return "n/a"
    return f"×{delta['ratio']:.2f}"


def fmt_signed(value: float | None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if unit == "$":
        sign = "+" if value >= 0 else "-"
        return sign + fmt_usd(abs(value))
    text = f"{value:+,.0f}" if abs(value) >= 10 or float(value).is_integer() else f"{value:+,.1f}"
    return f"{text} {unit}".rstrip()


def fmt_pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{100.0 * rate:.0f}%"


def cost_text(cost: Mapping[str, Any], key: str = "total") -> str:
    """A cost with a note when some calls had no price."""
    text = fmt_usd(cost.get(key))
    unpriced = int(cost.get("unpriced_calls", 0) or 0)
    if unpriced and cost.get(key) is not None:
        text += f" ({unpriced} unpriced)"
    return text


# -- verdicts and metrics ----------------------------------------------------------------------


METRIC_HEADER = (
    "model",
    "calls",
    "p50",
    "p95",
    "input tok/test",
    "output tok/test",
    "cost/test",
    "cost",
    "errors",
    "refusals",
)


def metrics_rows(metrics: Mapping[str, Any]) -> list[list[str]]:
    """One row of formatted values per model (the columns of :data:`METRIC_HEADER`)."""
    rows = []
    for model, m in (metrics.get("models") or {}).items():
        rows.append(
            [
                model,
                str(m["calls"]),
                fmt_ms(m["latency_ms"]["p50"]),
                fmt_ms(m["latency_ms"]["p95"]),
                fmt_tokens(m["tokens"]["input_per_test"]),
                fmt_tokens(m["tokens"]["output_per_test"]),
                fmt_usd(m["cost_usd"]["per_test"]),
                cost_text(m["cost_usd"]),
                str(m["errors"]),
                str(m["refusals"]),
            ]
        )
    return rows


def delta_phrases(delta: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """``latency p50 ×1.40 (+120 ms)``, ... for one candidate's deltas."""
    parts = []
    for key, label, unit in (
        ("latency_p50_ms", "latency p50", "ms"),
        ("latency_p95_ms", "latency p95", "ms"),
        ("input_tokens_per_test", "input tokens/test", ""),
        ("output_tokens_per_test", "output tokens/test", ""),
        ("cost_per_test_usd", "cost/test", "$"),
    ):
        d = delta.get(key) or {}
        if d.get("diff") is None:
            parts.append(f"{label} n/a")
        else:
            parts.append(f"{label} {fmt_ratio(d)} ({fmt_signed(d['diff'], unit)})")
    return parts


def metrics_lines(metrics: Mapping[str, Any]) -> list[str]:
    """The metrics table per model, then one line per candidate with its deltas."""
    rows = metrics_rows(metrics)
    if not rows:
        return []
    table = [list(METRIC_HEADER), *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(METRIC_HEADER))]
    lines = []
    for row in table:
        cells = [f"{row[0]:<{widths[0]}}"] + [f"{c:>{w}}" for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    incumbent = metrics.get("incumbent")
    for candidate, delta in (metrics.get("deltas") or {}).items():
        lines.append(f"{candidate} vs {incumbent}: " + ", ".join(delta_phrases(delta)))
    lines.append(
        f"latency percentiles: {metrics.get('percentile', 'nearest-rank')}; per test = per sample run"
    )
    return lines


def wilson_text(passed: int, total: int) -> str:
    """``64–95%``: the 95% Wilson interval of a pass rate."""
    from ..stats import wilson_interval

    low, high = wilson_interval(passed, total)
    return f"{100 * low:.0f}–{100 * high:.0f}%"


def cell_text(cell: Mapping[str, Any] | None, *, interval: bool = False) -> str:
    """A matrix cell dict as ``passed/total rate`` (and its Wilson interval), or why it has no evidence."""
    if not cell or not cell.get("total"):
        return cell_label(0, 0, (cell or {}).get("outcomes") or [])
    passed, total = int(cell["passed"]), int(cell["total"])
    text = f"{passed}/{total} {percent(passed, total)}%"
    if interval and total > 1:
        text += f" ({wilson_text(passed, total)})"
    return text


def shows_intervals(run: Mapping[str, Any]) -> bool:
    """Intervals make sense with several samples per test."""
    samples = run.get("samples")
    if isinstance(samples, int):
        return samples > 1
    return any(int(o.get("total", 0) or 0) > 1 for o in run.get("outcomes") or [])
