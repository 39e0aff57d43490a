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


def write_json(path: Path, run: Mapping[str, Any]) -> None:
    """The run as indented JSON, encoded straight into the file.

    ``json.dumps(..., indent=2)`` uses the pure-Python encoder and gathers every piece before
    joining them: about six times the text's size in memory, the peak of a large session.
    """

    def dump(handle: TextIO) -> None:
        json.dump(run, handle, indent=2, sort_keys=False)
        handle.write("\n")

    write_atomically(path, dump)


@cache
def load_schema() -> dict[str, Any]:
    text = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_run(run: Mapping[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` when ``run`` does not follow the shipped schema."""
    import jsonschema

    jsonschema.validate(instance=run, schema=load_schema())
