"""Wrapper libraries end to end: LangChain, litellm, instructor and pydantic-ai record against the
emulator, replay offline with ``--block-network``, and the checks read their results and the
test's recorded calls. Each wrapper is skipped when it is not installed (``pip install -e
.[test,wrappers,litellm]``; instructor in an environment of its own, ``.[test,instructor]``: it
pins jiter<0.15, which the openai releases pydantic-ai needs do not allow), so the core suite
stays light."""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import free_port

from pytest_modelmigrate.emulator import Emulator

# litellm fetches its cost map from the internet when imported unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def _try_import(name: str) -> ModuleType | None:
    # Imported once here: pytester's in-process runs drop modules first imported inside them,
    # and these take seconds to import.
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


for _name in ("langchain_openai", "langchain_anthropic", "litellm", "pydantic_ai"):
    _try_import(_name)
_instructor = _try_import("instructor")
if _instructor is not None:  # its providers register their modes when first used: do it outside pytester
    import openai

    _instructor.from_openai(openai.OpenAI(api_key="x", base_url="http://127.0.0.1:9/v1"))

MODELS = "--models=emu-old,emu-new"

RULES: dict[str, Any] = {
    "rules": [
        {"match": "19 degrees", "json": {"city": "Lyon", "country": "France"}},
        {"match": "18 degrees", "reply": "It is 18 degrees and sunny in Paris."},
        {"match": "(?i)weather in Lyon", "tool_call": {"name": "get_weather", "arguments": {"city": "Lyon"}}},
        {
            "match": "(?i)weather in Paris",
            "tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}},
        },
        {"match": "(?i)summar", "reply": "- one\n- two\n- three"},
        {"match": "fix the errors", "json": {"city": "Paris", "country": "France"}},
        {"match": "(?i)capital of France", "json": {"city": "Paris"}},
        {"match": "(?i)where is the Louvre", "json": {"city": "Paris", "country": "France"}},
        {"match": "(?i)please refuse", "refuse": "I can't help with that."},
    ]
}
SCRIPT: dict[str, Any] = {"models": {"emu-old": RULES, "emu-new": RULES}}

COMMON = """
import json, os, pathlib
import pytest
from pydantic import BaseModel

from pytest_modelmigrate import checks as plain

URL = os.environ["EMU_URL"]
OUT = pathlib.Path(os.environ["OUT_DIR"])


def save(request, value):
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / (request.node.name + ".json")).write_text(json.dumps(value))


class City(BaseModel):
    city: str
    country: str
"""


def _record_then_replay(
    pytester: pytest.Pytester,
    start_emulator: Callable[..., Emulator],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tests: str,
    passed: int,
) -> None:
    emulator = start_emulator(SCRIPT, test_wrapped=COMMON + tests)
    monkeypatch.setenv("OUT_DIR", str(tmp_path / "recorded"))
    recorded = pytester.runpytest(MODELS, "--record-mode=once", "-p", "no:randomly")
    recorded.assert_outcomes(passed=passed)
    assert emulator.requests, "nothing reached the emulator"
    emulator.stop()  # from here on nothing answers on that port

    monkeypatch.setenv("OUT_DIR", str(tmp_path / "replayed"))
    replayed = pytester.runpytest(MODELS, "--block-network", "--migration-json=rep.json", "-p", "no:randomly")
    replayed.assert_outcomes(passed=passed)
    recorded_out = {p.name: p.read_text() for p in sorted((tmp_path / "recorded").glob("*.json"))}
    replayed_out = {p.name: p.read_text() for p in sorted((tmp_path / "replayed").glob("*.json"))}
    assert recorded_out == replayed_out
    assert len(replayed_out) == passed
    run = json.loads((pytester.path / "rep.json").read_text())
    checks = [c for o in run["outcomes"] for c in o.get("checks", [])]
    assert checks, "the checks ran"
    assert all(c["passed"] for c in checks), [c for c in checks if not c["passed"]]


LANGCHAIN_OPENAI = """
from langchain_core.messages import ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI


def llm(model, **kw):
    return ChatOpenAI(model=model, base_url=URL + "/v1", api_key="x", max_retries=0, **kw)


@tool
def get_weather(city: str) -> str:
    "The weather of a city."
    return "18 degrees and sunny"


def test_invoke(model, checks, request):
    message = llm(model).invoke("Summarize the ticket")
    checks.bullets(message, exactly=3)
    checks.no_refusal(message)
    checks.model_echo(message)          # the recorded call: the requested model is known
    checks.finish_reason(message)
    assert plain.no_refusal(message)    # the plain function reads an AIMessage too
    assert plain.model_echo(message, model)
    assert checks.call().text == message.content
    save(request, message.content)


def test_stream_with_usage(model, checks, request):
    chunks = list(llm(model, stream_usage=True).stream("Summarize the ticket"))
    message = sum(chunks[1:], chunks[0])
    checks.bullets(message, exactly=3)
    checks.finish_reason(message)
    assert message.usage_metadata["output_tokens"] > 0
    assert checks.call().streaming
    assert checks.call().usage.output_tokens == message.usage_metadata["output_tokens"]
    save(request, message.content)


def test_tool_loop(model, checks, request):
    bound = llm(model).bind_tools([get_weather])
    messages = [("user", "What is the weather in Paris?")]
    first = bound.invoke(messages)
    checks.tool_called(first, "get_weather")
    result = get_weather.invoke(first.tool_calls[0]["args"])
    final = bound.invoke(messages + [first, ToolMessage(result, tool_call_id=first.tool_calls[0]["id"])])
    checks.contains(final, "18 degrees")
    checks.tool_called(checks.call(tool="get_weather"), "get_weather")
    checks.contains(checks.call(final=True), "18 degrees")
    assert len(checks.calls()) == 2
    assert checks.calls(final=True) == [checks.call()]
    save(request, final.content)
"""


def test_langchain_openai(
    pytester: pytest.Pytester,
    start_emulator: Callable[..., Emulator],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    pytest.importorskip("langchain_openai")
    _record_then_replay(pytester, start_emulator, monkeypatch, tmp_path, LANGCHAIN_OPENAI, passed=6)


LANGCHAIN_ANTHROPIC = """
from langchain_anthropic import ChatAnthropic


def test_invoke(model, checks, request):
    message = ChatAnthropic(model=model, base_url=URL, api_key="x", max_retries=0).invoke("Summarize the ticket")
    checks.bullets(message, exactly=3)
    checks.finish_reason(message)
    checks.model_echo(message)
    assert checks.call().endpoint == "messages"
    assert plain.finish_reason(message)
    save(request, message.content)
"""


def test_langchain_anthropic(
    pytester: pytest.Pytester,
    start_emulator: Callable[..., Emulator],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    pytest.importorskip("langchain_anthropic")
    _record_then_replay(pytester, start_emulator, monkeypatch, tmp_path, LANGCHAIN_ANTHROPIC, passed=2)


LITELLM = """
import litellm


def complete(model, prompt, **kw):
    return litellm.completion(
        model="openai/" + model, api_base=URL + "/v1", api_key="x",
        messages=[{"role": "user", "content": prompt}], **kw,
    )


def test_completion(model, checks, request):
    response = complete(model, "Summarize the ticket")
    checks.bullets(response, exactly=3)
    checks.no_refusal(response)
    checks.model_echo(response)
    checks.finish_reason(response)
    assert plain.model_echo(response, model)
    save(request, response.choices[0].message.content)


def test_stream(model, checks, request):
    chunks = list(complete(model, "Summarize the ticket", stream=True, stream_options={"include_usage": True}))
    response = litellm.stream_chunk_builder(chunks)
    checks.bullets(response, exactly=3)
    checks.bullets(exactly=3)           # the recorded (streamed) call
    assert checks.call().streaming
    save(request, response.choices[0].message.content)
"""


def test_litellm(
    pytester: pytest.Pytester,
    start_emulator: Callable[..., Emulator],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    pytest.importorskip("litellm")
    _record_then_replay(pytester, start_emulator, monkeypatch, tmp_path, LITELLM, passed=4)


INSTRUCTOR = """
import instructor
import openai


def client():
    return instructor.from_openai(openai.OpenAI(base_url=URL + "/v1", api_key="x", max_retries=0))


def test_extract(model, checks, request):
    city = client().chat.completions.create(
        model=model, response_model=City, messages=[{"role": "user", "content": "Where is the Louvre?"}]
    )
    assert city.model_dump() == {"city": "Paris", "country": "France"}
    checks.json_schema(city, City)          # the returned model, as JSON
    checks.tool_called(city, "City")        # its raw completion: the recorded call, schema checked
    checks.model_echo(city)
    assert len(checks.calls()) == 1
    save(request, city.model_dump())


def test_retry_reads_the_final_attempt(model, checks, request):
    city, completion = client().chat.completions.create_with_completion(
        model=model, response_model=City, max_retries=2,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
    )
    assert city.country == "France"
    first, last = checks.calls()
    assert not plain.tool_called(first, "City")   # the first attempt missed 'country'
    checks.tool_called(completion, "City")        # the raw completion is the final attempt
    checks.tool_called(city, "City")
    checks.json_schema(checks.call(final=True), City)
    assert checks.call(final=True) == last
    save(request, city.model_dump())
"""


def test_instructor(
    pytester: pytest.Pytester,
    start_emulator: Callable[..., Emulator],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    pytest.importorskip("instructor")
    _record_then_replay(pytester, start_emulator, monkeypatch, tmp_path, INSTRUCTOR, passed=4)


PYDANTIC_AI = """
from pydantic_ai import Agent
from pydantic_ai.exceptions import UnexpectedModelBehavior
from pydantic_ai.providers.openai import OpenAIProvider

try:
    from pydantic_ai.models.openai import OpenAIChatModel
except ImportError:  # older pydantic-ai
    from pydantic_ai.models.openai import OpenAIModel as OpenAIChatModel


def agent_model(model):
    return OpenAIChatModel(model, provider=OpenAIProvider(base_url=URL + "/v1", api_key="x"))


def test_text(model, checks, request):
    result = Agent(agent_model(model)).run_sync("Summarize the ticket")
    checks.bullets(result, exactly=3)
    checks.no_refusal(result)
    checks.model_echo(result)
    checks.finish_reason(result)
    save(request, result.output)


def test_tool_loop_with_structured_output(model, checks, request):
    agent = Agent(agent_model(model), output_type=City)

    @agent.tool_plain
    def get_weather(city: str) -> str:
        return "19 degrees and cloudy"

    result = agent.run_sync("What is the weather in Lyon?")
    assert result.output.model_dump() == {"city": "Lyon", "country": "France"}
    checks.json_schema(result, City)                       # the run's output, as JSON
    checks.tool_called(checks.call(tool="get_weather"), "get_weather")
    checks.tool_called(result, "final_result")             # the final response: the output tool
    assert checks.call(final=True) == checks.calls()[-1]
    assert len(checks.calls()) == 2
    save(request, result.output.model_dump())


def test_refusal_is_an_exception(model, checks, request):
    with pytest.raises(UnexpectedModelBehavior):
        Agent(agent_model(model)).run_sync("Please refuse this")
    checks.refuses()                                      # the recorded call holds the refusal
    save(request, checks.call().refusal)
"""


def test_pydantic_ai(
    pytester: pytest.Pytester,
    start_emulator: Callable[..., Emulator],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    pytest.importorskip("pydantic_ai")
    _record_then_replay(pytester, start_emulator, monkeypatch, tmp_path, PYDANTIC_AI, passed=6)


# --- the emulator honours what the wrappers ask for --------------------------------------------


@pytest.fixture
def emu() -> Any:
    with Emulator(SCRIPT, port=free_port(), time_scale=0) as emulator:
        yield emulator


def test_forced_tool_gets_the_json_reply_as_arguments(emu: Emulator) -> None:
    import anthropic
    import openai

    oai = openai.OpenAI(base_url=emu.url + "/v1", api_key="x", max_retries=0)
    tools: Any = [
        {
            "type": "function",
            "function": {"name": "other", "parameters": {"type": "object", "properties": {}}},
        },
        {
            "type": "function",
            "function": {
                "name": "City",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
                    "required": ["city", "country"],
                },
            },
        },
    ]
    messages: Any = [{"role": "user", "content": "Where is the Louvre?"}]
    for choice in ("required", {"type": "function", "function": {"name": "City"}}):
        r = oai.chat.completions.create(model="emu-old", messages=messages, tools=tools, tool_choice=choice)
        call = r.choices[0].message.tool_calls[0]  # type: ignore[index]
        assert call.function.name == "City", choice  # type: ignore[union-attr]
        assert json.loads(call.function.arguments) == {"city": "Paris", "country": "France"}  # type: ignore[union-attr]
        assert r.choices[0].message.content is None
    # a text reply to a forced tool: an instance of its schema, the text in its first string property
    r = oai.chat.completions.create(
        model="emu-old",
        messages=[{"role": "user", "content": "Summarize the ticket"}],
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "City"}},
    )
    args = json.loads(r.choices[0].message.tool_calls[0].function.arguments)  # type: ignore[index,union-attr]
    assert args == {"city": "- one\n- two\n- three", "country": "emulated"}

    claude = anthropic.Anthropic(base_url=emu.url, api_key="x", max_retries=0)
    schema = tools[1]["function"]["parameters"]
    m = claude.messages.create(
        model="emu-old",
        max_tokens=100,
        messages=messages,
        tools=[{"name": "City", "input_schema": schema}],
        tool_choice={"type": "tool", "name": "City"},
    )
    block = m.content[0]
    assert block.type == "tool_use"
    assert block.input == {"city": "Paris", "country": "France"}
    assert m.stop_reason == "tool_use"


def test_json_schema_response_format_makes_a_text_reply_json(emu: Emulator) -> None:
    import openai

    oai = openai.OpenAI(base_url=emu.url + "/v1", api_key="x", max_retries=0)
    fmt: Any = {
        "type": "json_schema",
        "json_schema": {
            "name": "summary",
            "schema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        },
    }
    r = oai.chat.completions.create(
        model="emu-old", messages=[{"role": "user", "content": "Summarize the ticket"}], response_format=fmt
    )
    assert json.loads(r.choices[0].message.content or "") == {"text": "- one\n- two\n- three"}
    # a JSON reply stays as scripted
    r = oai.chat.completions.create(
        model="emu-old", messages=[{"role": "user", "content": "Where is the Louvre?"}], response_format=fmt
    )
    assert json.loads(r.choices[0].message.content or "") == {"city": "Paris", "country": "France"}


def test_openai_tool_messages_are_matched_by_rules(emu: Emulator) -> None:
    import openai

    oai = openai.OpenAI(base_url=emu.url + "/v1", api_key="x", max_retries=0)
    messages: Any = [
        {"role": "user", "content": "What is the weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18 degrees and sunny"},
    ]
    r = oai.chat.completions.create(model="emu-old", messages=messages)
    assert r.choices[0].message.content == "It is 18 degrees and sunny in Paris."
    r2 = oai.responses.create(
        model="emu-old",
        input=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "18 degrees and sunny"},
        ],
    )
    assert r2.output_text == "It is 18 degrees and sunny in Paris."


# --- picking a call, without a wrapper ---------------------------------------------------------

PICK = """
import asyncio
import openai
import pytest


def test_gather(model, checks):
    async def go():
        client = openai.AsyncOpenAI(base_url=URL + "/v1", api_key="x", max_retries=0)
        async def ask(prompt):
            r = await client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}])
            return r
        return await asyncio.gather(ask("Summarize the ticket"), ask("Where is the Louvre?"))
    summary, louvre = asyncio.run(go())
    checks.bullets(checks.call(prompt="Summarize"), exactly=3)
    checks.json_schema(checks.call(prompt="Louvre"), City)
    checks.bullets(summary, exactly=3)
    assert len(checks.calls(endpoint="chat.completions")) == 2
    assert checks.calls(endpoint="messages") == []
    # (by name: pytester's in-process runs may import the plugin's modules twice)
    with pytest.raises(Exception, match="no call at index 0.*0 calls match tool='nope'.*the test's 2 calls") as excinfo:
        checks.call(0, tool="nope")
    assert type(excinfo.value).__name__ == "ChecksConfigError"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / (model + ".json")).write_text(json.dumps([summary.choices[0].message.content, louvre.choices[0].message.content]))
"""


def test_pick_a_call_of_a_gather(
    pytester: pytest.Pytester,
    start_emulator: Callable[..., Emulator],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    _record_then_replay(pytester, start_emulator, monkeypatch, tmp_path, PICK, passed=2)
