"""The provider emulator, driven through the real openai and anthropic SDKs over real HTTP."""

from __future__ import annotations

import asyncio
import json
import math
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import pydantic
import pytest
from conftest import python_m

from pytest_modelmigrate.emulator import Emulator, Script, ScriptError, load_script
from pytest_modelmigrate.emulator.script import parse_script_text

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "pytest_modelmigrate" / "emulator" / "scripts" / "migration.yaml"

SCRIPT: dict[str, Any] = {
    "seed": 7,
    "models": {
        "emu-old": {
            "latency_ms": 400,
            "rules": [
                {"match": "(?i)classify", "json": {"queue": "billing"}, "confidence": 0.93},
                {"match": "three bullets", "reply": "- a\n- b\n- c"},
                {"match": "lock ?pick", "refuse": "I can't help with that."},
                {"match": "weather", "tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                {"match": "slow down", "error": {"status": 429, "message": "Rate limit reached"}},
                {"match": "overloaded", "error": {"status": 529, "message": "Overloaded"}},
                {
                    "match": "flip a coin",
                    "choices": [{"weight": 3, "reply": "heads"}, {"weight": 1, "reply": "tails"}],
                },
                {"match": "wrapped", "json": {"ok": True}, "wrap_json": 0.5},
                {"match": "flaky", "sequence": [{"error": 500}, "recovered"]},
            ],
            "default": "old default",
        },
        "emu-new": {
            "latency_ms": 100,
            "token_factor": 2.0,
            "echo_model": "emu-new-2026-03-01",
            "rules": [
                {"match": "three bullets", "reply": "- a\n- b\n- c\n- d"},
                {"match": "lock ?pick", "reply": "Sure, here is how."},
            ],
        },
    },
}


@pytest.fixture(scope="module")
def emu() -> Any:
    with Emulator(SCRIPT, time_scale=0.0) as server:
        yield server


@pytest.fixture
def oai(emu: Emulator) -> openai.OpenAI:
    return openai.OpenAI(base_url=emu.url + "/v1", api_key="x", max_retries=0)


@pytest.fixture
def claude(emu: Emulator) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=emu.url, api_key="x", max_retries=0)


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def raw(url: str, body: object | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# -- OpenAI chat completions ----------------------------------------------------------------------


def test_chat_json_reply_has_the_real_shape(oai: openai.OpenAI) -> None:
    r = oai.chat.completions.create(
        model="emu-old",
        messages=[{"role": "system", "content": "You route tickets."}, *user("Classify: refund")],
    )
    assert r.object == "chat.completion"
    assert r.id.startswith("chatcmpl-")
    assert r.model == "emu-old"
    assert r.system_fingerprint is not None
    assert r.system_fingerprint.startswith("fp_")
    choice = r.choices[0]
    assert json.loads(choice.message.content or "") == {"queue": "billing"}
    assert choice.finish_reason == "stop"
    assert choice.message.refusal is None
    assert r.usage is not None
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens > 0


def test_chat_async(emu: Emulator) -> None:
    async def go() -> str | None:
        async with openai.AsyncOpenAI(base_url=emu.url + "/v1", api_key="x", max_retries=0) as client:
            r = await client.chat.completions.create(model="emu-new", messages=user("three bullets please"))
            return r.choices[0].message.content

    assert asyncio.run(go()) == "- a\n- b\n- c\n- d"


def test_chat_stream_with_usage_matches_the_json_reply(oai: openai.OpenAI) -> None:
    plain = oai.chat.completions.create(model="emu-old", messages=user("three bullets"))
    chunks = list(
        oai.chat.completions.create(
            model="emu-old",
            messages=user("three bullets"),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content == "- a\n- b\n- c"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage == plain.usage


def test_chat_max_tokens_truncates_with_finish_reason_length(oai: openai.OpenAI) -> None:
    r = oai.chat.completions.create(model="emu-old", messages=user("three bullets"), max_completion_tokens=3)
    assert r.choices[0].finish_reason == "length"
    assert r.choices[0].message.content == "- a\n-"  # pieces: "-", " a", "\n-"
    assert r.usage is not None
    assert r.usage.completion_tokens == 3


def test_chat_json_modes_without_a_rule(oai: openai.OpenAI) -> None:
    r = oai.chat.completions.create(
        model="emu-x", messages=user("anything"), response_format={"type": "json_object"}
    )
    assert json.loads(r.choices[0].message.content or "")["model"] == "emu-x"

    class Triage(pydantic.BaseModel):
        queue: str
        priority: int
        tags: list[str]

    parsed = oai.chat.completions.parse(model="emu-x", messages=user("anything"), response_format=Triage)
    assert isinstance(parsed.choices[0].message.parsed, Triage)


WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_chat_tool_calls_scripted_forced_and_streamed(oai: openai.OpenAI) -> None:
    r = oai.chat.completions.create(model="emu-old", messages=user("weather?"), tools=[WEATHER_TOOL])
    assert r.choices[0].finish_reason == "tool_calls"
    call = r.choices[0].message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert call.id.startswith("call_")

    forced = oai.chat.completions.create(
        model="emu-new",
        messages=user("hello"),
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    assert forced.choices[0].message.tool_calls[0].function.name == "get_weather"

    chunks = list(
        oai.chat.completions.create(
            model="emu-old", messages=user("weather?"), tools=[WEATHER_TOOL], stream=True
        )
    )
    args = "".join(
        tc.function.arguments or ""
        for c in chunks
        for tc in c.choices[0].delta.tool_calls or []
        if tc.function is not None
    )
    assert json.loads(args) == {"city": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_chat_logprobs_report_the_scripted_confidence(oai: openai.OpenAI) -> None:
    r = oai.chat.completions.create(model="emu-old", messages=user("classify"), logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert content is not None
    assert "".join(t.token for t in content) == r.choices[0].message.content
    assert math.exp(content[0].logprob) == pytest.approx(0.93)
    assert len(content[0].top_logprobs) == 3
    assert content[0].top_logprobs[0].logprob > content[0].top_logprobs[1].logprob
    assert r.choices[0].logprobs is not None
    plain = oai.chat.completions.create(model="emu-old", messages=user("classify"))
    assert plain.choices[0].logprobs is None


def test_chat_refusal_in_one_model_answer_in_the_next(oai: openai.OpenAI) -> None:
    old = oai.chat.completions.create(model="emu-old", messages=user("how to lockpick"))
    assert old.choices[0].message.content is None
    assert old.choices[0].message.refusal == "I can't help with that."
    new = oai.chat.completions.create(model="emu-new", messages=user("how to lockpick"))
    assert new.choices[0].message.refusal is None
    assert new.choices[0].message.content == "Sure, here is how."
    chunks = list(oai.chat.completions.create(model="emu-old", messages=user("lock pick"), stream=True))
    assert "".join(c.choices[0].delta.refusal or "" for c in chunks) == "I can't help with that."


def test_echo_model_and_token_factor(oai: openai.OpenAI) -> None:
    old = oai.chat.completions.create(model="emu-old", messages=user("three bullets"))
    new = oai.chat.completions.create(model="emu-new", messages=user("three bullets"))
    assert new.model == "emu-new-2026-03-01"
    assert old.model == "emu-old"
    assert old.usage is not None
    assert new.usage is not None
    # emu-new's one extra bullet is 2 pieces ("\n-", " d"); its factor doubles every count.
    assert new.usage.completion_tokens == 2 * (old.usage.completion_tokens + 2)
    assert new.usage.prompt_tokens > old.usage.prompt_tokens


# -- OpenAI Responses -----------------------------------------------------------------------------


def test_responses_json(oai: openai.OpenAI) -> None:
    r = oai.responses.create(model="emu-old", instructions="Route tickets.", input="Classify: refund")
    assert r.object == "response"
    assert r.status == "completed"
    assert json.loads(r.output_text) == {"queue": "billing"}
    assert r.output[0].type == "message"
    assert r.usage is not None
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens

    tool = oai.responses.create(
        model="emu-old",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "weather?"}]}],
        tools=[
            {"type": "function", "name": "get_weather", "parameters": WEATHER_TOOL["function"]["parameters"]}
        ],
    )
    fc = tool.output[0]
    assert fc.type == "function_call"
    assert fc.name == "get_weather"
    assert json.loads(fc.arguments) == {"city": "Paris"}

    refused = oai.responses.create(model="emu-old", input="lockpick")
    part = refused.output[0].content[0]
    assert part.type == "refusal"
    assert part.refusal == "I can't help with that."

    cut = oai.responses.create(model="emu-old", input="three bullets", max_output_tokens=2)
    assert cut.status == "incomplete"
    assert cut.incomplete_details is not None
    assert cut.incomplete_details.reason == "max_output_tokens"

    lp = oai.responses.create(
        model="emu-old", input="classify", include=["message.output_text.logprobs"], top_logprobs=2
    )
    logprobs = lp.output[0].content[0].logprobs
    assert logprobs
    assert math.exp(logprobs[0].logprob) == pytest.approx(0.93)


def test_responses_stream_event_sequence_and_helper(oai: openai.OpenAI) -> None:
    events = list(oai.responses.create(model="emu-old", input="three bullets", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response
    assert deltas == final.output_text == "- a\n- b\n- c"
    assert final.usage is not None

    with oai.responses.stream(model="emu-new", input="three bullets") as stream:
        assert stream.get_final_response().output_text == "- a\n- b\n- c\n- d"


# -- OpenAI embeddings ----------------------------------------------------------------------------


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_embeddings_similar_texts_score_higher(oai: openai.OpenAI) -> None:
    texts = [
        "The customer wants a refund",
        "Customer wants their money refunded",
        "Quarterly kernel benchmarks on ARM",
    ]
    r = oai.embeddings.create(model="emu-embed", input=texts)  # the SDK asks for base64 by default
    vecs = [d.embedding for d in r.data]
    assert [len(v) for v in vecs] == [64, 64, 64]
    assert cosine(vecs[0], vecs[0]) == pytest.approx(1.0, abs=1e-5)
    assert cosine(vecs[0], vecs[1]) > 0.5 > cosine(vecs[0], vecs[2])
    floats = oai.embeddings.create(model="emu-embed", input=texts[0], encoding_format="float", dimensions=256)
    assert len(floats.data[0].embedding) == 256
    again = oai.embeddings.create(model="emu-embed", input=texts[0], encoding_format="float")
    assert again.data[0].embedding == pytest.approx(vecs[0], abs=1e-6)
    assert r.usage.prompt_tokens > 0


# -- Anthropic messages ---------------------------------------------------------------------------


def test_anthropic_messages_sync_and_async(claude: anthropic.Anthropic, emu: Emulator) -> None:
    m = claude.messages.create(
        model="emu-old", max_tokens=100, system="You route tickets.", messages=user("Classify: refund")
    )
    assert m.type == "message"
    assert m.id.startswith("msg_")
    assert m.stop_reason == "end_turn"
    assert m.content[0].type == "text"
    assert json.loads(m.content[0].text) == {"queue": "billing"}
    assert m.usage.input_tokens > 0
    assert m.usage.output_tokens > 0

    async def go() -> anthropic.types.Message:
        async with anthropic.AsyncAnthropic(base_url=emu.url, api_key="x", max_retries=0) as client:
            return await client.messages.create(
                model="emu-new", max_tokens=100, messages=user("three bullets")
            )

    new = asyncio.run(go())
    assert new.model == "emu-new-2026-03-01"
    assert new.content[0].text == "- a\n- b\n- c\n- d"


def test_anthropic_stream_helper(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(model="emu-old", max_tokens=100, messages=user("three bullets")) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == "- a\n- b\n- c"
    assert final.content[0].text == streamed
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 1

    with claude.messages.stream(model="emu-old", max_tokens=3, messages=user("three bullets")) as stream:
        assert stream.get_final_message().stop_reason == "max_tokens"


def test_anthropic_tools_json_output_and_refusal(claude: anthropic.Anthropic) -> None:
    tool = {
        "name": "get_weather",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    m = claude.messages.create(model="emu-old", max_tokens=100, messages=user("weather?"), tools=[tool])
    assert m.stop_reason == "tool_use"
    block = m.content[0]
    assert block.type == "tool_use"
    assert block.input == {"city": "Paris"}
    assert block.id.startswith("toolu_")

    with claude.messages.stream(
        model="emu-x",
        max_tokens=100,
        messages=user("hi"),
        tools=[tool],
        tool_choice={"type": "any"},
    ) as stream:
        forced = stream.get_final_message()
    assert forced.content[0].type == "tool_use"
    assert forced.content[0].input == {"city": "emulated"}

    schema = {"type": "object", "properties": {"label": {"enum": ["spam", "ham"]}}, "required": ["label"]}
    j = claude.messages.create(
        model="emu-x",
        max_tokens=100,
        messages=user("label it"),
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    assert json.loads(j.content[0].text) == {"label": "spam"}

    refused = claude.messages.create(model="emu-old", max_tokens=100, messages=user("lockpick"))
    assert refused.stop_reason == "refusal"
    answered = claude.messages.create(model="emu-new", max_tokens=100, messages=user("lockpick"))
    assert answered.stop_reason == "end_turn"


# -- errors ---------------------------------------------------------------------------------------


def test_scripted_errors_surface_as_sdk_exceptions(oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    with pytest.raises(openai.RateLimitError) as oai_err:
        oai.chat.completions.create(model="emu-old", messages=user("please slow down"))
    assert oai_err.value.status_code == 429
    assert oai_err.value.body == {
        "message": "Rate limit reached",
        "type": "rate_limit_error",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    with pytest.raises(openai.RateLimitError):
        oai.responses.create(model="emu-old", input="slow down", stream=True)
    with pytest.raises(anthropic.RateLimitError) as ant_err:
        claude.messages.create(model="emu-old", max_tokens=10, messages=user("slow down"))
    assert ant_err.value.body["error"] == {"type": "rate_limit_error", "message": "Rate limit reached"}
    with pytest.raises(anthropic.InternalServerError) as overloaded:
        claude.messages.create(model="emu-old", max_tokens=10, messages=user("overloaded"))
    assert overloaded.value.status_code == 529


def test_sequence_fails_then_recovers(emu: Emulator, oai: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(model="emu-old", messages=user("flaky op"))
    r = oai.chat.completions.create(model="emu-old", messages=user("flaky op"))
    assert r.choices[0].message.content == "recovered"


def test_unknown_paths_and_bad_requests_use_provider_error_shapes(emu: Emulator) -> None:
    status, body = raw(emu.url + "/v1/nope", {"model": "m"})
    assert status == 404
    assert set(body["error"]) == {"message", "type", "param", "code"}
    status, body = raw(emu.url + "/v1/nope", {}, {"anthropic-version": "2023-06-01"})
    assert status == 404
    assert body["type"] == "error"
    assert body["error"]["type"] == "not_found_error"
    status, body = raw(emu.url + "/v1/chat/completions", {"messages": user("hi")})
    assert (status, body["error"]["param"]) == (400, "model")
    status, body = raw(emu.url + "/v1/messages", {"model": "m", "messages": user("hi")})
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"


def test_strict_models_rejects_unknown_models_and_models_are_listed() -> None:
    with Emulator({"strict_models": True, "models": {"emu-a": {}, "emu-b": {}}}, time_scale=0) as emu:
        client = openai.OpenAI(base_url=emu.url + "/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="gpt-retired", messages=user("hi"))
        assert [m.id for m in client.models.list()] == ["emu-a", "emu-b"]
        claude = anthropic.Anthropic(base_url=emu.url, api_key="x", max_retries=0)
        assert [m.id for m in claude.models.list()] == ["emu-a", "emu-b"]


# -- determinism, stochastic draws, latency -------------------------------------------------------


def coin_flips(url: str, n: int, prompt: str = "flip a coin") -> list[str]:
    client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
    return [
        client.chat.completions.create(model="emu-old", messages=user(prompt)).choices[0].message.content
        or ""
        for _ in range(n)
    ]


def test_stochastic_draws_are_reproducible_and_weighted() -> None:
    with Emulator(SCRIPT, time_scale=0) as emu:
        first = coin_flips(emu.url, 100)
        emu.reset()
        assert coin_flips(emu.url, 40) == first[:40]
        assert len(emu.requests) == 40  # reset() also clears the request log
    with Emulator(SCRIPT, time_scale=0) as restarted:
        assert coin_flips(restarted.url, 20) == first[:20]
        # A different prompt is its own sequence.
        other = coin_flips(restarted.url, 20, prompt="please flip a coin")
        assert other != first[:20]
    counts = Counter(first)
    assert set(counts) == {"heads", "tails"}
    assert 60 <= counts["heads"] <= 90  # weight 3:1 -> about 75 of 100


def test_wrap_json_wraps_a_fraction_of_replies(emu: Emulator) -> None:
    replies = coin_flips(emu.url, 60, prompt="wrapped json please")
    wrapped = [r for r in replies if r.startswith("Here is the JSON:\n```json\n")]
    assert 15 <= len(wrapped) <= 45
    assert all(
        json.loads(r.removeprefix("Here is the JSON:\n```json\n").removesuffix("\n```")) == {"ok": True}
        for r in wrapped
    )
    assert all(json.loads(r) == {"ok": True} for r in replies if r not in wrapped)


def test_latency_is_slept_and_scaled() -> None:
    with Emulator(SCRIPT, time_scale=0.25) as emu:  # emu-old 400 ms -> 100 ms, emu-new 100 ms -> 25 ms
        client = openai.OpenAI(base_url=emu.url + "/v1", api_key="x", max_retries=0)
        client.models.list()  # warm the connection
        timings: dict[str, float] = {}
        for model in ("emu-old", "emu-new"):
            start = time.perf_counter()
            client.chat.completions.create(model=model, messages=user("hi"))
            timings[model] = time.perf_counter() - start
    assert timings["emu-old"] >= 0.095
    assert timings["emu-new"] >= 0.024
    assert timings["emu-old"] > timings["emu-new"] + 0.04


def test_stop_closes_kept_alive_connections() -> None:
    emu = Emulator(time_scale=0).start()
    client = openai.OpenAI(base_url=emu.url + "/v1", api_key="x", max_retries=0)
    client.chat.completions.create(model="m", messages=user("hi"))
    emu.stop()
    assert not emu.running
    # The SDK wraps the refused connection as APIConnectionError; when the pooled connection is
    # found dead while the response is read, the transport's own ConnectError can surface first,
    # from httpx2 or, on a loaded machine, from the connection pool below it (httpcore2).
    refused: tuple[type[BaseException], ...] = (
        openai.APIConnectionError,
        httpx2.ConnectError,
        httpx2.RemoteProtocolError,
    )
    try:
        import httpcore2
    except ImportError:  # pragma: no cover - an SDK without the httpcore2 transport
        pass
    else:
        refused += (httpcore2.ConnectError, httpcore2.RemoteProtocolError)
    with pytest.raises(refused):
        client.chat.completions.create(model="m", messages=user("hi"))


# -- no script ------------------------------------------------------------------------------------


def test_no_script_answers_every_model_deterministically() -> None:
    with Emulator(time_scale=0) as emu:
        client = openai.OpenAI(base_url=emu.url + "/v1", api_key="x", max_retries=0)
        a = client.chat.completions.create(model="gpt-anything", messages=user("Summarise the refund policy"))
        b = client.chat.completions.create(model="gpt-anything", messages=user("Summarise the refund policy"))
        assert a.choices[0].message.content == b.choices[0].message.content
        assert (
            a.choices[0].message.content
            == 'Emulated reply from gpt-anything to "Summarise the refund policy".'
        )
        claude = anthropic.Anthropic(base_url=emu.url, api_key="x", max_retries=0)
        m = claude.messages.create(model="claude-whatever", max_tokens=50, messages=user("Hello"))
        assert "claude-whatever" in m.content[0].text
        long = client.responses.create(model="m", input="word " * 100)
        assert "…" in long.output_text


# -- script loading and errors --------------------------------------------------------------------


def test_example_script_loads_and_plays_a_migration() -> None:
    script = load_script(EXAMPLE)
    assert set(script.models) == {"emu-old", "emu-new"}
    with Emulator(EXAMPLE, time_scale=0) as emu:
        client = openai.OpenAI(base_url=emu.url + "/v1", api_key="x", max_retries=0)
        old = client.chat.completions.create(model="emu-old", messages=user("Edge case: partial refund"))
        new = client.chat.completions.create(model="emu-new", messages=user("Edge case: partial refund"))
        assert json.loads(old.choices[0].message.content or "") == {"queue": "billing"}
        assert json.loads(new.choices[0].message.content or "") == {"queue": "sales"}
        assert new.model == "emu-new-2026-03-01"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "models:\n  emu-new:\n    rules:\n      - match: x\n        repyl: hi\n",
            "script.yaml: models.emu-new.rules[0]: unknown key 'repyl' (did you mean 'reply'? expected",
        ),
        (
            "models:\n  m:\n    rules:\n      - match: '(unclosed'\n",
            "script.yaml: models.m.rules[0].match: invalid regular",
        ),
        ("models: [1, 2\n", "script.yaml: invalid YAML at line"),
        (
            "models:\n  m:\n    latency_ms: fast\n",
            "script.yaml: models.m.latency_ms: expected a number, got a string 'fast'",
        ),
        ("modles: {}\n", "script.yaml: unknown key 'modles' (did you mean 'models'?"),
        ("default:\n  choices: []\n", "script.yaml: default.choices: expected a non-empty list"),
        ("default: {reply: a, refuse: b}\n", "script.yaml: default: 'refuse' cannot be combined"),
        (
            "default: {error: {status: 200}}\n",
            "script.yaml: default.error.status: must be an HTTP error status",
        ),
        ("default: {wrap_json: 2}\n", "script.yaml: default.wrap_json: must be between 0 and 1, got 2"),
        ("version: 2\n", "script.yaml: version: unsupported version 2"),
        ("- a\n", "script.yaml: expected a mapping, got a list"),
    ],
)
def test_script_errors_name_the_file_and_the_key(text: str, message: str) -> None:
    with pytest.raises(ScriptError) as excinfo:
        parse_script_text(text, "script.yaml")
    assert str(excinfo.value).startswith(message)


def test_load_script_errors(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match=r"missing\.yaml: script file not found"):
        load_script(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.json"
    bad.write_text('{"models": {"m": {"rules": [{"match": "a", "error": {"status": "x"}}]}}}')
    with pytest.raises(
        ScriptError, match=r"bad\.json: models\.m\.rules\[0\]\.error\.status: expected an integer"
    ):
        load_script(bad)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ScriptError, match=r"broken\.json: invalid JSON at line 1"):
        load_script(broken)
    with pytest.raises(ScriptError, match=r"<dict>: models\.m: expected a mapping"):
        Emulator({"models": {"m": 3}})
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_script(empty) == Script(source=str(empty))


# -- the command ----------------------------------------------------------------------------------


def test_emulator_command_serves_until_interrupted(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = tmp_path / "s.yaml"
    script.write_text("models:\n  emu-cli:\n    default: from the command\n")
    proc = subprocess.Popen(
        python_m(
            "pytest_modelmigrate.cli",
            "emulator",
            "--port",
            str(port),
            "--script",
            str(script),
            "--time-scale",
            "0",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = f"http://127.0.0.1:{port}"
        assert line.startswith(f"Emulator listening on {url}")
        assert f"base_url={url}/v1" in line
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        r = client.chat.completions.create(model="emu-cli", messages=user("hi"))
        assert r.choices[0].message.content == "from the command"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        assert "POST /v1/chat/completions model=emu-cli -> 200" in (proc.stderr.read() if proc.stderr else "")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_emulator_command_reports_a_bad_script(tmp_path: Path) -> None:
    script = tmp_path / "s.yaml"
    script.write_text("models:\n  m:\n    rules: [{match: a, repyl: b}]\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest_modelmigrate.cli", "emulator", "--port", "0", "--script", str(script)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "s.yaml: models.m.rules[0]: unknown key 'repyl'" in done.stderr
    assert "Traceback" not in done.stderr
