"""Recording with the real SDKs against the emulator, then replaying offline with identical results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pytest_modelmigrate.emulator import Emulator
from pytest_modelmigrate.reports.run import validate_run

SDK_TESTS = """
import json, os, pathlib
import pytest
import app

OUT = pathlib.Path(os.environ["OUT_DIR"])

def save(request, value):
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / (request.node.name + ".json")).write_text(json.dumps(value))

@pytest.mark.prompt("openai-calls", purpose="chat completions three ways")
def test_openai_sync(model, request):
    save(request, app.chat(model, "Say hello to the migration"))

@pytest.mark.prompt("openai-calls")
def test_openai_stream(model, request):
    save(request, app.chat_stream(model, "Stream a greeting"))

@pytest.mark.prompt("openai-calls")
def test_openai_async(model, request):
    save(request, app.chat_async(model, "Answer asynchronously"))

def test_anthropic_sync(model, request):
    save(request, app.claude(model, "Say hello from Claude"))

def test_anthropic_stream(model, request):
    save(request, app.claude_stream(model, "Stream from Claude"))

def test_anthropic_async(model, request):
    save(request, app.claude_async(model, "Claude asynchronously"))
"""

MODELS = "--models=emu-old,emu-new"


def _outputs(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.glob("*.json"))}


def test_record_then_replay_offline_gives_identical_results(
    project: pytest.Pytester, emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project.makepyfile(test_sdk=SDK_TESTS)
    monkeypatch.setenv("OUT_DIR", str(tmp_path / "recorded"))
    recorded = project.runpytest(MODELS, "--record-mode=once", "--migration-json=rec.json")
    recorded.assert_outcomes(passed=12)
    served = len(emulator.requests)
    assert served == 12

    cassettes = sorted((project.path / "cassettes" / "test_sdk").rglob("*.yaml"))
    names = {p.relative_to(project.path / "cassettes" / "test_sdk").as_posix() for p in cassettes}
    assert names == {
        f"{model}/{test}.yaml"
        for model in ("emu-old", "emu-new")
        for test in (
            "test_openai_sync",
            "test_openai_stream",
            "test_openai_async",
            "test_anthropic_sync",
            "test_anthropic_stream",
            "test_anthropic_async",
        )
    }
    emulator.stop()  # from here on nothing answers on that port

    monkeypatch.setenv("OUT_DIR", str(tmp_path / "replayed"))
    replayed = project.runpytest(MODELS, "--migration-json=rep.json", "--block-network")
    replayed.assert_outcomes(passed=12)
    assert _outputs(tmp_path / "replayed") == _outputs(tmp_path / "recorded")
    assert len(_outputs(tmp_path / "recorded")) == 12
    # every replayed output names the model that answered it: the cassettes are per model
    for name, text in _outputs(tmp_path / "replayed").items():
        model = name.split("[")[1].split("]")[0]
        assert model in json.loads(text), (name, text)

    rec = json.loads((project.path / "rec.json").read_text())
    rep = json.loads((project.path / "rep.json").read_text())
    validate_run(rec)
    validate_run(rep)
    assert rec["matrix"] == rep["matrix"]
    # latency measured at record time is kept in the cassette and reported on replay
    rec_latency = {o["nodeid"]: [c["latency_ms"] for c in o["calls"]] for o in rec["outcomes"]}
    rep_latency = {o["nodeid"]: [c["latency_ms"] for c in o["calls"]] for o in rep["outcomes"]}
    assert rec_latency == rep_latency
    assert all(len(v) == 1 and v[0] is not None for v in rep_latency.values())
    streamed = next(o for o in rep["outcomes"] if o["nodeid"].endswith("test_openai_stream[emu-new]"))
    assert streamed["calls"][0]["streaming"] is True
    assert streamed["calls"][0]["usage"]["output_tokens"] > 0
    assert rep["record_mode"] == "none"


def test_recording_one_model_leaves_the_other_models_cassettes_untouched(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project.makepyfile(test_one="import app\ndef test_it(model):\n    assert app.chat(model, 'hi')\n")
    monkeypatch.setenv("OUT_DIR", str(tmp_path))
    project.runpytest(MODELS, "--record-mode=once").assert_outcomes(passed=2)
    old = project.path / "cassettes" / "test_one" / "emu-old" / "test_it.yaml"
    new = project.path / "cassettes" / "test_one" / "emu-new" / "test_it.yaml"
    before_old, before_new = old.read_bytes(), new.read_bytes()
    project.runpytest("--models=emu-new", "--record-mode=rewrite").assert_outcomes(passed=1)
    assert old.read_bytes() == before_old
    assert new.exists() and new.read_bytes() != b""
    # one interaction, re-recorded; the file is still a valid cassette
    assert len(yaml.safe_load(new.read_text())["interactions"]) == 1
    assert before_new  # recorded the first time


def test_missing_cassette_fails_that_test_with_path_and_record_command(
    project: pytest.Pytester, emulator: Emulator
) -> None:
    project.makepyfile(
        test_missing="import app\ndef test_it(model):\n    app.chat(model, 'hi')\ndef test_other(): pass\n"
    )
    result = project.runpytest(MODELS)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*No recorded response for POST http://127.0.0.1:*/v1/chat/completions",
            "*cassette: *cassettes/test_missing/emu-old/test_it.yaml (missing)",
            "*record mode: none (replay only: nothing was sent to the network)",
            "*to record it: pytest 'test_missing.py::test_it[[]emu-old[]]' --models=emu-old --record-mode=once",
        ]
    )
    assert emulator.requests == []  # nothing reached the network
    assert not (project.path / "cassettes").exists()


def test_changed_prompt_says_what_differs_and_how_to_rerecord(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(
        test_p="import app, os\ndef test_it(model):\n    app.chat(model, os.environ['PROMPT'])\n"
    )
    monkeypatch.setenv("PROMPT", "first wording")
    project.runpytest("--models=emu-old", "--record-mode=once").assert_outcomes(passed=1)
    monkeypatch.setenv("PROMPT", "second wording")
    result = project.runpytest("--models=emu-old")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*closest recording differs by body: the JSON request bodies differ in: messages",
            "*to record it: pytest 'test_p.py::test_it[[]emu-old[]]' --models=emu-old --record-mode=rewrite",
        ]
    )


def test_cassette_dir_is_configurable(project: pytest.Pytester, tmp_path: Path) -> None:
    project.makeini("[pytest]\nmodelmigrate_cassette_dir = recordings\n")
    project.makepyfile(test_dir="import app\ndef test_it(model):\n    app.chat(model, 'hi')\n")
    project.runpytest("--models=emu-old", "--record-mode=once").assert_outcomes(passed=1)
    assert (project.path / "recordings" / "test_dir" / "emu-old" / "test_it.yaml").is_file()


def test_disable_recording_goes_live_without_cassettes(project: pytest.Pytester, emulator: Emulator) -> None:
    project.makepyfile(
        test_live="import app\ndef test_it(model):\n    assert 'emu-old' in app.chat(model, 'hi')\n"
    )
    result = project.runpytest("--models=emu-old", "--disable-recording")
    result.assert_outcomes(passed=1)
    assert len(emulator.requests) == 1
    assert not (project.path / "cassettes").exists()
