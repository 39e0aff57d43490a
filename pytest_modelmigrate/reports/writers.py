"""Each report file the plugin writes, by format: ``writer(path, run)`` with the run as a dict."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "INPUT_SUFFIXES",
    "ReportWriteError",
    "append_markdown",
    "check_report_targets",
    "run_inputs",
    "write_baseline",
    "write_html",
    "write_json",
    "write_markdown",
    "write_reports",
]


class ReportWriteError(ValueError):
    """A report file that could not be written; the message names the option and the path."""


# Files a report never replaces: test code, configuration, cassettes and datasets.
INPUT_SUFFIXES = frozenset({".py", ".pyi", ".yaml", ".yml", ".ini", ".toml", ".cfg", ".jsonl", ".csv"})


def _same_file(a: Path, b: Path) -> bool:
    return _file_key(a) == _file_key(b)


def _file_key(path: Path | str) -> tuple[int, int] | str:
    """What a file is: its device and inode when it exists (links and symlinks alike), else its
    absolute path (two paths that do not exist yet are one file when they are one path)."""
    try:
        found = os.stat(path)
    except OSError:
        return os.path.abspath(path)
    return (found.st_dev, found.st_ino)


def _first_same(path: Path, sources: Sequence[tuple[Path | str, str]]) -> str | None:
    """What ``path`` is among ``sources`` (None: none of them). A path that does not exist is
    compared by name alone: one stat per source only when the report file is there already."""
    key = _file_key(path)
    if isinstance(key, str):
        return next((what for source, what in sources if os.path.abspath(source) == key), None)
    return next((what for source, what in sources if _file_key(source) == key), None)


def _looks_like_a_cassette(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return head.startswith(b"interactions:") or b"\ninteractions:" in head


def run_inputs(run: Mapping[str, Any], root: Path | None = None) -> list[tuple[Path | str, str]]:
    """The files a run was made from, with what each is: its cassettes (relative to ``root``, the
    rootdir; the current folder by default; as plain strings, one per (test, model) of a large
    run) and merged shard files."""
    base = os.fspath(Path.cwd() if root is None else root)
    inputs: list[tuple[Path | str, str]] = []
    outcomes = run.get("outcomes")
    for outcome in outcomes if isinstance(outcomes, list) else []:
        cassette = outcome.get("cassette") if isinstance(outcome, dict) else None
        if isinstance(cassette, str) and cassette:
            inputs.append((os.path.join(base, cassette), "a cassette"))
    merged = run.get("merged")
    shards = merged.get("shards") if isinstance(merged, dict) else None
    for shard in shards if isinstance(shards, list) else []:
        file = shard.get("file") if isinstance(shard, dict) else None
        if isinstance(file, str) and file:
            inputs.append((Path(file), "a merged shard file"))
    return inputs


def check_report_targets(
    targets: Sequence[tuple[str, Path | None, str]], inputs: Iterable[tuple[Path | str, str]] = ()
) -> None:
    """Refuse report paths that would destroy something: two reports on one path, a path that is
    an input of the run (a cassette, the baseline compared with, a shard being merged), an
    existing test, configuration or data file (``INPUT_SUFFIXES``), or a file holding a cassette.

    Cheap (no report is rendered): call it before the tests run, and :func:`write_reports` calls
    it again before writing anything. Raises :class:`ReportWriteError` naming the option.
    """
    known = list(inputs)
    claimed: list[tuple[str, Path]] = []
    for option, path, _kind in targets:
        if path is None:
            continue
        refuse = f"{option}: refusing to write {path}:"
        fix = "nothing was written; give the report a path of its own"
        for other_option, other in claimed:
            if _same_file(path, other):
                raise ReportWriteError(f"{refuse} {other_option} writes the same file; {fix}")
        claimed.append((option, path))
        if path.is_dir():
            raise ReportWriteError(
                f"{option}: cannot write {path}: is a folder, not a file; give a file path"
            )
        what = _first_same(path, known)
        if what is not None:
            raise ReportWriteError(f"{refuse} it is {what} this run reads; {fix}")
        if path.is_file():
            if path.suffix.lower() in INPUT_SUFFIXES:
                raise ReportWriteError(
                    f"{refuse} it is an existing {path.suffix} file (reports are .json, .md or .html); {fix}"
                )
            if _looks_like_a_cassette(path):
                raise ReportWriteError(f"{refuse} it holds a cassette; {fix}")


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


def write_reports(
    run: Mapping[str, Any],
    targets: Sequence[tuple[str, Path | None, str]],
    inputs: Iterable[tuple[Path | str, str]] = (),
) -> list[Path]:
    """Write ``run`` to each ``(option, path, format)`` with a path (format: json, markdown, html
    or baseline), then append the Markdown to ``$GITHUB_STEP_SUMMARY`` when that is set.

    Nothing is written when a target is refused by :func:`check_report_targets` (``inputs`` and
    the run's own cassettes and shard files are never overwritten). Returns the paths written;
    :class:`ReportWriteError` names the option and the path that failed.
    """
    check_report_targets(targets, [*inputs, *run_inputs(run)])
    writers = {"json": write_json, "markdown": write_markdown, "html": write_html, "baseline": write_baseline}
    written: list[Path] = []
    for option, path, kind in targets:
        if path is None:
            continue
        try:
            writers[kind](path, run)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ReportWriteError(f"{option}: cannot write {path}: {reason}") from None
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
