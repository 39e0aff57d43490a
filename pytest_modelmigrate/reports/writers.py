"""Each report file the plugin writes, by format: ``writer(path, run)`` with the run as a dict."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = ["append_markdown", "write_baseline", "write_html", "write_json", "write_markdown"]


def write_json(path: Path, run: Mapping[str, Any]) -> None:
    from .run import write_json as write

    write(path, run)


def write_markdown(path: Path, run: Mapping[str, Any]) -> None:
    from .markdown import write_markdown as write

    write(path, run)


def write_html(path: Path, run: Mapping[str, Any]) -> None:
    from .html import write_html as write

    write(path, run)


def write_baseline(path: Path, run: Mapping[str, Any]) -> None:
    from ..baseline import save_baseline

    save_baseline(run, path)


def append_markdown(path: Path, run: Mapping[str, Any]) -> None:
    """Append the Markdown report (``$GITHUB_STEP_SUMMARY``)."""
    from .markdown import render_markdown

    with open(path, "a", encoding="utf-8") as handle:
        handle.write(render_markdown(run) + "\n")
