"""The run file: every test × model outcome and the matrix, as JSON with a shipped JSON Schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..cassettes import write_atomically
from ..results import Outcome, build_matrix
from ..scrub import Scrubber

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path
    from typing import TextIO

    from ..models import ModelSpec

SCHEMA_VERSION = 1
SCHEMA_FILE = "run.schema.json"


def build_run(
    *,
    outcomes: Sequence[Outcome],
    models: Sequence[ModelSpec],
    incumbent: str | None,
    record_mode: str,
    extra: Mapping[str, Any] | None = None,
    scrubber: Scrubber | None = None,
) -> dict[str, Any]:
    """A JSON-safe dict of the whole run (see ``run.schema.json``).

    Failure messages and recorded calls quote what a test saw, which may hold a key (a reply
    that echoes the prompt): every string is scrubbed, with ``scrubber`` or, by default, one
    that knows the key variables of the environment. Every report renders from this dict.
    """
    model_ids = [spec.id for spec in models]
    matrix = build_matrix(outcomes, model_ids)
    run: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "pytest-modelmigrate", "version": __version__},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "record_mode": record_mode,
        "models": [spec.to_dict() for spec in models],
        "incumbent": incumbent,
        "outcomes": [o.to_dict() for o in outcomes],
        "matrix": matrix.to_dict(),
    }
    if extra:
        run.update(extra)
    scrubber = scrubber if scrubber is not None else Scrubber.from_settings()
    scrubbed: dict[str, Any] = scrubber.scrub_data(run)
    return scrubbed


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
