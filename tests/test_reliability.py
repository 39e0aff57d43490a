"""Bad input, faults and secrets, tried one by one (issue 10).

Each case gets a named, actionable error and loses nothing. ``docs/reliability.md`` lists every
case with the error a user sees and the test here that proves it.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

# hypothesis' pytest plugin imports hypothesis at the end of every in-process pytester run unless
# it is already imported (pytester restores sys.modules): ~4 s a run on a busy machine.
import hypothesis  # noqa: F401
import pytest
import yaml
from conftest import free_port, python_m

from pytest_modelmigrate.cassettes import AtomicPersister, CassetteReadError
from pytest_modelmigrate.emulator import Emulator
from pytest_modelmigrate.models import ModelSpecError, parse_models
from pytest_modelmigrate.reports.html import write_html
from pytest_modelmigrate.reports.markdown import write_markdown
from pytest_modelmigrate.reports.run import write_json
from pytest_modelmigrate.scrub import find_live_keys

# One emulator for the whole module: scripted errors for two models, a slow prompt for SIGINT.
SCRIPT = {
    "models": {
        "emu-429": {"default": {"error": {"status": 429, "message": "Rate limit reached for emu-429"}}},
        "emu-500": {"default": {"error": {"status": 500, "message": "The server had an error"}}},
        "*": {"rules": [{"match": "(?i)take your time", "latency_ms": 30000, "reply": "slow"}]},
    }
}


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """Overrides conftest's: the scripted one (only the slow prompt sleeps)."""
    with Emulator(script=SCRIPT, port=free_port(), time_scale=1.0) as emu:
        yield emu


def cassette(project: pytest.Pytester, module: str, model: str, test: str) -> Path:
    return project.path / "cassettes" / module / model / f"{test}.yaml"


def leftovers(folder: Path) -> list[str]:
    """Anything in a cassette folder that is not a cassette (temp files of a half-done write)."""
    return sorted(p.name for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".yaml"))


# -- bad --models values, names, markers, ini keys -----------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a,,b", "--models: model #2 is empty"),
        ("a, ,b", "--models: model #2 is empty"),
        ("a,a", "--models: model 'a' is listed twice"),
        (" a , a ", "--models: model 'a' is listed twice"),
        ("a=x,a=y", "--models: 'x' and 'y' would share the id 'a'"),
        ("a/b,a:b", "--models: 'a/b' and 'a:b' would share the id 'a-b'"),
        ("a-b=x,a/b", "--models: 'x' and 'a/b' would share the id 'a-b'"),
        ("=x", "--models: '=x' needs both an alias and a model name"),
        ("a=", "--models: 'a=' needs both an alias and a model name"),
        ("a/b=x", "--models: alias 'a/b' may use only letters, digits and . _ + -"),
        ("a" * 65 + "=x", "at most 64 characters"),
        ("..=x", "--models: alias '..' may use only"),  # would put cassettes in the parent folder
    ],
)
def test_bad_models_values_name_the_setting_and_the_fix(value: str, message: str) -> None:
    with pytest.raises(ModelSpecError) as excinfo:
        parse_models(value, source="--models")
    assert message in str(excinfo.value)


@pytest.mark.parametrize("value", ["", ",", " , "])
def test_empty_models_option_is_a_usage_error(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyfile("def test_it(model): pass")
    result = pytester.runpytest(f"--models={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --models is empty; name at least one model, e.g. --models=gpt-4o,gpt-5"]
    )


def test_unknown_models_in_markers_fail_collection_naming_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_skip="import pytest\n@pytest.mark.models(skip=['gpt-6'])\ndef test_it(model): pass\n",
        test_xfail="import pytest\n@pytest.mark.models(xfail={'gpt-7': 'why'})\ndef test_it(model): pass\n",
        test_only="import pytest\n@pytest.mark.models('gpt-8')\ndef test_it(model): pass\n",
        test_typo="import pytest\n@pytest.mark.models(onyl=['gpt-4o'])\ndef test_it(model): pass\n",
        test_fine="def test_it(model): pass\n",
    )
    result = pytester.runpytest("--models=gpt-4o,gpt-5")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # collection errors stop the run
    result.stdout.fnmatch_lines_random(
        [
            "*test_skip.py::test_it: @pytest.mark.models names 'gpt-6', which is not a configured model "
            "(configured: gpt-4o, gpt-5); fix the marker or add the model to modelmigrate_models",
            "*test_xfail.py::test_it: @pytest.mark.models names 'gpt-7'*",
            "*test_only.py::test_it: @pytest.mark.models names 'gpt-8'*",
            "*test_typo.py::test_it: @pytest.mark.models got unknown argument(s) [[]'onyl'[]]; "
            "use only=[[]...[]], skip=[[]...[]] or xfail={'model': 'reason'}",
            "*Interrupted: 4 errors during collection*",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


def test_misspelt_ini_key_warns_and_strict_config_refuses(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmodelmigrate_model = gpt-4o\nmodelmigrate_casette_dir = recordings\n")
    pytester.makepyfile("def test_it(model): pass")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines_random(
        [
            "*PytestConfigWarning: Unknown config option: modelmigrate_casette_dir",
            "*PytestConfigWarning: Unknown config option: modelmigrate_model",
            "*uses the `model` fixture, but no models are configured for it*(neither is set)",
        ]
    )
    # with models from the command line the misspelt cassette folder is silently not used
    result = pytester.runpytest("--models=gpt-4o", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*Unknown config option: modelmigrate_casette_dir*"])
    strict = pytester.runpytest("--strict-config", "--models=gpt-4o")
    assert strict.ret == pytest.ExitCode.USAGE_ERROR
    strict.stderr.fnmatch_lines(["ERROR: Unknown config option: modelmigrate_casette_dir"])


LONG_ID = """
import pytest, app

@pytest.mark.parametrize("case", ["hi"], ids=["c" * 300])
def test_long(model, case):
    assert app.chat(model, case)
"""


def test_model_name_with_path_characters_and_a_300_character_test_id(
    project: pytest.Pytester, emulator: Emulator
) -> None:
    project.makepyfile(test_names=LONG_ID)
    project.runpytest("--models=org/model:tag", "--record-mode=once").assert_outcomes(passed=1)
    assert [r.model for r in emulator.requests] == ["org/model:tag"]  # the app sent the real name
    files = list((project.path / "cassettes" / "test_names").rglob("*.yaml"))
    assert len(files) == 1
    path = files[0]
    assert path.parent.name == "org-model-tag"  # the id: file-name safe
    assert len(path.name) <= 200
    assert path.name.startswith("test_long[" + "c" * 100) and path.name.endswith(".yaml")
    emulator.stop()
    replay = project.runpytest("--models=org/model:tag", "--block-network")
    replay.assert_outcomes(passed=1)


# -- unreadable cassettes ------------------------------------------------------------------------

BROKEN = """
import app

def test_truncated(model):
    app.chat(model, "one")

def test_not_yaml(model):
    app.chat(model, "two")

def test_wrong_shape(model):
    app.chat(model, "three")

def test_no_body(model):
    app.chat(model, "four")

def test_stream_cut_mid_event(model):
    app.chat_stream(model, "five")

def test_stream_without_done(model):
    app.chat_stream(model, "six")

def test_claude_stream_cut(model):
    app.claude_stream(model, "seven")
"""


def _cut_stream(path: Path, keep: float, *, whole_events: bool) -> None:
    data = yaml.safe_load(path.read_text())
    body = data["interactions"][0]["response"]["body"]
    text = body["string"]
    cut = text[: int(len(text) * keep)]
    if whole_events:
        cut = cut[: cut.rindex("\n\n") + 2]  # ends on an event boundary: looks complete
    body["string"] = cut
    path.write_text(yaml.safe_dump(data))


def test_unreadable_cassettes_fail_their_test_naming_file_and_fix(project: pytest.Pytester) -> None:
    project.makepyfile(test_broken=BROKEN)
    project.runpytest("--models=emu-a", "--record-mode=once").assert_outcomes(passed=7)

    def path(test: str) -> Path:
        return cassette(project, "test_broken", "emu-a", test)

    whole = path("test_truncated").read_text()
    path("test_truncated").write_text(whole[: len(whole) // 2])
    path("test_not_yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    path("test_wrong_shape").write_text("- request: {}\n- response: {}\n")
    data = yaml.safe_load(path("test_no_body").read_text())
    del data["interactions"][0]["response"]["body"]
    path("test_no_body").write_text(yaml.safe_dump(data))
    _cut_stream(path("test_stream_cut_mid_event"), 0.5, whole_events=False)
    _cut_stream(path("test_stream_without_done"), 0.7, whole_events=True)
    _cut_stream(path("test_claude_stream_cut"), 0.6, whole_events=True)
    before = {p: p.read_bytes() for p in (project.path / "cassettes").rglob("*.yaml")}

    result = project.runpytest("--models=emu-a", "--migration-json=run.json")
    result.assert_outcomes(errors=7)
    fix = "it was left as it is. Fix the file (git checkout it), or delete it and record again with --record-mode=once"
    result.stdout.fnmatch_lines_random(
        [
            f"*emu-a/test_truncated.yaml: cannot be parsed (*); {fix}",
            f"*emu-a/test_not_yaml.yaml: not UTF-8 text (*); {fix}",
            f"*emu-a/test_wrong_shape.yaml: not a vcrpy cassette (*); {fix}",
            f"*emu-a/test_no_body.yaml: interaction 0: the response lacks body.string (truncated or edited by hand?); {fix}",
            f"*emu-a/test_stream_cut_mid_event.yaml: interaction 0: event stream truncated mid-event*; {fix}",
            f"*emu-a/test_stream_without_done.yaml: interaction 0: chat completion stream ended before [[]DONE[]]*; {fix}",
            f"*emu-a/test_claude_stream_cut.yaml: interaction 0: Anthropic stream ended before*; {fix}",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")
    after = {p: p.read_bytes() for p in (project.path / "cassettes").rglob("*.yaml")}
    assert after == before  # nothing rewritten, nothing deleted
    run = json.loads((project.path / "run.json").read_text())
    assert {o["outcome"] for o in run["outcomes"]} == {"error"}


def test_a_cassette_cut_anywhere_is_refused_never_half_replayed(project: pytest.Pytester) -> None:
    """Cut a streamed cassette at every line and mid-line: it loads whole or is refused by name."""
    from vcr.persisters.filesystem import CassetteNotFoundError
    from vcr.serializers import yamlserializer

    project.makepyfile(test_cut="import app\ndef test_it(model):\n    app.chat_stream(model, 'cut me')\n")
    project.runpytest("--models=emu-a", "--record-mode=once").assert_outcomes(passed=1)
    text = cassette(project, "test_cut", "emu-a", "test_it").read_text()
    _, full_responses = AtomicPersister.load_cassette(
        cassette(project, "test_cut", "emu-a", "test_it"), yamlserializer
    )
    target = project.path / "cut.yaml"
    offsets = {i + 1 for i, ch in enumerate(text) if ch == "\n"} | set(range(1, len(text), 97))
    outcomes = {"refused": 0, "missing": 0, "whole": 0}
    for offset in sorted(offsets):
        target.write_text(text[:offset])
        try:
            _, responses = AtomicPersister.load_cassette(target, yamlserializer)
        except CassetteReadError as exc:
            assert str(target) in str(exc) and "record again" in str(exc)
            outcomes["refused"] += 1
        except CassetteNotFoundError:
            outcomes["missing"] += 1  # an empty prefix: recorded anew, nothing to replay
        else:  # cut in the last lines (status message, version): what replays is unchanged
            assert [(r["status"]["code"], r["headers"], r["body"]) for r in responses] == [
                (r["status"]["code"], r["headers"], r["body"]) for r in full_responses
            ], f"cut at {offset} replays a different response"
            outcomes["whole"] += 1
    assert outcomes["refused"] > 50, outcomes


def test_changed_prompt_names_the_field_and_the_command_that_rerecords_just_that(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(
        test_p="""
        import os, pytest, app

        @pytest.mark.parametrize("case", ["a", "b"])
        def test_it(model, case):
            client = app.openai_client()
            extra = {"temperature": float(os.environ["TEMP"])} if case == "a" else {}
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": case}], **extra)
        """
    )
    monkeypatch.setenv("TEMP", "0.2")
    models = "--models=old=emu-x-2024,new=emu-x-2026"
    project.runpytest(models, "--record-mode=once").assert_outcomes(passed=4)
    folder = project.path / "cassettes" / "test_p"
    before = {p: p.read_bytes() for p in folder.rglob("*.yaml")}
    monkeypatch.setenv("TEMP", "0.7")
    result = project.runpytest(models)
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*closest recording differs by body: the JSON request bodies differ in: temperature",
            "*(the prompt or the request changed since it was recorded?)",
            "*to record it: pytest 'test_p.py::test_it[[]a-old[]]' --models=old=emu-x-2024 --record-mode=rewrite",
        ]
    )
    hint = next(line for line in result.stdout.lines if "to record it:" in line and "a-new" in line)
    command = shlex.split(hint.split("to record it: ", 1)[1])
    assert command[0] == "pytest"
    project.runpytest(*command[1:]).assert_outcomes(passed=1)
    changed = {p for p in folder.rglob("*.yaml") if p.read_bytes() != before[p]}
    assert changed == {folder / "new" / "test_it[a].yaml"}  # just that test and model
    project.runpytest(models).assert_outcomes(passed=3, failed=1)


# -- provider errors -----------------------------------------------------------------------------


def test_provider_errors_are_not_recorded_unless_the_test_asks(
    project: pytest.Pytester, emulator: Emulator
) -> None:
    """A 429 or a 500 while recording is the provider's state, not the model's answer: the test
    fails saying so, no cassette is written, and the cell is missing (not the model failing)."""
    project.makepyfile(
        test_err="""
        import app

        def test_openai(model):
            app.chat(model, "hello")

        def test_anthropic(model):
            app.claude(model, "hello")
        """
    )
    args = ("--models=emu-429,emu-500", "--migration-json=run.json", "-p", "no:randomly")
    recorded = project.runpytest(*args, "--record-mode=once")
    recorded.assert_outcomes(failed=4)
    recorded.stdout.fnmatch_lines_random(
        [
            "FAILED test_err.py::test_openai[[]emu-429[]] - not recorded: the provider answered 429 (rate limit)*",
            "FAILED test_err.py::test_openai[[]emu-500[]] - not recorded: the provider answered 500 (server error)*",
            "FAILED test_err.py::test_anthropic[[]emu-429[]] - not recorded: the provider answered 429 (rate limit)*",
        ]
    )
    assert not list(project.path.rglob("*.yaml"))
    run = json.loads((project.path / "run.json").read_text())
    assert {o["outcome"] for o in run["outcomes"]} == {"missing"}
    assert all(o["missing"].startswith("not recorded: the provider answered") for o in run["outcomes"])


def test_recorded_provider_errors_fail_the_test_as_the_models_errors(
    project: pytest.Pytester, emulator: Emulator
) -> None:
    """``@pytest.mark.record_provider_errors``: the test asserts on the error, so it is kept."""
    project.makepyfile(
        test_err="""
        import app
        import pytest

        pytestmark = pytest.mark.record_provider_errors

        def test_openai(model):
            app.chat(model, "hello")

        def test_anthropic(model):
            app.claude(model, "hello")
        """
    )
    args = ("--models=emu-429,emu-500", "--migration-json=run.json")
    recorded = project.runpytest(*args, "--record-mode=once")
    recorded.assert_outcomes(failed=4)  # failed, not errors: the model's errors, not the plugin's
    for result in (recorded, project.runpytest(*args, "--block-network")):
        result.assert_outcomes(failed=4)
        result.stdout.fnmatch_lines_random(
            [
                "FAILED test_err.py::test_openai[[]emu-429[]] - openai.RateLimitError: Error code: 429*",
                "FAILED test_err.py::test_openai[[]emu-500[]] - openai.InternalServerError: Error code: 500*",
                "FAILED test_err.py::test_anthropic[[]emu-429[]] - anthropic.RateLimitError: Error code: 429*",
                "FAILED test_err.py::test_anthropic[[]emu-500[]] - anthropic.InternalServerError: *",
            ]
        )
        result.stdout.no_fnmatch_line("*INTERNALERROR*")
        run = json.loads((project.path / "run.json").read_text())
        errors = {o["nodeid"]: o["calls"][0]["error"] for o in run["outcomes"]}
        assert errors["test_err.py::test_openai[emu-429]"]["status"] == 429
        assert errors["test_err.py::test_openai[emu-429]"]["type"] == "rate_limit_error"
        assert "Rate limit reached for emu-429" in errors["test_err.py::test_openai[emu-429]"]["message"]
        assert errors["test_err.py::test_anthropic[emu-500]"]["status"] == 500
        assert all(o["calls"][0]["status"] in (429, 500) for o in run["outcomes"])
        emulator.stop()  # the second pass replays offline
    assert len(emulator.requests) == 4


# -- interrupted and failed recordings -----------------------------------------------------------

# Subprocess runs import only openai (the shared app imports both SDKs: seconds on a busy machine).
SLIM_APP = """
import os
import openai

def chat(model, prompt):
    client = openai.OpenAI(base_url=os.environ["EMU_URL"] + "/v1", api_key="x", max_retries=0)
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}])
    return r.choices[0].message.content
"""
# Plugins the subprocess runs do not need; each costs start-up time in every process.
LEAN = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")

SLOW = """
import os, pathlib, slimapp as app

def test_it(model):
    pathlib.Path("started").write_text("1")
    app.chat(model, os.environ["PROMPT"])
"""


def _env(project: pytest.Pytester, **extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(project.path), **extra)
    env.pop("PYTEST_ADDOPTS", None)
    return env


def test_sigint_while_recording_keeps_the_previous_cassette(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(test_slow=SLOW, slimapp=SLIM_APP)
    monkeypatch.setenv("PROMPT", "quick one")
    project.runpytest("--models=emu-a", "--record-mode=once").assert_outcomes(passed=1)
    path = cassette(project, "test_slow", "emu-a", "test_it")
    before = path.read_bytes()
    (project.path / "started").unlink()
    proc = subprocess.Popen(
        python_m("pytest", "--models=emu-a", "--record-mode=rewrite", *LEAN),
        cwd=project.path,
        env=_env(project, PROMPT="please take your time"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (project.path / "started").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the test never started"
            time.sleep(0.05)
        time.sleep(0.5)  # the request is in flight: the emulator sleeps 30 s before answering
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert "KeyboardInterrupt" in out
    assert path.read_bytes() == before
    assert leftovers(project.path / "cassettes") == []


def test_worker_killed_while_recording_keeps_the_previous_cassette(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(
        slimapp=SLIM_APP,
        test_kill="""
        import os, slimapp as app

        def test_dies(model):
            app.chat(model, os.environ["PROMPT"])
            if os.environ.get("DIE") and model == "emu-b":
                os._exit(1)  # the response is in memory, not yet saved

        def test_fine(model):
            app.chat(model, os.environ["PROMPT"])
        """,
    )
    monkeypatch.setenv("PROMPT", "first")
    project.runpytest("--models=emu-a,emu-b", "--record-mode=once").assert_outcomes(passed=4)
    dying = cassette(project, "test_kill", "emu-b", "test_dies")
    before = dying.read_bytes()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--models=emu-a,emu-b",
            "--record-mode=rewrite",
            "-n",
            "2",
            "--migration-json=run.json",
            *LEAN,
        ],
        cwd=project.path,
        env=_env(project, PROMPT="second", DIE="1"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "crashed while running" in proc.stdout, proc.stdout + proc.stderr
    assert dying.read_bytes() == before
    for other in ("emu-a/test_dies", "emu-a/test_fine", "emu-b/test_fine"):
        assert "second" in (project.path / "cassettes" / "test_kill" / f"{other}.yaml").read_text()
    assert leftovers(project.path / "cassettes") == []
    run = json.loads((project.path / "run.json").read_text())
    outcome = {o["nodeid"]: o["outcome"] for o in run["outcomes"]}
    assert outcome["test_kill.py::test_dies[emu-b]"] == "failed"
    assert outcome["test_kill.py::test_fine[emu-b]"] == "passed"


def test_failed_rerecords_keep_the_old_cassette_a_model_failure_is_recorded(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(
        test_r="""
        import os, app

        def test_raises(model):
            app.chat(model, os.environ["PROMPT"])
            if os.environ.get("BREAK"):
                raise ConnectionError("network went away half-way")

        def test_asserts(model):
            reply = app.chat(model, os.environ["PROMPT"])
            assert not os.environ.get("BREAK"), reply
        """
    )
    monkeypatch.setenv("PROMPT", "first")
    project.runpytest("--models=emu-a", "--record-mode=once").assert_outcomes(passed=2)
    raises = cassette(project, "test_r", "emu-a", "test_raises")
    asserts = cassette(project, "test_r", "emu-a", "test_asserts")
    old_raises, old_asserts = raises.read_bytes(), asserts.read_bytes()
    monkeypatch.setenv("PROMPT", "second")
    monkeypatch.setenv("BREAK", "1")
    for mode in ("rewrite", "all"):
        project.runpytest("--models=emu-a", f"--record-mode={mode}").assert_outcomes(failed=2)
        assert raises.read_bytes() == old_raises  # an error in the test: the recording is not kept
        assert b"second" in asserts.read_bytes() and asserts.read_bytes() != old_asserts
    assert leftovers(project.path / "cassettes") == []


# -- secrets -------------------------------------------------------------------------------------

OPENAI_KEY = "sk-proj-" + "Zq8" * 15
ANTHROPIC_KEY = "sk-ant-api03-" + "Kx7" * 14

SECRET_TESTS = """
import os
import anthropic, openai

URL = os.environ["EMU_URL"]

def test_openai(model, snapshot_model):
    client = openai.OpenAI(
        base_url=URL + "/v1", api_key=os.environ["OPENAI_API_KEY"], max_retries=0,
        default_query={"key": os.environ["OPENAI_API_KEY"]},
    )
    r = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": os.environ["OPENAI_API_KEY"] + " is my key"}]
    )
    reply = r.choices[0].message.content
    assert reply == snapshot_model
    assert "refund" in reply, "unexpected reply: " + reply

def test_anthropic(model, snapshot_model):
    client = anthropic.Anthropic(base_url=URL, api_key=os.environ["ANTHROPIC_API_KEY"], max_retries=0)
    r = client.messages.create(
        model=model, max_tokens=50,
        messages=[{"role": "user", "content": os.environ["ANTHROPIC_API_KEY"] + " is my key"}],
    )
    assert r.content[0].text == snapshot_model
"""


def _everything_written(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): p.read_text(errors="replace")
        for p in root.rglob("*")
        if p.is_file() and p.suffix in (".yaml", ".json", ".md", ".html")
    }


def test_secrets_reach_no_cassette_snapshot_or_report(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    project.makepyfile(test_secret=SECRET_TESTS)
    reports = (
        "--migration-json=out/run.json",
        "--migration-markdown=out/run.md",
        "--migration-html=out/run.html",
    )
    result = project.runpytest("--models=emu-a", "--record-mode=once", "--snapshot-update", *reports)
    result.assert_outcomes(passed=1, failed=1)
    written = _everything_written(project.path)
    kinds = {name.split("/")[0] for name in written}
    assert {"cassettes", "__snapshots__", "out"} <= kinds, sorted(written)
    # the reply quotes the key, and the failure message quotes the reply
    assert "unexpected reply: Emulated reply from emu-a to" in written["out/run.json"]
    assert "<redacted>" in written["out/run.json"]

    def leaks(names: list[str]) -> list[str]:
        return [
            f"{name} holds {prefix[:12]}…"
            for name in names
            for key in (OPENAI_KEY, ANTHROPIC_KEY)
            for prefix in (key, key[:14])
            if prefix in written[name]
        ] + [name for name in names if find_live_keys(written[name])]

    assert leaks([n for n in written if not n.startswith("__snapshots__")]) == []
    # syrupy writes what the app got live; the per-model extension scrubs it like a cassette
    assert any(n.startswith("__snapshots__") for n in written)
    assert leaks([n for n in written if n.startswith("__snapshots__")]) == []


def test_the_last_scan_refuses_a_live_looking_key_and_says_where(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_CREDS", OPENAI_KEY)  # a variable the scrubber cannot know by its name
    project.makepyfile(
        test_scan="""
        import os, openai

        def test_it(model):
            client = openai.OpenAI(base_url=os.environ["EMU_URL"] + "/v1", api_key="x", max_retries=0,
                                   default_headers={"X-Llm-Creds": os.environ["LLM_CREDS"]})
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        """
    )
    result = project.runpytest("--models=emu-a", "--record-mode=once")
    if result.parseoutcomes().get("errors") != 1:
        # seen once in a fresh venv under a loaded -n 2 (the test passed, nothing refused), never
        # reproduced: say whether the cassette was written, what it holds and who knows the key
        path = cassette(project, "test_scan", "emu-a", "test_it")
        holders = sorted(name for name, value in os.environ.items() if value == OPENAI_KEY)
        text = path.read_text()[:4000] if path.exists() else "(no cassette)"
        pytest.fail(
            f"the scan did not refuse; variables holding the key: {holders}; cassette:\n{text}\n"
            + result.stdout.str(),
            pytrace=False,
        )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_it[[]emu-a[]]*",
            "*refusing to write */cassettes/test_scan/emu-a/test_it.yaml: it holds 1 string(s) that look like "
            "a live API key (sk-proj-Zq…) at line(s) * of the cassette. The previous cassette, if any, is "
            "unchanged.*modelmigrate_secret_env*",
        ]
    )
    assert not (project.path / "cassettes").exists() or leftovers(project.path / "cassettes") == []
    assert not cassette(project, "test_scan", "emu-a", "test_it").exists()
    project.makeini("[pytest]\nmodelmigrate_secret_env = LLM_CREDS\n")
    project.runpytest("--models=emu-a", "--record-mode=once").assert_outcomes(passed=1)
    text = cassette(project, "test_scan", "emu-a", "test_it").read_text()
    assert OPENAI_KEY not in text and "x-llm-creds:\n      - <redacted>" in text


# -- replay is offline ---------------------------------------------------------------------------

SDK_TESTS = """
import app

def test_openai_sync(model):
    assert app.chat(model, "a")

def test_openai_stream(model):
    assert app.chat_stream(model, "b")

def test_openai_async(model):
    assert app.chat_async(model, "c")

def test_anthropic_sync(model):
    assert app.claude(model, "d")

def test_anthropic_stream(model):
    assert app.claude_stream(model, "e")

def test_anthropic_async(model):
    assert app.claude_async(model, "f")
"""

SOCKET_GUARD = """
import socket

def _refuse(self, *args, **kwargs):
    raise OSError("socket guard: replay tried to connect to %r" % (args,))

def pytest_configure(config):
    config._saved_connect = (socket.socket.connect, socket.socket.connect_ex)
    socket.socket.connect = _refuse
    socket.socket.connect_ex = _refuse

def pytest_unconfigure(config):
    socket.socket.connect, socket.socket.connect_ex = config._saved_connect
"""


def test_replay_opens_no_socket(project: pytest.Pytester, emulator: Emulator) -> None:
    project.makepyfile(test_sdk=SDK_TESTS)
    recorded = project.runpytest("--models=emu-a", "--record-mode=once")
    recorded.assert_outcomes(passed=6)
    # this test failed about 1 run in 10 under a loaded -n 2 (a passing test's cassette missing on
    # replay), never reproduced since: if it happens, say which cassette and what recording printed
    folder = project.path / "cassettes" / "test_sdk" / "emu-a"
    written = sorted(p.name for p in folder.glob("*.yaml")) if folder.is_dir() else []
    assert len(written) == 6, f"cassettes written: {written}; emulator served {emulator.requests}\n" + (
        recorded.stdout.str()
    )
    served = len(emulator.requests)
    emulator.stop()
    project.runpytest("--models=emu-a", "--block-network").assert_outcomes(passed=6)
    project.makeconftest(SOCKET_GUARD)
    guarded = project.runpytest("--models=emu-a", "--migration-json=deep/new/folder/run.json")
    guarded.assert_outcomes(passed=6)
    assert (project.path / "deep" / "new" / "folder" / "run.json").is_file()  # missing folders are made
    # the guard works: a test that does connect fails under it
    project.makepyfile(
        test_net="import socket\ndef test_net():\n    socket.create_connection(('127.0.0.1', 9))\n"
    )
    project.runpytest("test_net.py").stdout.fnmatch_lines(["*socket guard: replay tried to connect*"])
    assert len(emulator.requests) == served


# -- reports -------------------------------------------------------------------------------------


@pytest.mark.parametrize("writer", [write_json, write_markdown, write_html])
def test_reports_are_written_through_a_temp_file_and_rename(
    writer: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_modelmigrate.analysis import analyse

    run = analyse([], models=parse_models("a", source="--models"), incumbent="a", policy=None).to_dict()
    target = tmp_path / "new" / "report.out"
    writer(target, run)  # type: ignore[operator]
    good = target.read_bytes()

    def crash(src: object, dst: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        writer(target, {**run, "record_mode": "once"})  # type: ignore[operator]
    assert target.read_bytes() == good
    assert [p.name for p in target.parent.iterdir()] == ["report.out"]


def test_report_path_under_a_file_is_refused_clearly(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_it(model): pass")
    (pytester.path / "afile").write_text("not a folder")
    result = pytester.runpytest(
        "--models=a", "--migration-json=afile/run.json", "--migration-html=ok/run.html"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --migration-json: cannot write */afile/run.json: */afile is a file, not a folder"]
    )
    assert (pytester.path / "afile").read_text() == "not a folder"
