"""The run file: ``Run.to_dict()`` as JSON, and the JSON Schema shipped with it."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from ..files import write_atomically

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path
    from typing import TextIO

SCHEMA_FILE = "run.schema.json"


EXPANDED_DEPTH = 2  # the run and its sections are laid out a key (or an item) a line


def write_json(path: Path, run: Mapping[str, Any]) -> None:
    """The run as JSON, written piece by piece into the file: the run's keys and each section's
    keys or items one a line (an outcome, a model), what they hold on that line; a list of names
    (a shard's node ids) one a line at any depth, and so the deeper values that grow with the
    suite (:data:`DEEPER_LAYOUT`: a matrix group's test rows, a verdict's tests).

    ``indent=2`` would use Python's pure-Python encoder for all of it (3.3 times the CPU time
    at 10,000 items, and twice the size); each line here is encoded by the C encoder, and
    nothing but a line is held in memory at a time.
    """

    def dump(handle: TextIO) -> None:
        _write_value(handle, run, 0, DEEPER_LAYOUT)
        handle.write("\n")

    write_atomically(path, dump)


# Deeper values laid out a key or an item a line too, so that no line (nor the text held to
# write it) grows with the suite: a matrix group's test rows, a verdict's tests, the missing
# recordings, the under-evidence flags, a baseline comparison's lists of tests. A tree of
# steps ("*": any key or item at that level); every value on a path of it is laid out.
DEEPER_LAYOUT: dict[str, Any] = {
    "matrix": {"groups": {"*": {"tests": {}}}},
    "gate": {"verdicts": {"*": {"*": {"tests": {}}}}},
    "missing": {"recordings": {}},
    "under_evidence": {"flags": {}},
    "baseline": {"*": {}},
}
Layout = dict[str, Any]


def _laid_out(value: Any, depth: int, layout: Layout | None) -> bool:
    """Whether ``value`` (``depth`` levels down, where the :data:`DEEPER_LAYOUT` tree is at
    ``layout``) gets a line per key or item; else it is one line."""
    if not isinstance(value, (dict, list, tuple)) or not value:
        return False
    if depth < EXPANDED_DEPTH or layout is not None:
        return True
    return isinstance(value, list) and len(value) > 1 and all(isinstance(v, str) for v in value)  # names


def _write_value(handle: TextIO, value: Any, depth: int, layout: Layout | None) -> None:
    """``value``, laid out as :func:`_laid_out` says; its one-line keys or items are written a
    few hundred lines at a time."""
    if not _laid_out(value, depth, layout):
        handle.write(json.dumps(value, separators=(", ", ": ")))
        return
    pad = "  " * (depth + 1)
    pairs: Iterable[tuple[str | None, Layout | None, Any]]
    if isinstance(value, dict):
        opening, closing = "{\n", "}"
        pairs = ((_key_text(key), _step(layout, key), item) for key, item in value.items())
    else:
        opening, closing = "[\n", "]"
        below = _step(layout, None)
        pairs = ((None, below, item) for item in value)
    handle.write(opening)
    last = len(value) - 1
    lines: list[str] = []
    for index, (name, below, item) in enumerate(pairs):
        head = pad if name is None else f"{pad}{name}: "
        end = ",\n" if index < last else "\n"
        if _laid_out(item, depth + 1, below):
            handle.write("".join(lines) + head)
            lines = []
            _write_value(handle, item, depth + 1, below)
            handle.write(end)
        else:
            lines.append(head + json.dumps(item, separators=(", ", ": ")) + end)
            if len(lines) >= _LINES_PER_WRITE:
                handle.write("".join(lines))
                lines = []
    handle.write("".join(lines) + "  " * depth + closing)


def _step(layout: Layout | None, key: object) -> Layout | None:
    """The layout tree one step down, at ``key`` (None: a list item)."""
    if not layout:
        return None
    found = layout.get(key) if isinstance(key, str) else None
    return found if found is not None else layout.get("*")


def _key_text(key: object) -> str:
    """A key as JSON spells it: ``1``, ``true`` and ``null`` keys become the strings json.dump makes."""
    return json.dumps(key if isinstance(key, str) else json.dumps(key))


_LINES_PER_WRITE = 256


@cache
def load_schema() -> dict[str, Any]:
    text = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_run(run: Mapping[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` when ``run`` does not follow the shipped schema."""
    import jsonschema

    jsonschema.validate(instance=run, schema=load_schema())
