"""``modelmigrate export``: cassettes for plain vcrpy / pytest-recording, without the plugin's metadata.

The plugin keeps each cassette's sample outcomes and episodes beside its interactions
(``metadata: {modelmigrate: ...}``). vcrpy 9.4 reads that block, but pytest-recording 0.14's
persister unpacks a cassette into exactly (requests, responses) and fails with ``ValueError: too
many values to unpack``. A team that stops using the plugin exports its cassettes once: the
interactions are kept byte for byte in meaning, in order; only the plugin's block goes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .files import write_atomically

if TYPE_CHECKING:
    import argparse

__all__ = ["add_parser", "export_cassette", "main"]


class ExportError(ValueError):
    """A file that is not a cassette this command can export; the message names it."""


def export_cassette(text: str, path: Path) -> str | None:
    """The cassette ``text`` without the plugin's metadata; None when it has none."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data: Any = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        raise ExportError(f"{path}: not a YAML cassette ({type(exc).__name__}); left as it is") from None
    if not isinstance(data, dict) or not isinstance(data.get("interactions"), list):
        raise ExportError(f"{path}: not a vcrpy cassette (no interactions list); left as it is")
    metadata = data.get("metadata")
    if not isinstance(metadata, dict) or "modelmigrate" not in metadata:
        return None
    rest = {k: v for k, v in metadata.items() if k != "modelmigrate"}
    exported = {k: v for k, v in data.items() if k != "metadata"}
    if rest:
        exported["metadata"] = rest
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return str(yaml.dump(exported, Dumper=dumper, sort_keys=True, allow_unicode=True))


def _cassettes(paths: list[Path]) -> list[tuple[Path, Path]]:
    """(file, its path relative to the folder named) for every YAML file under ``paths``."""
    found: list[tuple[Path, Path]] = []
    for path in paths:
        if path.is_dir():
            found.extend((f, f.relative_to(path)) for f in sorted(path.rglob("*.yaml")) if f.is_file())
        elif path.is_file():
            found.append((path, Path(path.name)))
        else:
            raise ExportError(f"{path}: no such file or folder")
    return found


def main(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.paths]
    if args.to is None and not args.in_place:
        print("modelmigrate export: give --to DIR (copies) or --in-place", file=sys.stderr)
        return 2
    try:
        files = _cassettes(paths)
    except ExportError as exc:
        print(f"modelmigrate export: {exc}", file=sys.stderr)
        return 2
    changed = kept = 0
    for source, relative in files:
        try:
            text = export_cassette(source.read_text(encoding="utf-8"), source)
        except (ExportError, UnicodeDecodeError, OSError) as exc:
            print(f"modelmigrate export: {exc}", file=sys.stderr)
            return 1
        target = source if args.in_place else Path(args.to) / relative
        if target.resolve() == source.resolve() and not args.in_place:
            print(f"modelmigrate export: {target} is the cassette itself; use --in-place", file=sys.stderr)
            return 2
        if text is None:
            kept += 1
            if target != source:
                write_atomically(target, source.read_text(encoding="utf-8"))
            continue
        write_atomically(target, text)
        changed += 1
    where = "in place" if args.in_place else f"to {args.to}"
    print(
        f"exported {len(files)} cassette(s) {where}: {changed} without the plugin's metadata, {kept} had none"
    )
    return 0


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write cassettes plain vcrpy/pytest-recording replay (the plugin's metadata removed)",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="cassette files or folders (searched for *.yaml)"
    )
    parser.add_argument(
        "--to", metavar="DIR", help="write the exported copies under DIR (same relative paths)"
    )
    parser.add_argument("--in-place", action="store_true", help="rewrite the cassettes themselves")
    parser.set_defaults(func=main)
