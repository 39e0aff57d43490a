"""The provider parsers against real recorded traffic (tests/data/real_cassettes, see MANIFEST.tsv).

Two independent checks per interaction:

1. ``test_matches_independent_reading``: what ``parse_interaction`` extracts equals a reading of
   the raw response written here with plain code (YAML loaded with PyYAML, not vcrpy; SSE split
   into lines and the ``data:`` payloads concatenated by hand).
2. ``test_replay_through_sdk``: the recorded request body is turned back into an SDK call
   (openai chat completions / Responses, anthropic messages), replayed by vcrpy from a one-
   interaction cassette (record_mode="none", matching method + path + body JSON), and the SDK's
   own parsed result must equal what ``parse_interaction`` read.
"""

from __future__ import annotations

import copy
import csv
import functools
import gzip
import inspect
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anthropic
import openai
import pytest
import vcr
import yaml

from pytest_modelmigrate.providers.parse import (
    call_from_response_object,
    load_calls,
    parse_interaction,
    read_cassette,
)

if TYPE_CHECKING:
    from pytest_modelmigrate.providers.base import Call

DATA = Path(__file__).parent / "data" / "real_cassettes"
FILES = sorted(DATA.rglob("*.yaml"))
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def _load(path: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    return [(i["request"], i["response"]) for i in data["interactions"]]


PAIRS = [(path, index) for path in FILES for index in range(len(_load(path)))]


def _id(path: Path, index: int) -> str:
    return f"{path.relative_to(DATA).as_posix()}#{index}"


CASES = [pytest.param(path, index, id=_id(path, index)) for path, index in PAIRS]


# ----------------------------------------------------------------------------------------------
# The independent reading


def _header(message: dict[str, Any], name: str) -> str:
    for key, value in (message.get("headers") or {}).items():
        if key.lower() == name:
            return ", ".join(value) if isinstance(value, list) else str(value)
    return ""


def _raw_body(response: dict[str, Any]) -> Any:
    """The response JSON (dict), or the SSE body text (str)."""
    if "parsed_body" in response:
        return response["parsed_body"]
    body = response["body"]["string"]
    if isinstance(body, bytes):
        if _header(response, "content-encoding") == "gzip":
            body = gzip.decompress(body)
        body = body.decode("utf-8")
    if "text/event-stream" in _header(response, "content-type"):
        return body
    return json.loads(body)


def _data_lines(text: str) -> list[dict[str, Any]]:
    payloads = []
    for line in text.split("\n"):
        if line.startswith("data:") and line[5:].strip() != "[DONE]":
            payloads.append(json.loads(line[5:]))
    return payloads


def _expected(request: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    uri = request["uri"]
    status = response["status"]["code"]
    if "/chat/completions" in uri:
        kind = "chat.completions"
    elif "/v1/responses" in uri:
        kind = "responses"
    elif "/v1/messages" in uri:
        kind = "messages"
    else:
        return {"endpoint": "other", "provider": "unknown", "status": status}
    body = _raw_body(response)
    out: dict[str, Any] = {"endpoint": kind, "status": status, "streaming": isinstance(body, str)}
    if status >= 400:
        out["error"] = (status, body["error"]["type"], body["error"]["message"])
        return out
    if kind == "chat.completions" and isinstance(body, dict):
        choice = body["choices"][0]
        out.update(
            text=choice["message"]["content"] or "",
            finish_reason=choice["finish_reason"],
            model_echoed=body["model"],
            usage=(body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"]),
            tools=[t["function"]["name"] for t in choice["message"].get("tool_calls") or []],
            refusal=choice["message"].get("refusal"),
        )
    elif kind == "chat.completions":
        chunks = _data_lines(body)
        usage = [c["usage"] for c in chunks if c.get("usage")]
        deltas = [ch["delta"] for c in chunks for ch in c["choices"]]
        out.update(
            text="".join(d.get("content") or "" for d in deltas),
            finish_reason=[ch["finish_reason"] for c in chunks for ch in c["choices"] if ch["finish_reason"]][
                -1
            ],
            model_echoed=chunks[0]["model"],
            usage=(usage[-1]["prompt_tokens"], usage[-1]["completion_tokens"]) if usage else (None, None),
            tools=[t["function"]["name"] for d in deltas for t in d.get("tool_calls") or [] if t.get("id")],
            refusal="".join(d.get("refusal") or "" for d in deltas) or None,
        )
    elif kind == "responses":
        if isinstance(body, dict):
            final = body
            text = "".join(
                part["text"]
                for item in body["output"]
                if item["type"] == "message"
                for part in item["content"]
                if part["type"] == "output_text"
            )
            tools = [item["name"] for item in body["output"] if item["type"] == "function_call"]
        else:
            events = _data_lines(body)
            final = next(e["response"] for e in events if e["type"] == "response.completed")
            text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
            tools = [
                e["item"]["name"]
                for e in events
                if e["type"] == "response.output_item.added" and e["item"]["type"] == "function_call"
            ]
        out.update(
            text=text,
            finish_reason=final["status"],
            model_echoed=final["model"],
            usage=(final["usage"]["input_tokens"], final["usage"]["output_tokens"]),
            tools=tools,
            refusal=None,
        )
    elif isinstance(body, dict):  # anthropic, whole message
        out.update(
            text="".join(b["text"] for b in body["content"] if b["type"] == "text"),
            finish_reason=body["stop_reason"],
            model_echoed=body["model"],
            usage=(body["usage"]["input_tokens"], body["usage"]["output_tokens"]),
            tools=[b["name"] for b in body["content"] if b["type"] == "tool_use"],
            refusal=None,
        )
    else:  # anthropic, streamed
        events = _data_lines(body)
        start = next(e["message"] for e in events if e["type"] == "message_start")
        deltas = [e for e in events if e["type"] == "message_delta"]
        input_tokens = start["usage"]["input_tokens"]
        for d in deltas:
            input_tokens = d["usage"].get("input_tokens") or input_tokens
        out.update(
            text="".join(
                e["delta"]["text"]
                for e in events
                if e["type"] == "content_block_delta" and e["delta"]["type"] == "text_delta"
            ),
            finish_reason=deltas[-1]["delta"]["stop_reason"],
            model_echoed=start["model"],
            usage=(input_tokens, deltas[-1]["usage"]["output_tokens"]),
            tools=[
                e["content_block"]["name"]
                for e in events
                if e["type"] == "content_block_start" and e["content_block"]["type"] == "tool_use"
            ],
            refusal=None,
        )
    return out


def _observed(call: Call, expected: dict[str, Any]) -> dict[str, Any]:
    seen: dict[str, Any] = {"endpoint": call.endpoint, "status": call.status}
    if call.endpoint == "other":
        seen["provider"] = call.provider
        return seen
    seen["streaming"] = call.streaming
    if "error" in expected:
        assert call.error is not None
        seen["error"] = (call.error.status, call.error.type, call.error.message)
        return seen
    assert call.error is None
    seen.update(
        text=call.text,
        finish_reason=call.finish_reason,
        model_echoed=call.model_echoed,
        usage=(call.usage.input_tokens, call.usage.output_tokens),
        tools=[t.name for t in call.tool_calls],
        refusal=call.refusal,
    )
    return seen


@pytest.mark.parametrize(("path", "index"), CASES)
def test_matches_independent_reading(path: Path, index: int) -> None:
    request, response = _load(path)[index]
    call = parse_interaction(request, response, source=str(path), index=index)
    expected = _expected(request, response)
    assert _observed(call, expected) == expected
    if call.endpoint != "other":
        body = request.get("parsed_body") or json.loads(request["body"])
        assert call.model_requested == body["model"]
        for tool in call.tool_calls:  # the parsed arguments are the arguments text, parsed
            assert tool.arguments == json.loads(tool.arguments_text or "{}")


@pytest.mark.parametrize("path", FILES, ids=[p.relative_to(DATA).as_posix() for p in FILES])
def test_load_calls_reads_every_interaction(path: Path) -> None:
    calls = load_calls(path)
    assert len(calls) == len(read_cassette(path)) == len(_load(path))


def test_manifest_lists_every_copied_cassette() -> None:
    with (DATA / "MANIFEST.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert sorted(r["path"] for r in rows) == sorted(p.relative_to(DATA).as_posix() for p in FILES)
    for row in rows:
        assert int(row["n_interactions"]) == len(_load(DATA / row["path"])), row["path"]
    for source in {Path(r["path"]).parts[0] for r in rows}:
        assert (DATA / source / "LICENSE").is_file()


def test_logprobs_and_cache_usage_of_a_real_stream() -> None:
    path = (
        DATA
        / "pydantic-ai/cassettes/test_openai/test_openai_instructions_with_responses_logprobs_streaming.yaml"
    )
    (call,) = load_calls(path)
    assert call.logprobs is not None
    assert "".join(token for token, _ in call.logprobs) == call.text
    assert call.usage.cached_input_tokens == 0
    assert call.usage.reasoning_tokens == 0


# ----------------------------------------------------------------------------------------------
# Replay through the SDKs that made the recordings


def _request_body(request: dict[str, Any]) -> dict[str, Any]:
    body = request["parsed_body"] if "parsed_body" in request else json.loads(request["body"])
    assert isinstance(body, dict)
    return body


def _one_interaction_cassette(tmp_path: Path, request: dict[str, Any], response: dict[str, Any]) -> Path:
    """A stock vcrpy cassette holding one interaction (pydantic-ai's parsed_body turned into body)."""
    request, response = copy.deepcopy(request), copy.deepcopy(response)
    if "parsed_body" in request:
        request["body"] = json.dumps(request.pop("parsed_body"))
    if "parsed_body" in response:
        response["body"] = {"string": json.dumps(response.pop("parsed_body"))}
        response["headers"] = {k: v for k, v in response["headers"].items() if k.lower() != "content-length"}
    path = tmp_path / "one.yaml"
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    cassette = {"version": 1, "interactions": [{"request": request, "response": response}]}
    path.write_text(yaml.dump(cassette, Dumper=dumper), encoding="utf-8")
    return path


def _json_body(r1: Any, r2: Any) -> None:
    assert json.loads(r1.body) == json.loads(r2.body)


def _split_kwargs(method: Any, body: dict[str, Any]) -> dict[str, Any]:
    """Body keys the SDK method names go as keywords; any others ride in ``extra_body``."""
    known = set(inspect.signature(method).parameters)
    kwargs = {k: v for k, v in body.items() if k in known}
    extra = {k: v for k, v in body.items() if k not in known}
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


def _base_url(uri: str, suffix: str) -> str:
    return uri.split("?")[0][: -len(suffix)]


def _replay_openai_chat(uri: str, body: dict[str, Any]) -> tuple[Any, Call]:
    from openai.lib.streaming.chat import ChatCompletionStreamState

    client = openai.OpenAI(api_key="sk-test", base_url=_base_url(uri, "/chat/completions"), max_retries=0)
    kwargs = _split_kwargs(client.chat.completions.create, body)
    result = client.chat.completions.create(**kwargs)
    if not body.get("stream"):
        return result, call_from_response_object(result)
    state: Any = ChatCompletionStreamState()
    usage = None
    for chunk in result:
        state.handle_chunk(chunk)
        usage = chunk.usage or usage
    final = state.get_final_completion()
    # The SDK's accumulator copies every chunk's ``usage`` over the last one, so a chunk after
    # the usage chunk (the moderation results of test_openai_moderation_stream) leaves the final
    # completion with usage None. The usage the SDK parsed from the chunks is the fact to compare.
    final = final.model_copy(update={"usage": usage})
    return final, call_from_response_object(final, streaming=True)


def _sdk_view_openai_chat(completion: Any, call: Call) -> dict[str, Any]:
    message = completion.choices[0].message
    return {
        "text": message.content or "",
        "finish_reason": completion.choices[0].finish_reason,
        "model_echoed": completion.model,
        "usage": (completion.usage.prompt_tokens, completion.usage.completion_tokens)
        if completion.usage
        else None,
        "tools": [(t.function.name, t.function.arguments) for t in message.tool_calls or []],
        "refusal": message.refusal,
    }


def _replay_openai_responses(uri: str, body: dict[str, Any]) -> tuple[Any, Call]:
    client = openai.OpenAI(api_key="sk-test", base_url=_base_url(uri, "/responses"), max_retries=0)
    result = client.responses.create(**_split_kwargs(client.responses.create, body))
    if not body.get("stream"):
        return result, call_from_response_object(result)
    final = None
    for event in result:
        if event.type in ("response.completed", "response.incomplete", "response.failed"):
            final = event.response
    assert final is not None
    return final, call_from_response_object(final, streaming=True)


def _sdk_view_openai_responses(response: Any, call: Call) -> dict[str, Any]:
    return {
        "text": response.output_text,
        "finish_reason": response.status,
        "model_echoed": response.model,
        "usage": (response.usage.input_tokens, response.usage.output_tokens),
        "tools": [(i.name, i.arguments) for i in response.output if i.type == "function_call"],
        "refusal": None,
    }


def _replay_anthropic(uri: str, body: dict[str, Any]) -> tuple[Any, Call]:
    client = anthropic.Anthropic(
        api_key="sk-ant-test", base_url=_base_url(uri, "/v1/messages"), max_retries=0
    )
    messages = client.beta.messages if "beta=true" in uri else client.messages
    if not body.get("stream"):
        result = messages.create(**_split_kwargs(messages.create, body))
        return result, call_from_response_object(result)
    stream_body = {k: v for k, v in body.items() if k != "stream"}
    with messages.stream(**_split_kwargs(messages.stream, stream_body)) as stream:
        final = stream.get_final_message()
    return final, call_from_response_object(final, streaming=True)


def _sdk_view_anthropic(message: Any, call: Call) -> dict[str, Any]:
    text = "".join(b.text for b in message.content if b.type == "text")
    return {
        "text": text,
        "finish_reason": message.stop_reason,
        "model_echoed": message.model,
        "usage": (message.usage.input_tokens, message.usage.output_tokens),
        "tools": [(b.name, b.input) for b in message.content if b.type == "tool_use"],
        "refusal": (text or "marker") if message.stop_reason == "refusal" else None,
    }


def _call_view(call: Call, endpoint: str) -> dict[str, Any]:
    if endpoint == "messages":
        tools: list[Any] = [(t.name, t.arguments) for t in call.tool_calls]
    else:
        tools = [(t.name, t.arguments_text) for t in call.tool_calls]
    return {
        "text": call.text,
        "finish_reason": call.finish_reason,
        "model_echoed": call.model_echoed,
        "usage": (call.usage.input_tokens, call.usage.output_tokens),
        "tools": tools,
        "refusal": ("marker" if call.refusal and not call.text else call.refusal)
        if endpoint == "messages"
        else call.refusal,
    }


_REPLAYERS = {
    "chat.completions": (_replay_openai_chat, _sdk_view_openai_chat),
    "responses": (_replay_openai_responses, _sdk_view_openai_responses),
    "messages": (_replay_anthropic, _sdk_view_anthropic),
}

# Interactions that cannot be rebuilt into an SDK call, with the reason. (None today: the
# pydantic-ai ``parsed_body`` requests are plain JSON once read, and the non-LLM downloads in a
# cassette are simply not LLM calls, so they are left out of this test.)
NOT_REPLAYABLE: dict[str, str] = {}

LLM_CASES = [
    pytest.param(path, index, id=_id(path, index))
    for path, index in PAIRS
    if parse_interaction(*_load(path)[index]).endpoint in _REPLAYERS
]


@pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")
@pytest.mark.parametrize(("path", "index"), LLM_CASES)
def test_replay_through_sdk(path: Path, index: int, tmp_path: Path) -> None:
    case_id = _id(path, index)
    if case_id in NOT_REPLAYABLE:
        pytest.skip(NOT_REPLAYABLE[case_id])
    request, response = _load(path)[index]
    ours = parse_interaction(request, response, source=str(path), index=index)
    replay, view = _REPLAYERS[ours.endpoint]
    cassette = _one_interaction_cassette(tmp_path, request, response)
    recorder = vcr.VCR(record_mode="none", match_on=["method", "scheme", "host", "path", "json_body"])
    recorder.register_matcher("json_body", _json_body)
    with recorder.use_cassette(str(cassette)) as played:
        if ours.error is not None:
            with pytest.raises(
                openai.APIStatusError if ours.provider == "openai" else anthropic.APIStatusError
            ) as info:
                replay(request["uri"], _request_body(request))
            assert info.value.status_code == ours.error.status
            assert ours.error.message in str(info.value)
            assert played.play_count == 1
            return
        sdk_object, from_object = replay(request["uri"], _request_body(request))
        assert played.play_count == 1
    assert view(sdk_object, ours) == _call_view(ours, ours.endpoint)
    # The SDK object read through call_from_response_object agrees with the cassette reading too.
    assert _call_view(from_object, ours.endpoint) == _call_view(ours, ours.endpoint)
    assert from_object.provider == ours.provider
    assert from_object.endpoint == ours.endpoint
    assert from_object.streaming == ours.streaming
