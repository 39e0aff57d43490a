"""Finding JSON in a model's text: the whole text, a code fence, or the first value in prose;
and the size of a JSON-like value, for the writers that lay it out or search it in pieces.

Pure module, stdlib only: the structural checks and the ``prompt`` client both read it.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["FENCE_RE", "extract_json", "node_count", "strict_loads"]

FENCE_RE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)\n?[ \t]*```", re.DOTALL)


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


def strict_loads(text: str) -> Any:
    """``json.loads`` that refuses ``NaN`` and ``Infinity``."""
    return json.loads(text, parse_constant=_reject_constant)


def extract_json(text: str) -> tuple[Any, str, int, int] | None:
    """The first JSON value in ``text``: ``(value, where, start, end)`` or ``None``.

    ``where`` is ``"whole"`` (the text is JSON), ``"fence"`` (inside a code fence, ```json first)
    or ``"prose"`` (the first ``{`` or ``[`` that starts a complete value).
    """
    stripped = text.strip()
    if stripped:
        try:
            value = strict_loads(stripped)
            start = text.index(stripped[0])
            return value, "whole", start, start + len(stripped)
        except ValueError:
            pass
    fences = list(FENCE_RE.finditer(text))
    fences.sort(key=lambda m: (m.group(1).lower() not in ("json", "jsonc", "json5"), m.start()))
    for fence in fences:
        body = fence.group(2).strip()
        try:
            return strict_loads(body), "fence", fence.start(), fence.end()
        except ValueError:
            continue
    decoder = json.JSONDecoder(parse_constant=_reject_constant)
    for match in re.finditer(r"[\[{]", text):
        try:
            value, end = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        return value, "prose", match.start(), end
    return None


_CONTAINERS = (dict, list, tuple)


def node_count(value: object, limit: int) -> int:
    """The nodes of JSON-like ``value`` (itself, and each key and item at any depth), counted
    no further than past ``limit``: the count, or a number above ``limit``."""
    count = 1
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            count += 2 * len(item)
            children: Iterable[object] = item.values()
        elif isinstance(item, (list, tuple)):
            count += len(item)
            children = item
        else:
            continue
        if count > limit:
            return count
        for child in children:
            if isinstance(child, _CONTAINERS):
                stack.append(child)
    return count
