"""``modelmigrate show`` and ``modelmigrate compare``: the renderers and the comparison on saved runs.

``modelmigrate show RUN.json [--format text|md|html|migration] [-o OUT] [--prices FILE]``
``modelmigrate compare OLD.json NEW.json [--format text|md] [-o OUT] [--alpha A]``: exit 1 when
the new run regressed against the old one, 0 when not, 2 for a file that is not a run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..baseline import BaselineComparison, BaselineError, compare_runs, load_run
from ..files import write_atomically
from ..metrics import run_metrics
from ..pricing import PriceError, load_price_file
from .markdown import escape
from .text import render_text

if TYPE_CHECKING:
    import argparse

__all__ = ["add_parser", "compare_markdown"]

FORMATS = ("text", "md", "html", "migration")


def compare_markdown(
    comparison: BaselineComparison, old_path: str, new_path: str, max_items: int = 50
) -> str:
    mark = "❌" if comparison.regressed else "✅"
    lines = [
        f"## Run comparison: {escape(new_path)} against {escape(old_path)}",
        "",
        f"{mark} **{len(comparison.regressions)} regression(s)**, "
        f"{len(comparison.lower)} lower (not significant), "
        f"{len(comparison.improved)} improved, {len(comparison.appeared)} new, "
        f"{len(comparison.disappeared)} gone, {comparison.unchanged} unchanged",
        "",
    ]
    for title, changes in (
        ("Regressions", comparison.regressions),
        ("Lower, not significant", comparison.lower),
        ("Improved", comparison.improved),
        ("New", comparison.appeared),
        ("Gone", comparison.disappeared),
    ):
        if not changes:
            continue
        lines += [f"### {title}", "", "| test | model | old → new |", "| :--- | :--- | :--- |"]
        for c in changes[:max_items]:
            lines.append(f"| {escape(c.test)} | {escape(c.model)} | {escape(c.describe())} |")
        if len(changes) > max_items:
            lines.append(f"\n_{len(changes) - max_items} more not shown._")
        lines.append("")
    if comparison.metric_deltas:
        lines += [
            "### Metrics, new against old",
            "",
            "| model | p50 | p95 | cost/test |",
            "| :--- | ---: | ---: | ---: |",
        ]
        for model, d in comparison.metric_deltas.items():
            cells = []
            for key in ("latency_p50_ms", "latency_p95_ms", "cost_per_test_usd"):
                ratio = (d.get(key) or {}).get("ratio")
                cells.append("n/a" if ratio is None else f"×{ratio:.2f}")
            lines.append(f"| {escape(model)} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
    else:
        write_atomically(out, text)
        print(f"wrote {out}", file=sys.stderr)


def _show(args: argparse.Namespace) -> int:
    try:
        run = load_run(args.run)
        if args.prices is not None:
            run = dict(run)
            run["metrics"] = run_metrics(run, load_price_file(args.prices))
    except (BaselineError, PriceError) as exc:
        print(f"modelmigrate show: {exc}", file=sys.stderr)
        return 2
    if args.format == "md":
        from .markdown import render_markdown

        text = render_markdown(run)
    elif args.format == "html":
        from .html import render_html

        text = render_html(run)
    elif args.format == "migration":
        from .migration_doc import render_migration_doc

        text = render_migration_doc(run)
    else:
        text = render_text(run)
    _emit(text, args.output)
    return 0


def _compare(args: argparse.Namespace) -> int:
    try:
        old = load_run(args.old)
        new = load_run(args.new)
        comparison = compare_runs(old, new, alpha=args.alpha)
    except (BaselineError, ValueError) as exc:
        print(f"modelmigrate compare: {exc}", file=sys.stderr)
        return 2
    if args.format == "md":
        text = compare_markdown(comparison, str(args.old), str(args.new))
    else:
        text = "\n".join(comparison.lines()) + "\n"
    _emit(text, args.output)
    return 1 if comparison.regressed else 0


def add_parser(subparsers: Any) -> None:
    """Register ``show`` and ``compare``."""
    show: argparse.ArgumentParser = subparsers.add_parser(
        "show",
        help="Render a saved run (JSON) as text, Markdown, HTML or the prompt migration document",
        description="Render a run file written by pytest-modelmigrate.",
    )
    show.add_argument("run", type=Path, metavar="RUN.json", help="A run file written by pytest-modelmigrate")
    show.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text (terminal), md (PR comment), html (one self-contained file), "
        "migration (the prompt migration matrix document, Markdown); default text",
    )
    show.add_argument("-o", "--output", type=Path, default=None, help="Write to this file (default: stdout)")
    show.add_argument(
        "--prices", type=Path, default=None, help="A JSON or TOML price file to (re)compute costs with"
    )
    show.set_defaults(func=_show)

    compare: argparse.ArgumentParser = subparsers.add_parser(
        "compare",
        help="Compare a new run with an old one (a baseline); exit 1 on a regression",
        description=(
            "Compare two run files per (test, model): regressions, improvements, tests new or gone, "
            "metric deltas. Exit status 1 when the new run regressed, 0 when not, 2 for unreadable input."
        ),
    )
    compare.add_argument("old", type=Path, metavar="OLD.json", help="The baseline run")
    compare.add_argument("new", type=Path, metavar="NEW.json", help="The new run")
    compare.add_argument(
        "--format", choices=("text", "md"), default="text", help="Output format; default text"
    )
    compare.add_argument(
        "-o", "--output", type=Path, default=None, help="Write to this file (default: stdout)"
    )
    compare.add_argument(
        "--alpha",
        type=float,
        default=0.05,
        help="Significance level for a drop with several samples (one-sided Fisher exact); default 0.05",
    )
    compare.set_defaults(func=_compare)
