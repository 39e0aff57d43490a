"""The ``modelmigrate`` command: the emulator, and the renderers and comparison on saved runs.

Each subcommand lives in the module that owns its concern and exposes ``add_parser(subparsers)``,
which registers the subcommand and sets ``func`` (``Callable[[argparse.Namespace], int]``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

# Modules that contribute a subcommand, in the order they appear in --help.
_SUBCOMMAND_MODULES = (
    "pytest_modelmigrate.emulator.command",
    "pytest_modelmigrate.adopt",
    "pytest_modelmigrate.reports.show",
    "pytest_modelmigrate.merge",
    "pytest_modelmigrate.export",
    "pytest_modelmigrate.canary",
    "pytest_modelmigrate.history",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelmigrate",
        description="pytest-modelmigrate: the local provider emulator and tools for saved migration runs.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a subcommand still being built
            if exc.name != name:
                raise
            continue
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    result: int = func(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
