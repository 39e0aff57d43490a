"""Refusing hostile YAML before it is parsed: alias bombs, deep nesting and huge files.

A cassette is YAML that anyone with write access to the repository controls. PyYAML shares the
object an alias names, so a "billion laughs" file of 2 KB loads quickly, then costs gigabytes and
minutes wherever the result is walked (vcrpy's matching, the parse cache, a JSON dump). A
document nested a few thousand levels deep makes PyYAML's composer raise ``RecursionError``.
:func:`check_yaml_text` finds all three from YAML's event stream (libyaml when PyYAML has it),
which never expands an alias and never recurses, and raises a named error instead.

Pure module: PyYAML only (imported when a text needs the event pass).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import os

__all__ = [
    "MAX_ALIAS_NODES",
    "MAX_DEPTH",
    "MAX_YAML_CHARS",
    "UnsafeYamlError",
    "check_yaml_text",
    "yaml_problem",
]

# Limits far above any cassette, dataset or script the plugin writes or reads.
MAX_YAML_CHARS = 128 * 1024 * 1024  # a cassette of 128 MiB is a mistake (a bug, a binary pasted in)
MAX_DEPTH = 200  # vcrpy cassettes nest 6 deep; PyYAML's composer recurses ~3 frames per level
MAX_ALIAS_NODES = 100_000  # nodes the aliases of one document add when expanded

# Cheap tests that tell a plain text from one that needs the event pass: an anchor or alias
# indicator (``&a``/``*a`` after whitespace, ``[``, ``{``, ``,``, ``-``, ``:`` or the start),
# many flow brackets, deep indentation, or many compact ``- `` entries on one line. They run on
# every cassette before it is parsed (or found in the parse cache), so they are written to let
# the regex engine skip ahead: a pattern that may start anywhere costs ~50 ns per character.
_BEFORE_INDICATOR = frozenset("[{,:-")
_NOT_AFTER_INDICATOR = frozenset(",[]{}")
_DEEP_INDENT = re.compile(rf"\n {{{MAX_DEPTH}}}")
# block nesting on one line (``- - - - x``): ``(?:[-?][ \t]+){50}``, led by a character set
_COMPACT_NESTING = re.compile(r"[-?][ \t]+(?:[-?][ \t]+){49}")


def _has_indicator(text: str) -> bool:
    """Whether ``text`` has an anchor (``&name``) or alias (``*name``) indicator: ``&`` or ``*``
    at the start or after whitespace or one of ``[{,:-``, followed by a character that is
    neither whitespace nor one of ``,[]{}``."""
    last = len(text) - 1
    for mark in "&*":
        at = text.find(mark)
        while at != -1:
            if at < last and (at == 0 or text[at - 1].isspace() or text[at - 1] in _BEFORE_INDICATOR):
                after = text[at + 1]
                if not (after.isspace() or after in _NOT_AFTER_INDICATOR):
                    return True
            at = text.find(mark, at + 1)
    return False


class UnsafeYamlError(ValueError):
    """YAML that would hang, exhaust memory or overflow the stack if parsed; nothing was parsed."""


def _may_be_hostile(text: str) -> bool:
    if text.count("[") + text.count("{") > MAX_DEPTH:
        return True
    if text.startswith(" " * MAX_DEPTH) or _DEEP_INDENT.search(text) is not None:
        return True
    return _has_indicator(text) or _COMPACT_NESTING.search(text) is not None


def _events(text: str) -> Any:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.parse(text, Loader=loader)


def yaml_problem(
    text: str,
    *,
    max_chars: int | None = None,
    max_depth: int | None = None,
    max_alias_nodes: int | None = None,
) -> str | None:
    """Why ``text`` is unsafe to parse (alias bomb, nesting, size), or None when it is not.

    The limits default to the module's ``MAX_*`` constants. Syntax errors are not reported here
    (None): the parser that follows names them with a line.
    """
    max_chars = MAX_YAML_CHARS if max_chars is None else max_chars
    max_depth = MAX_DEPTH if max_depth is None else max_depth
    max_alias_nodes = MAX_ALIAS_NODES if max_alias_nodes is None else max_alias_nodes
    if len(text) > max_chars:
        return (
            f"{len(text):,} characters, more than the {max_chars:,} a cassette may hold "
            "(a huge scalar or a file that is not a cassette)"
        )
    if not _may_be_hostile(text):
        return None
    import yaml

    sizes: dict[str, int] = {}  # anchor -> nodes of its subtree, aliases expanded
    stack: list[tuple[str | None, int]] = []  # open collections: (anchor, nodes so far)
    added = 0  # nodes aliases add to the current document when expanded

    def close(anchor: str | None, size: int) -> None:
        if anchor is not None:
            sizes[anchor] = size
        if stack:
            parent_anchor, count = stack[-1]
            stack[-1] = (parent_anchor, count + size)

    try:
        for event in _events(text):
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                stack.append((event.anchor, 1))
                if len(stack) > max_depth:
                    line = event.start_mark.line + 1 if event.start_mark is not None else "?"
                    return f"nested more than {max_depth} levels deep at line {line}"
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                anchor, size = stack.pop()
                close(anchor, size)
            elif isinstance(event, yaml.ScalarEvent):
                close(event.anchor, 1)
            elif isinstance(event, yaml.AliasEvent):
                size = sizes.get(event.anchor or "", 1)
                added += size
                if added > max_alias_nodes:
                    line = event.start_mark.line + 1 if event.start_mark is not None else "?"
                    return (
                        f"its aliases expand to more than {max_alias_nodes:,} nodes by line {line} "
                        "(a YAML alias bomb; vcrpy never writes one)"
                    )
                close(None, size)
            elif isinstance(event, yaml.DocumentStartEvent):
                sizes.clear()
                added = 0
    except yaml.YAMLError:
        return None  # a syntax error: the parser names it with its line
    except RecursionError:  # pragma: no cover - the event parsers do not recurse
        return f"nested too deep to parse (more than {max_depth} levels)"
    return None


def check_yaml_text(
    text: str,
    path: str | os.PathLike[str],
    *,
    error: type[Exception] = UnsafeYamlError,
    fix: str = "nothing was parsed",
) -> None:
    """Raise ``error`` (:class:`UnsafeYamlError` by default) when ``text``, read from ``path``,
    is unsafe to parse: ``<path>: cannot be parsed (<why>); <fix>``.

    Linear in the text and never expands an alias: a 2 KB alias bomb is refused in
    milliseconds. Call it before ``yaml.load``. A cache keyed by the text's digest may skip it
    for a text it stored only after the text passed it (``cassettes.ParseCache.holds``).
    """
    problem = yaml_problem(text)
    if problem is not None:
        raise error(f"{path}: cannot be parsed ({problem}); {fix}")
