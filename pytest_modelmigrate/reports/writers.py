"""Each report file the plugin writes, by format: ``writer(path, run)`` with the run as a dict."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

__all__ = [
    "ReportWriteError",
    "append_markdown",
    "write_baseline",
    "write_html",
    "write_json",
    "write_markdown",
    "write_reports",
]


class ReportWriteError(ValueError):
    """A report file that could not be written; the message names the option and the path."""


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


def write_reports(run: Mapping[str, Any], targets: Sequence[tuple[str, Path | None, str]]) -> list[Path]:
    """Write ``run`` to each ``(option, path, format)`` with a path (format: json, markdown, html
    or baseline), then append the Markdown to ``$GITHUB_STEP_SUMMARY`` when that is set.

    Returns the paths written; :class:`ReportWriteError` names the option and the path that failed.
    """
    import os
    from pathlib import Path

    writers = {"json": write_json, "markdown": write_markdown, "html": write_html, "baseline": write_baseline}
    written: list[Path] = []
    for option, path, kind in targets:
        if path is None:
            continue
        try:
            writers[kind](path, run)
        except OSError as exc:
            raise ReportWriteError(f"{option}: cannot write {path}: {exc.strerror or exc}") from None
        written.append(path)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        try:
            append_markdown(Path(summary), run)
        except OSError as exc:
            raise ReportWriteError(
                f"$GITHUB_STEP_SUMMARY: cannot append to {summary}: {exc.strerror}"
            ) from None
    return written
