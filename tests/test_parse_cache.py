"""The parsed-cassette cache: used only for the very text it parsed, never a source of truth."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_modelmigrate.cassettes import ParseCache
from pytest_modelmigrate.emulator import Emulator

TESTS = """
import os, pathlib
import app

def test_reply(model):
    text = app.chat(model, "Say hello to the cache")
    pathlib.Path(os.environ["OUT_FILE"]).write_text(text)

def test_stream(model):
    assert app.chat_stream(model, "Stream to the cache")
"""


@pytest.fixture
def every_cassette(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cache the one-call cassettes below too (by default only cassettes of 32 KB or more are)."""
    monkeypatch.setattr(ParseCache, "MIN_CHARS", 0)


def _entries(project: pytest.Pytester) -> list[Path]:
    return sorted((project.path / ".pytest_cache" / "d" / "modelmigrate-cassettes").glob("*.json"))


def _record(project: pytest.Pytester, emulator: Emulator, monkeypatch: pytest.MonkeyPatch, out: Path) -> Path:
    project.makepyfile(test_cached=TESTS)
    monkeypatch.setenv("OUT_FILE", str(out))
    project.runpytest("--models=emu-new", "--record-mode=once", "-p", "no:cacheprovider").assert_outcomes(
        passed=2
    )
    emulator.stop()
    return project.path / "cassettes" / "test_cached" / "emu-new" / "test_reply.yaml"


@dataclass
class Warm:
    """A recorded project replayed once: its cache holds an entry per cassette."""

    project: pytest.Pytester
    out: Path  # what test_reply last saw
    cassette: Path  # test_reply's cassette
    recorded: str  # what test_reply saw while recording


@pytest.fixture
def warm(
    project: pytest.Pytester,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    every_cassette: None,
) -> Warm:
    out = tmp_path / "out.txt"
    cassette = _record(project, emulator, monkeypatch, out)
    recorded = out.read_text()
    project.runpytest("--models=emu-new", "--block-network").assert_outcomes(passed=2)
    assert len(_entries(project)) == 2
    return Warm(project, out, cassette, recorded)


def test_replay_fills_the_cache_then_reads_it(
    project: pytest.Pytester,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    every_cassette: None,
) -> None:
    out = tmp_path / "out.txt"
    _record(project, emulator, monkeypatch, out)
    recorded = out.read_text()
    assert _entries(project) == []  # -p no:cacheprovider: nothing kept

    project.runpytest("--models=emu-new", "--block-network").assert_outcomes(passed=2)
    entries = _entries(project)
    assert len(entries) == 2  # one per cassette
    assert out.read_text() == recorded
    stamps = {p: p.stat().st_mtime_ns for p in entries}

    out.unlink()
    project.runpytest("--models=emu-new", "--block-network").assert_outcomes(passed=2)
    assert out.read_text() == recorded
    assert {p: p.stat().st_mtime_ns for p in _entries(project)} == stamps  # read, not rewritten


def test_an_edited_cassette_is_parsed_again(warm: Warm) -> None:
    cassette = warm.cassette
    data = yaml.safe_load(cassette.read_text())
    body = json.loads(data["interactions"][0]["response"]["body"]["string"])
    body["choices"][0]["message"]["content"] = "Edited by hand after recording."
    data["interactions"][0]["response"]["body"]["string"] = json.dumps(body)
    cassette.write_text(yaml.safe_dump(data))

    warm.project.runpytest("--models=emu-new", "--block-network").assert_outcomes(passed=2)
    assert warm.out.read_text() == "Edited by hand after recording." != warm.recorded


def test_a_broken_cache_entry_is_ignored_and_replaced(warm: Warm) -> None:
    for entry in _entries(warm.project):
        entry.write_text('{"digest": "cut sho')
    warm.out.unlink()
    warm.project.runpytest("--models=emu-new", "--block-network").assert_outcomes(passed=2)
    assert warm.out.read_text() == warm.recorded
    for entry in _entries(warm.project):
        assert json.loads(entry.read_text())["digest"]  # written whole again


def test_a_forged_entry_for_other_text_is_not_used(warm: Warm) -> None:
    """An entry whose digest is not that of the cassette's text is never replayed."""
    cache = ParseCache(_entries(warm.project)[0].parent, warm.cassette, None)
    stored = json.loads(cache.entry.read_text())
    stored["data"]["interactions"][0]["response"]["body"]["string"] = "{}"
    stored["digest"] = "0" * 64
    cache.entry.write_text(json.dumps(stored))
    warm.out.unlink()
    warm.project.runpytest("--models=emu-new", "--block-network").assert_outcomes(passed=2)
    assert warm.out.read_text() == warm.recorded


def test_the_cache_can_be_turned_off(
    project: pytest.Pytester,
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    every_cassette: None,
) -> None:
    _record(project, emulator, monkeypatch, tmp_path / "out.txt")
    project.makeini("[pytest]\nmodelmigrate_parse_cache = false\n")
    project.runpytest("--models=emu-new", "--block-network").assert_outcomes(passed=2)
    assert _entries(project) == []


SAMPLED = """
import pytest
import app

PROMPT = "Summarise the refund policy for this ticket. " * 40


def test_short(model):
    assert app.chat(model, "One short call")


@pytest.mark.samples(12)
def test_sampled(model):
    assert app.chat(model, PROMPT)
"""


def test_only_cassettes_past_the_threshold_are_cached(project: pytest.Pytester, emulator: Emulator) -> None:
    """A one-call cassette is parsed every time; a long sampled one is kept, and read back."""
    project.makepyfile(test_sizes=SAMPLED)
    project.runpytest("--models=emu-new", "--record-mode=once", "-p", "no:cacheprovider").assert_outcomes(
        passed=2
    )
    emulator.stop()
    folder = project.path / "cassettes" / "test_sizes" / "emu-new"
    short, sampled = (
        (folder / "test_short.yaml").stat().st_size,
        (folder / "test_sampled.yaml").stat().st_size,
    )
    assert short < ParseCache.MIN_CHARS <= sampled, (short, sampled)

    project.runpytest("--models=emu-new", "--block-network").assert_outcomes(passed=2)
    entries = _entries(project)
    assert [p.name for p in entries] == [
        ParseCache(entries[0].parent, folder / "test_sampled.yaml", None).entry.name
    ]
    stamp = entries[0].stat().st_mtime_ns
    project.runpytest("--models=emu-new", "--block-network").assert_outcomes(passed=2)
    assert [p.stat().st_mtime_ns for p in _entries(project)] == [stamp]  # read, not rewritten


class _Inner:
    """A serializer stand-in that counts parses and returns what YAML cannot write as JSON."""

    def __init__(self, data: Any) -> None:
        self.data = data
        self.parsed = 0

    def deserialize(self, text: str) -> Any:
        self.parsed += 1
        return self.data


def test_bytes_and_tuples_come_back_as_they_were(tmp_path: Path) -> None:
    data = {"interactions": [{"body": b"\x00\xffraw", "pair": ("a", 1), "n": None, "f": 1.5, "ok": True}]}
    inner = _Inner(data)
    first = ParseCache(tmp_path, tmp_path / "c.yaml", inner).deserialize("text")
    again = ParseCache(tmp_path, tmp_path / "c.yaml", inner).deserialize("text")
    assert first == again == data
    assert isinstance(again["interactions"][0]["pair"], tuple)
    assert inner.parsed == 1  # the second came from the cache
    ParseCache(tmp_path, tmp_path / "c.yaml", inner).deserialize("other text")
    assert inner.parsed == 2


def test_objects_json_cannot_hold_are_not_cached(tmp_path: Path) -> None:
    inner = _Inner({"interactions": [{"body": object()}]})
    ParseCache(tmp_path, tmp_path / "c.yaml", inner).deserialize("text")
    ParseCache(tmp_path, tmp_path / "c.yaml", inner).deserialize("text")
    assert inner.parsed == 2
    assert list(tmp_path.glob("*.json")) == []


def test_an_unwritable_cache_only_costs_speed(tmp_path: Path) -> None:
    missing = tmp_path / "not-a-folder"
    missing.write_text("a file where the cache folder should be")
    inner = _Inner({"interactions": []})
    assert ParseCache(missing, tmp_path / "c.yaml", inner).deserialize("text") == {"interactions": []}


def test_every_real_cassette_comes_back_from_the_cache_as_parsed(tmp_path: Path) -> None:
    """The 65 cassettes recorded by other projects against the real APIs (bytes bodies included)."""
    from vcr.serializers import jsonserializer, yamlserializer

    folder = Path(__file__).parent / "data" / "real_cassettes"
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".json"))
    assert len(files) == 65
    leaves: set[type] = set()
    for path in files:
        text = path.read_text(encoding="utf-8")
        serializer = _Counting(jsonserializer if path.suffix == ".json" else yamlserializer)
        direct = serializer.inner.deserialize(text)
        assert ParseCache(tmp_path, path, serializer).deserialize(text) == direct
        assert ParseCache(tmp_path, path, serializer).deserialize(text) == direct
        assert serializer.parsed == 1, path  # the second time from the entry
        leaves.update(type(v) for v in _leaves(direct))
    assert bytes in leaves  # some bodies are binary, and survive the JSON entry


class _Counting:
    """A real vcrpy serializer module, counting its parses (same name, so the same digest)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.__name__ = inner.__name__
        self.parsed = 0

    def deserialize(self, text: str) -> Any:
        self.parsed += 1
        return self.inner.deserialize(text)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, (list, tuple)):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]
