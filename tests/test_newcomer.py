"""What a new user hits on the first day (issue #17, "Newcomer friction"), end to end.

TOML arrays in pyproject for list settings, the tool name of ``tool_called`` given positionally,
schema validation of ``tool_called(response, name)``, dataset messages, and the judge's client
following the environment of the test that uses it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from conftest import free_port

from pytest_modelmigrate.checks.boundary import tool_called
from pytest_modelmigrate.checks.judge import Judge
from pytest_modelmigrate.checks.result import ChecksConfigError
from pytest_modelmigrate.datasets import DatasetError, load_dataset
from pytest_modelmigrate.emulator import Emulator
from pytest_modelmigrate.providers.parse import parse_interaction
from pytest_modelmigrate.settings import resolve

MODEL_IDS = """
def test_ids(model):
    pass
"""


def _collected_ids(result: pytest.RunResult) -> list[str]:
    return sorted(line.split("::")[-1] for line in result.outlines if "::test_ids[" in line)


# ----------------------------------------------------------------------------------------------
# List settings: TOML arrays, lines and comma lists


@pytest.mark.parametrize(
    "value",
    [
        '["old=gpt-4o-2024-08-06", "new=gpt-5"]',
        '"old=gpt-4o-2024-08-06,new=gpt-5"',
        '"""\nold=gpt-4o-2024-08-06\nnew=gpt-5\n"""',
    ],
    ids=["array", "comma-string", "multi-line-string"],
)
def test_models_in_pyproject_ini_options(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyprojecttoml(f"[tool.pytest.ini_options]\nmodelmigrate_models = {value}\n")
    pytester.makepyfile(MODEL_IDS)
    result = pytester.runpytest("--collect-only", "-q", "-W", "error::pytest.PytestRemovedIn10Warning")
    assert result.ret == 0, result.stdout.str()
    assert _collected_ids(result) == ["test_ids[new]", "test_ids[old]"]
    assert "PytestRemovedIn10Warning" not in result.stdout.str() + result.stderr.str()


def test_models_in_pytest_ini_lines_or_commas(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmodelmigrate_models =\n    old=gpt-4o-2024-08-06\n    new=gpt-5, third=o3\n")
    pytester.makepyfile(MODEL_IDS)
    result = pytester.runpytest("--collect-only", "-q")
    assert _collected_ids(result) == ["test_ids[new]", "test_ids[old]", "test_ids[third]"]


def test_models_in_native_toml(pytester: pytest.Pytester) -> None:
    """pytest 9's ``[tool.pytest]`` table: an array works; a string is a usage error saying so."""
    pytester.makepyprojecttoml(
        '[tool.pytest]\nmodelmigrate_models = ["old=gpt-4o-2024-08-06", "new=gpt-5"]\n'
    )
    pytester.makepyfile(MODEL_IDS)
    result = pytester.runpytest("--collect-only", "-q")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    assert _collected_ids(result) == ["test_ids[new]", "test_ids[old]"]

    pytester.makepyprojecttoml('[tool.pytest]\nmodelmigrate_models = "old=gpt-4o-2024-08-06,new=gpt-5"\n')
    result = pytester.runpytest("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    # pytest 9.0 leaves the type to the plugin ("write it as a TOML array"); 9.2 checks it itself
    # ("config option 'modelmigrate_models' expects a list for type 'linelist'"): both name it
    result.stderr.fnmatch_lines(["*modelmigrate_models*expects a list*"])


def test_every_list_setting_takes_an_array_lines_or_a_comma_list(tmp_path: Path) -> None:
    def settings(ini_values: dict[str, Any]) -> Any:
        return resolve(
            lambda key: None,
            lambda name: ini_values.get(name, [] if name in LISTS else ""),
            rootpath=tmp_path,
            record_mode="none",
        )

    from pytest_modelmigrate.settings import SETTINGS

    LISTS = {s.ini for s in SETTINGS if s.ini_type == "linelist"}
    assert "modelmigrate_models" in LISTS
    for given in (["MY_TOKEN", "OTHER_SECRET"], ["MY_TOKEN, OTHER_SECRET"], ["MY_TOKEN", " OTHER_SECRET "]):
        got = settings(
            {
                "modelmigrate_secret_env": given,
                "modelmigrate_secret_headers": [", ".join(h.lower() for h in given)],
                "modelmigrate_provider_patterns": ["llama*=openai, mistral*=openai"],
                "modelmigrate_match_ignore": ["body:user, query:trace"],
            }
        )
        assert got.secret_env == ("MY_TOKEN", "OTHER_SECRET")
        assert got.secret_headers == ("my_token", "other_secret")
        assert got.provider_patterns == (("llama*", "openai"), ("mistral*", "openai"))
        assert "trace" in got.match_ignore.query
        assert ("user",) in got.match_ignore.body


# ----------------------------------------------------------------------------------------------
# tool_called: the name positionally, one clean error, schema validation of an SDK response

TICKET_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "file_ticket",
            "parameters": {
                "type": "object",
                "properties": {"priority": {"type": "string", "enum": ["low", "normal", "high"]}},
                "required": ["priority"],
            },
        },
    }
]
TICKET_SCRIPT = {
    "models": {
        "emu-old": {
            "rules": [
                {
                    "match": "(?i)ticket",
                    "tool_call": {"name": "file_ticket", "arguments": {"priority": "urgent"}},
                }
            ]
        }
    }
}


@pytest.fixture
def ticket_call() -> Any:
    """A real SDK response from the emulator, and the recorded call it was read from."""
    with Emulator(TICKET_SCRIPT, port=free_port(), time_scale=0) as emulator:
        client = openai.OpenAI(base_url=emulator.url + "/v1", api_key="x", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="emu-old",
            messages=[{"role": "user", "content": "file a ticket"}],
            tools=TICKET_TOOLS,  # type: ignore[arg-type]
        )
        response = raw.parse()
        request = {
            "method": "POST",
            "uri": str(raw.http_request.url),
            "body": raw.http_request.content.decode(),
        }
        recorded = parse_interaction(
            request,
            {
                "status": {"code": raw.status_code, "message": "OK"},
                "headers": {"content-type": ["application/json"]},
                "body": {"string": raw.http_response.text},
            },
        )
    return response, recorded


def test_tool_called_on_an_sdk_response_validates_against_the_recorded_schema(ticket_call: Any) -> None:
    response, recorded = ticket_call
    result = tool_called(response, "file_ticket", recorded=[recorded])
    assert not result
    assert result.details["schema"] == "request"
    assert "$.priority: 'urgent' is not one of ['low', 'normal', 'high']" in result.message
    # the recorded call (what the no-output form reads) says the same
    assert tool_called(recorded, "file_ticket").message == result.message
    # a recorded call of another response is not used for its schema
    other = parse_interaction(
        {"method": "POST", "uri": "http://x/v1/chat/completions", "body": '{"tools": []}'},
        {
            "status": {"code": 200},
            "body": {"string": '{"object": "chat.completion", "choices": [{"index": 0, "message": {}}]}'},
        },
    )
    assert tool_called(response, "file_ticket", recorded=[other]).details["schema"] == "none"


def test_tool_called_with_only_the_name_says_how_to_call_it_once() -> None:
    with pytest.raises(ChecksConfigError) as info:
        tool_called("file_ticket")
    message = str(info.value)
    assert "tool_called(response, 'file_ticket')" in message
    assert "tool_called(tool='file_ticket')" in message
    assert info.value.__cause__ is None and info.value.__context__ is None


CHECKS_TESTS = """
import os
import openai

TOOLS = {tools!r}

def create(model):
    client = openai.OpenAI(base_url=os.environ["EMU_URL"] + "/v1", api_key="x", max_retries=0)
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "file a ticket"}], tools=TOOLS
    )

def test_positional(model, checks):
    checks.tool_called(create(model), "file_ticket")

def test_name_only(model, checks):
    create(model)
    checks.tool_called("file_ticket")
""".replace("{tools!r}", repr(TICKET_TOOLS))


def test_checks_fixture_tool_called_forms(
    pytester: pytest.Pytester, start_emulator: Callable[..., Emulator]
) -> None:
    start_emulator(TICKET_SCRIPT, test_ticket=CHECKS_TESTS)
    result = pytester.runpytest("--models=emu-old", "--record-mode=once", "-p", "no:randomly")
    out = result.stdout.str()
    # once per test in its failure; the short summary may quote it again, as wide as the terminal
    assert out.count("'urgent' is not one of ['low', 'normal', 'high']") >= 2, out
    for test in ("test_positional", "test_name_only"):
        section = out.split(f"_ {test}[emu-old] _", 1)[1].split("\n_", 1)[0]
        assert "'urgent' is not one of ['low', 'normal', 'high']" in section, out
    assert "give the tool name" not in out
    assert "The above exception was the direct cause" not in out


# ----------------------------------------------------------------------------------------------
# Datasets


def test_an_absent_label_field_names_the_field_not_the_labels(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text(
        '{"id": "a", "text": "refund me", "queue": "billing"}\n{"id": "b", "text": "crash", "queue": "tech"}\n'
    )
    with pytest.raises(DatasetError) as info:
        load_dataset(path, labels=["billing", "tech"])
    message = str(info.value)
    assert "no example has a 'label' field (the examples' fields: id, text, queue)" in message
    assert "label_field='queue'" in message
    assert "correct the label" not in message
    assert [e.label for e in load_dataset(path, labels=["billing", "tech"], label_field="queue")] == [
        "billing",
        "tech",
    ]


def test_prediction_without_a_dataset_marker_names_prediction(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_it(model, prediction):\n    prediction.label('x')\n")
    result = pytester.runpytest("--models=m1")
    result.stdout.fnmatch_lines(["*uses the `prediction` fixture without @pytest.mark.dataset*"])


# ----------------------------------------------------------------------------------------------
# The judge's client follows the environment of the test using it


def _judge_script(verdict: str) -> dict[str, Any]:
    return {"models": {"judge-model": {"rules": [{"match": ".*", "reply": verdict}]}}}


def test_judge_client_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_modelmigrate.prompting import PromptClient

    built: list[str | None] = []

    def factory(model: str, provider: str | None) -> PromptClient:  # as the plugin's fixture builds it
        built.append(os.environ.get("OPENAI_BASE_URL"))
        return PromptClient(model, provider)

    judge = Judge("judge-model", "openai", client_factory=factory)
    first = Emulator(_judge_script('{"pass": true, "reason": "first"}'), port=free_port(), time_scale=0)
    second = Emulator(_judge_script('{"pass": false, "reason": "second"}'), port=free_port(), time_scale=0)
    with first, second:
        urls = [first.url + "/v1", second.url + "/v1"]
        monkeypatch.setenv("OPENAI_API_KEY", "x")
        monkeypatch.setenv("OPENAI_BASE_URL", urls[0])
        assert judge.evaluate("out", "rubric").reason == "first"
        assert judge.evaluate("out", "rubric").reason == "first"
        monkeypatch.setenv("OPENAI_BASE_URL", urls[1])  # the next test's environment
        assert judge.evaluate("out", "rubric").reason == "second"
    assert built == urls  # rebuilt only when it changed


def test_a_judge_given_a_client_keeps_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_modelmigrate.prompting import PromptClient

    client = PromptClient("judge-model", "openai", base_url="http://127.0.0.1:9/v1", api_key="x")
    judge = Judge("judge-model", client=client)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://elsewhere/v1")
    assert judge.client is client
