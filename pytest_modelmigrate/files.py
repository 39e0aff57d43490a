"""Writing files so that a crash never leaves half of one: a temp file beside it, then a rename.

Pure module, stdlib only: cassettes, reports and baselines all write through it.
"""

from __future__ import annotations

import errno
import functools
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["write_atomically"]


@functools.cache
def _umask() -> int:
    """The process umask (read once: reading it means setting it for a moment)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(path: Path, data: str | Callable[[TextIO], object]) -> None:
    """Write ``data`` to a temp file beside ``path`` and rename it over ``path``.

    ``data`` is the text, or a function that writes it to the open file (a large report is
    then never held whole in memory). A crash mid-write leaves the previous file whole; readers
    never see half a file. Missing folders are made; a folder that is a file is a
    ``NotADirectoryError`` naming that file.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in (path.parent, *path.parent.parents) if p.is_file()), path.parent)
        raise NotADirectoryError(errno.ENOTDIR, f"{blocker} is a file, not a folder", str(path)) from None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would have
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if isinstance(data, str):
                handle.write(data)
            else:
                data(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
