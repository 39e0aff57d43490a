"""The fast paths of a replay: cached schema validators and imports left for when they are needed."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_modelmigrate.checks import structural
from pytest_modelmigrate.checks.result import ChecksConfigError
from pytest_modelmigrate.checks.structural import json_schema
from pytest_modelmigrate.emulator import Emulator

SCHEMA = {
    "type": "object",
    "properties": {"queue": {"enum": ["refunds", "tech"]}, "priority": {"type": "integer", "maximum": 3}},
    "required": ["queue", "priority"],
}


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    saved = dict(structural._VALIDATORS)
    structural._VALIDATORS.clear()
    yield
    structural._VALIDATORS.clear()
    structural._VALIDATORS.update(saved)


def test_a_schema_is_checked_once_whatever_dict_holds_it() -> None:
    first = structural._schema_validator(SCHEMA)
    again = structural._schema_validator(json.loads(json.dumps(SCHEMA)))  # equal, not the same dict
    assert again is first
    assert len(structural._VALIDATORS) == 1
    other = structural._schema_validator({**SCHEMA, "required": ["queue"]})
    assert other is not first
    assert len(structural._VALIDATORS) == 2
    assert json_schema('{"queue": "tech", "priority": 2}', SCHEMA)
    assert not json_schema('{"queue": "tech", "priority": 9}', SCHEMA)
    assert len(structural._VALIDATORS) == 2


def test_a_schema_edited_after_a_call_is_validated_as_edited() -> None:
    schema = json.loads(json.dumps(SCHEMA))
    assert json_schema('{"queue": "tech", "priority": 2}', schema)
    schema["properties"]["priority"]["maximum"] = 1  # nested: the cache must not share it
    result = json_schema('{"queue": "tech", "priority": 2}', schema)
    assert not result
    assert result.message == "1 schema error(s): $.priority: 2 is greater than the maximum of 1"
    # the first validator kept a copy of its own: the edit above did not reach it
    assert json_schema('{"queue": "tech", "priority": 2}', json.loads(json.dumps(SCHEMA)))
    assert len(structural._VALIDATORS) == 2


def test_an_invalid_schema_raises_the_same_error_every_time_and_is_not_cached() -> None:
    messages = []
    for _ in range(3):
        with pytest.raises(ChecksConfigError) as caught:
            json_schema('{"a": 1}', {"type": "objekt"})
        messages.append(str(caught.value))
    assert (
        messages
        == ["json_schema: invalid schema at $.type: 'objekt' is not valid under any of the given schemas"] * 3
    )
    assert structural._VALIDATORS == {}


def test_schemas_json_would_not_give_back_are_checked_every_call() -> None:
    """A tuple, an int key or NaN: the dump would blur them, so they are never keys."""
    assert json_schema('{"queue": "x"}', {"type": "object", "required": ["queue"]})
    with pytest.raises(ChecksConfigError, match=r"\('queue',\) is not of type 'array'"):
        json_schema('{"queue": "x"}', {"type": "object", "required": ("queue",)})  # not the list's
    structural._VALIDATORS.clear()
    for odd in (
        {"type": "object", "required": ("queue",)},
        {"type": "object", "properties": {1: {"type": "string"}}},
        {"type": "number", "maximum": float("nan")},
    ):
        assert not structural._canonical(odd)
        with contextlib.suppress(ChecksConfigError):  # refused or not, as without the cache
            json_schema('{"queue": "x"}', odd)
    assert structural._VALIDATORS == {}


def test_key_order_gets_a_validator_of_its_own() -> None:
    a = structural._schema_validator({"type": "object", "required": ["x"]})
    b = structural._schema_validator({"required": ["x"], "type": "object"})
    assert a is not b
    assert list(a.schema) == ["type", "required"] and list(b.schema) == ["required", "type"]


def test_the_cache_is_bounded_and_keeps_the_most_recent() -> None:
    limit = structural._VALIDATORS_MAX
    first = structural._schema_validator({"type": "object", "maxProperties": 0})
    for n in range(1, limit + 20):
        structural._schema_validator({"type": "object", "maxProperties": n})
        structural._schema_validator({"type": "object", "maxProperties": 0})  # used again: kept
    assert len(structural._VALIDATORS) == limit
    assert structural._schema_validator({"type": "object", "maxProperties": 0}) is first
    evicted = structural._schema_validator({"type": "object", "maxProperties": 1})
    assert len(structural._VALIDATORS) == limit
    assert evicted.schema == {"type": "object", "maxProperties": 1}


HEAVY = ("jsonschema", "vcr", "yaml", "openai", "anthropic", "numpy", "pydantic")


def _imported_by(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {name.split(".")[0] for name in json.loads(out.splitlines()[-1])}


def test_importing_the_plugin_imports_nothing_heavy() -> None:
    """pytest loads the plugin in every run of every project that installs it."""
    found = _imported_by("import pytest_modelmigrate.plugin")
    assert not found & set(HEAVY), sorted(found & set(HEAVY))


REPLAY = """
import app

def test_reply(model):
    assert app.chat(model, "Say hello")
"""

RECORD_MODULES = """
import json, os, sys

def pytest_unconfigure(config):
    with open(os.environ["MODULES_OUT"], "w") as handle:
        json.dump(sorted(sys.modules), handle)
"""


def test_a_replay_that_checks_no_schema_never_imports_jsonschema(
    project: pytest.Pytester, emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project.makepyfile(test_plain=REPLAY)
    project.makeconftest(RECORD_MODULES)
    out = tmp_path / "modules.json"
    monkeypatch.setenv("MODULES_OUT", str(out))
    project.runpytest("--models=emu-new", "--record-mode=once").assert_outcomes(passed=1)
    emulator.stop()
    result = project.runpytest_subprocess("--models=emu-new", "--block-network", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    modules = {name.split(".")[0] for name in json.loads(out.read_text())}
    assert "vcr" in modules  # the replay really went through vcrpy
    assert "jsonschema" not in modules
