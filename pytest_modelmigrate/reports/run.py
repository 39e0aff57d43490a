"""The run file: ``Run.to_dict()`` as JSON, and the JSON Schema shipped with it."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from ..files import write_atomically

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path
    from typing import TextIO

SCHEMA_FILE = "run.schema.json"


EXPANDED_DEPTH = 2  # the run and its sections are laid out a key (or an item) a line


def write_json(path: Path, run: Mapping[str, Any]) -> None:
    """The run as JSON, written piece by piece into the file: the run's keys and each section's
    keys or items one a line (an outcome, a matrix row, a model), what they hold on that line;
    a list of names (a shard's node ids) one a line at any depth.

    ``indent=2`` would use Python's pure-Python encoder for all of it (3.3 times the CPU time
    at 10,000 items, and twice the size); each line here is encoded by the C encoder, and
    nothing but a line is held in memory at a time.
    """

    def dump(handle: TextIO) -> None:
        _write_value(handle, run, 0)
        handle.write("\n")

    write_atomically(path, dump)


def _write_value(handle: TextIO, value: Any, depth: int) -> None:
    pad = "  " * depth
    names = isinstance(value, list) and len(value) > 1 and all(isinstance(v, str) for v in value)
    if isinstance(value, dict) and value and depth < EXPANDED_DEPTH:
        handle.write("{\n")
        last = len(value) - 1
        for index, (key, item) in enumerate(value.items()):
            name = key if isinstance(key, str) else json.dumps(key)  # as json.dump spells 1, true, null
            handle.write(f"{pad}  {json.dumps(name)}: ")
            _write_value(handle, item, depth + 1)
            handle.write(",\n" if index < last else "\n")
        handle.write(pad + "}")
    elif isinstance(value, (list, tuple)) and value and (depth < EXPANDED_DEPTH or names):
        handle.write("[\n")
        last = len(value) - 1
        for index, item in enumerate(value):
            handle.write(pad + "  ")
            _write_value(handle, item, depth + 1)
            handle.write(",\n" if index < last else "\n")
        handle.write(pad + "]")
    else:
        handle.write(json.dumps(value, separators=(", ", ": ")))


@cache
def load_schema() -> dict[str, Any]:
    text = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_run(run: Mapping[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` when ``run`` does not follow the shipped schema."""
    import jsonschema

    jsonschema.validate(instance=run, schema=load_schema())
