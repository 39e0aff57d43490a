"""Adopt pytest-recording cassettes as one model's recordings (``modelmigrate adopt``).

pytest-recording keeps ``<test_dir>/cassettes/<module>/<test>.yaml``; this plugin keeps one folder
per model id: ``<test_dir>/cassettes/<module>/<model>/<test>.yaml``. Adopting copies (or moves)
each cassette one level down, into the model's folder. Nothing is ever overwritten, and nothing
is written at all unless every file is a readable cassette and no destination exists yet.

A folder holding both cassettes and module folders has both adopted. A subfolder of a module
folder is a model's folder (already adopted): it is skipped with a warning, and passing a model's
folder itself is refused, so one model's folder is never nested in another's. Module folders are
told from model folders by name: pytest-recording names them after the test module (``test_*``,
``*_test``).

Pure module: no pytest import.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_modelmigrate.providers.base import CassetteFormatError
from pytest_modelmigrate.providers.parse import read_cassette

if TYPE_CHECKING:
    import argparse

__all__ = [
    "AdoptError",
    "add_parser",
    "adopt_cassettes",
    "cassette_files",
    "check_model_id",
    "looks_like_module",
    "plan_files",
]

CASSETTE_SUFFIXES = (".yaml", ".yml", ".json")

# Characters no file name may hold on at least one of Linux, macOS and Windows.
_ILLEGAL_CHARS = frozenset('<>:"/\\|?*') | frozenset(chr(c) for c in range(32))
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"COM{i}" for i in range(1, 10)} | {f"LPT{i}" for i in range(1, 10)}
)


class AdoptError(ValueError):
    """Adopting cannot go ahead; the message says why and lists the files concerned."""


def check_model_id(model: str) -> str:
    """Return ``model`` if it can name a folder on every platform, else raise :class:`AdoptError`."""
    from .models import ModelSpecError, parse_models

    if model and model.strip() == model and " " in model:
        try:
            parse_models(model, source="modelmigrate adopt --model")
        except ModelSpecError as exc:
            raise AdoptError(str(exc)) from None
    if not model or model.strip() != model:
        raise AdoptError(f"model id {model!r} is empty or has leading/trailing spaces")
    if model in (".", ".."):
        raise AdoptError(f"model id {model!r} is not a folder name")
    bad = sorted({c for c in model if c in _ILLEGAL_CHARS})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise AdoptError(
            f"model id {model!r} contains {shown}, which cannot be part of a folder name "
            "(path separators and characters illegal in file names are refused); "
            "use an alias without them"
        )
    if model.endswith("."):
        raise AdoptError(f"model id {model!r} ends with '.', which Windows drops from folder names")
    if model.split(".")[0].upper() in _WINDOWS_RESERVED:
        raise AdoptError(f"model id {model!r} is a reserved device name on Windows")
    return model


def _direct(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in CASSETTE_SUFFIXES)


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _holds_cassettes(folder: Path) -> bool:
    return any(p.is_file() and p.suffix.lower() in CASSETTE_SUFFIXES for p in folder.rglob("*"))


def looks_like_module(name: str) -> bool:
    """pytest-recording names a module's folder after the module: ``test_*`` or ``*_test`` (pytest's
    default ``python_files``); a model folder is named after a model id, which never looks like that."""
    stem = name.removesuffix(".py")
    return stem.startswith("test_") or stem.endswith("_test") or stem == "test"


def _model_folder_of(folder: Path) -> bool:
    """``folder`` is ``<module>/<model>/``: its parent is a module folder, its own name is not one,
    and it holds no module folders (a model's folder holds cassettes only)."""
    return (
        looks_like_module(folder.parent.name)
        and not looks_like_module(folder.name)
        and not any(looks_like_module(sub.name) for sub in _subfolders(folder))
    )


def plan_files(src: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The pytest-recording cassettes under ``src``, and the folders left alone (with why).

    ``src`` may be one cassette file, a module folder (``cassettes/<module>``, holding the files),
    the ``cassettes`` folder itself (holding one folder per module), or a folder holding both
    cassettes and module folders (both are adopted). Inside a module folder, a subfolder is a
    model's folder (``<module>/<model>/``, already adopted): it is left alone and reported, never
    adopted again (which would nest one model's folder inside another's).
    """
    if src.is_file():
        return [src], []
    if not src.is_dir():
        raise AdoptError(f"{src} is neither a cassette file nor a folder")
    files = _direct(src)
    skipped: list[tuple[Path, str]] = []

    def model_folders_in(module: Path) -> None:
        for sub in _subfolders(module):
            if _holds_cassettes(sub):
                skipped.append((sub, f"already a model's folder ({module.name}/{sub.name}/), left as it is"))

    for sub in _subfolders(src):
        if not _holds_cassettes(sub):
            continue
        if files and not looks_like_module(sub.name):
            # src is a module folder: sub is a model's folder
            skipped.append((sub, f"already a model's folder ({src.name}/{sub.name}/), left as it is"))
            continue
        files.extend(_direct(sub))
        model_folders_in(sub)
    return files, skipped


def cassette_files(src: Path) -> list[Path]:
    """The pytest-recording cassettes under ``src`` (see :func:`plan_files`)."""
    return plan_files(src)[0]


def adopt_cassettes(
    src: Path,
    model: str,
    *,
    dest: Path | None = None,
    move: bool = False,
    dry_run: bool = False,
    skipped: list[tuple[Path, str]] | None = None,
) -> list[tuple[Path, Path]]:
    """Adopt ``<cassettes>/<module>/<name>.yaml`` as ``<cassettes>/<module>/<model>/<name>.yaml``.

    ``dest`` is the cassettes folder to write into (default: the one the files are in). Returns
    the (source, destination) pairs, in order; with ``dry_run`` nothing is written. Folders left
    alone (other models' folders) are appended to ``skipped`` as (folder, why). Raises
    :class:`AdoptError` (and writes nothing) when the model id cannot name a folder, when a file
    is not a readable cassette, when a destination already exists, or when ``src`` is itself a
    model's folder (adopting it would nest the new model's folder inside it).
    """
    check_model_id(model)
    src = Path(src)
    holder = src.parent if src.is_file() else src
    holds_files = src.is_file() or (src.is_dir() and bool(_direct(src)))
    if holds_files and _model_folder_of(holder):
        raise AdoptError(
            f"{holder} is model {holder.name!r}'s folder of module {holder.parent.name!r} "
            f"(<cassettes>/<module>/<model>/); adopting it would nest {model!r} inside it "
            f"({holder.parent.name}/{holder.name}/{model}/...). Pass the module folder "
            f"({holder.parent}) or the cassettes folder instead"
        )
    files, left = plan_files(src)
    if skipped is not None:
        skipped.extend(left)
    if not files:
        raise AdoptError(f"no cassette files ({', '.join(CASSETTE_SUFFIXES)}) found under {src}")
    unreadable: list[str] = []
    for path in files:
        try:
            read_cassette(path)
        except CassetteFormatError as exc:
            unreadable.append(f"  {exc}")
        except OSError as exc:
            unreadable.append(f"  {path}: cannot be read: {exc}")
    if unreadable:
        raise AdoptError(
            f"{len(unreadable)} of {len(files)} files are not readable cassettes; nothing was adopted:\n"
            + "\n".join(unreadable)
        )
    pairs = []
    for path in files:
        root = Path(dest) if dest is not None else path.parent.parent
        pairs.append((path, root / path.parent.name / model / path.name))
    clashes = [target for _, target in pairs if target.exists() or target.is_symlink()]
    if clashes:
        raise AdoptError(
            f"{len(clashes)} destination(s) already exist and would be overwritten; nothing was adopted:\n"
            + "\n".join(f"  {target}" for target in clashes)
        )
    if dry_run:
        return pairs
    for source, target in pairs:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():  # appeared since the check: stop rather than overwrite
            raise AdoptError(f"{target} appeared while adopting; stopped before overwriting it")
        if move:
            shutil.move(str(source), str(target))
        else:
            shutil.copy2(source, target)
    return pairs


def _run(args: argparse.Namespace) -> int:
    skipped: list[tuple[Path, str]] = []
    try:
        pairs = adopt_cassettes(
            args.cassette_dir,
            args.model,
            dest=args.dest,
            move=args.move,
            dry_run=args.dry_run,
            skipped=skipped,
        )
    except AdoptError as exc:
        print(f"modelmigrate adopt: error: {exc}", file=sys.stderr)
        return 1
    for folder, why in skipped:
        print(f"modelmigrate adopt: warning: skipped {folder}: {why}", file=sys.stderr)
    verb = "move" if args.move else "copy"
    done = {"move": "moved", "copy": "copied"}[verb]
    for source, target in pairs:
        print(f"{'would ' + verb if args.dry_run else done}: {source} -> {target}")
    what = f"{len(pairs)} cassette{'s' if len(pairs) != 1 else ''}"
    if args.dry_run:
        print(f"dry run: would {verb} {what} as model {args.model!r}; nothing written")
    else:
        print(f"adopted {what} as model {args.model!r} ({done})")
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``modelmigrate adopt CASSETTE_DIR --model NAME [--dest DIR] [--move] [--dry-run]``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "adopt",
        help="Adopt pytest-recording cassettes as one model's recordings",
        description=(
            "Copy (or move) pytest-recording cassettes, <cassettes>/<module>/<test>.yaml, to "
            "<cassettes>/<module>/<MODEL>/<test>.yaml, where pytest-modelmigrate replays them for "
            "that model. Every file is checked to be a readable cassette first; existing "
            "destinations are never overwritten."
        ),
    )
    parser.add_argument(
        "cassette_dir",
        type=Path,
        metavar="CASSETTE_DIR",
        help="The cassettes folder, one module's folder, or a single cassette file",
    )
    parser.add_argument("--model", required=True, help="The model id the recordings were made with")
    parser.add_argument(
        "--dest", type=Path, default=None, help="Cassettes folder to write into (default: the source's)"
    )
    parser.add_argument("--move", action="store_true", help="Move the files instead of copying them")
    parser.add_argument("--dry-run", action="store_true", dest="dry_run", help="Show what would be done")
    parser.set_defaults(func=_run)
    return parser
