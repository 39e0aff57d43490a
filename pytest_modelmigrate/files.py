"""Writing files so that a crash never leaves half of one: a temp file beside it, then a rename.

Pure module, stdlib only: cassettes, reports and baselines all write through it.

What a path may be (docs/reliability.md, "Where files are written"):

- a regular file, or a new one: written to ``.<name>.<random>.tmp`` beside it, then renamed over it;
- a symlink: written **through** it (the temp file goes beside the link's target, which is
  replaced; the link stays a link);
- a FIFO, a character device or a socket (``/dev/stdout``, ``/dev/null``, a named pipe): written
  directly, never replaced by a regular file; a FIFO no process reads is refused at once
  (never a hang);
- a folder: refused (``IsADirectoryError`` naming it).

A write that fails (disk full, read-only folder) leaves the previous file whole and raises an
``OSError`` whose message names the file and says the previous one is unchanged. Temp files a
killed process left behind (``SIGKILL`` mid-write) are removed by the next write to the same file.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import stat
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locks, stale temp files are removed by age only
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["STALE_TEMP_SECONDS", "WriteError", "stale_temp_files", "write_atomically"]

# A temp file older than this, that no process holds locked, was left by a killed writer.
STALE_TEMP_SECONDS = 5.0
_TEMP_MIDDLE = re.compile(r"[A-Za-z0-9_]{6,}")


class WriteError(OSError):
    """A file that could not be written; ``str()`` names it and says the old one is unchanged."""

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


@functools.cache
def _umask() -> int:
    """The process umask (read once: reading it means setting it for a moment)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _target(path: Path) -> Path:
    """The file a write to ``path`` changes: a symlink's target (followed all the way)."""
    if path.is_symlink():
        return Path(os.path.realpath(path))
    return path


def stale_temp_files(path: Path, *, older_than: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Temp files (``.<name>.<random>.tmp``) beside ``path`` left by a writer that died: older than
    ``older_than`` seconds and locked by no process (a live writer holds its temp file locked)."""
    prefix, suffix = f".{path.name}.", ".tmp"
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    now = time.time()
    stale: list[Path] = []
    for name in names:
        if not (name.startswith(prefix) and name.endswith(suffix)):
            continue
        if not _TEMP_MIDDLE.fullmatch(name[len(prefix) : -len(suffix)]):
            continue
        candidate = path.parent / name
        try:
            info = candidate.lstat()
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode) or now - info.st_mtime < older_than:
            continue
        if fcntl is not None:
            try:
                fd = os.open(candidate, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # a live writer holds it
                os.close(fd)
                continue
            os.close(fd)
        stale.append(candidate)
    return stale


def _write_special(path: Path, data: str | Callable[[TextIO], object]) -> None:
    """Write to a FIFO or a device as it is (no temp file: renaming would replace the node)."""
    try:
        # O_NONBLOCK: opening a FIFO nobody reads fails at once (ENXIO) instead of waiting forever
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise WriteError(
                errno.ENXIO,
                "is a FIFO (named pipe) that no process is reading, so nothing was written; "
                "start the reader first, or give a regular file",
                str(path),
            ) from None
        raise WriteError(exc.errno, f"{exc.strerror or exc}; nothing was written", str(path)) from None
    if fcntl is not None:  # a reader is there: block on a full pipe like any writer
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if isinstance(data, str):
                handle.write(data)
            else:
                data(handle)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise WriteError(exc.errno, f"{reason}; the output may be incomplete", str(path)) from None


def write_atomically(path: Path, data: str | Callable[[TextIO], object]) -> None:
    """Write ``data`` to a temp file beside ``path`` and rename it over ``path``.

    ``data`` is the text, or a function that writes it to the open file (a large report is
    then never held whole in memory). A crash mid-write leaves the previous file whole; readers
    never see half a file. Missing folders are made; a folder that is a file is a
    ``NotADirectoryError`` naming that file. See the module docstring for symlinks, FIFOs,
    devices and folders.
    """
    path = Path(path)
    try:
        info = path.stat()  # follows symlinks (and /dev/stdout's /proc link to a pipe)
    except OSError:
        info = None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file; give a file path", str(path))
    if info is not None and not stat.S_ISREG(info.st_mode):
        _write_special(path, data)
        return
    target = _target(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        parent = target.parent
        blocker = next((p for p in (parent, *parent.parents) if p.is_file()), parent)
        raise NotADirectoryError(errno.ENOTDIR, f"{blocker} is a file, not a folder", str(path)) from None
    for stale in stale_temp_files(target):
        with contextlib.suppress(OSError):
            stale.unlink()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        reason = f"{exc.strerror or exc} (making a temp file); the previous file is unchanged"
        raise WriteError(exc.errno, reason, str(path)) from None
    try:
        if fcntl is not None:  # held until the rename: the next writer knows this one is alive
            fcntl.flock(fd, fcntl.LOCK_EX)
        # mkstemp makes the file private (0600); give it the mode a plain open() would have
        os.chmod(tmp, info.st_mode & 0o777 if info is not None else 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if isinstance(data, str):
                handle.write(data)
            else:
                data(handle)
            handle.flush()
            os.fsync(handle.fileno())
            os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, WriteError):
            raise
        reason = exc.strerror or str(exc)
        raise WriteError(exc.errno, f"{reason}; the previous file is unchanged", str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
