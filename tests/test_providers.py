"""Unit tests of the provider parsers: SSE framing, error reporting, and the cases real cassettes lack."""

from __future__ import annotations

import base64
import gzip
import json
import struct
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_modelmigrate.providers.anthropic_messages import REFUSAL_MARKER
from pytest_modelmigrate.providers.base import CassetteFormatError, ProviderError, Usage
from pytest_modelmigrate.providers.parse import (
    call_from_response_object,
    load_calls,
    parse_interaction,
    read_cassette,
)
from pytest_modelmigrate.providers.sse import SSEDecoder, SSEEvent, looks_like_sse, parse_sse

if TYPE_CHECKING:
    from pathlib import Path

# ----------------------------------------------------------------------------------------------
# SSE framing

_text = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"]), max_size=20)
_events = st.lists(
    st.tuples(
        st.lists(_text, min_size=1, max_size=3),  # data lines
        st.one_of(st.none(), st.text(st.characters(whitelist_categories=["Ll"]), min_size=1, max_size=8)),
    ),
    max_size=6,
)


def _encode(events: list[tuple[list[str], str | None]], newline: str, *, comments: bool) -> bytes:
    out = []
    for data_lines, name in events:
        if comments:
            out.append(": keep-alive" + newline)
        if name is not None:
            out.append(f"event: {name}{newline}")
        out.extend(f"data: {line}{newline}" for line in data_lines)
        out.append(newline)
    return "".join(out).encode("utf-8")


def _expected(events: list[tuple[list[str], str | None]]) -> list[SSEEvent]:
    return [SSEEvent(data="\n".join(lines), event=name or "message") for lines, name in events]


@given(
    events=_events,
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    comments=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=8),
)
def test_sse_same_events_whatever_the_framing_and_chunking(
    events: list[tuple[list[str], str | None]], newline: str, comments: bool, cuts: list[int]
) -> None:
    body = _encode(events, newline, comments=comments)
    whole = parse_sse(body)
    assert whole.complete
    assert list(whole.events) == _expected(events)
    # Split the bytes anywhere (inside \r\n, inside a UTF-8 sequence): the same events.
    points = sorted({c % (len(body) + 1) for c in cuts})
    decoder = SSEDecoder()
    got: list[SSEEvent] = []
    for start, end in zip([0, *points], [*points, len(body)], strict=True):
        got += decoder.feed(body[start:end])
    got += decoder.close()
    assert got == list(whole.events)
    assert not decoder.pending


@given(events=_events.filter(bool), cut=st.integers(min_value=1))
def test_sse_a_cut_inside_the_last_event_is_reported(
    events: list[tuple[list[str], str | None]], cut: int
) -> None:
    body = _encode(events, "\n", comments=False)
    last_event_start = body.rstrip(b"\n").rfind(b"\n\n") + 2 if b"\n\n" in body.rstrip(b"\n") else 0
    # Cut strictly inside the last event, before its final blank line.
    end = last_event_start + cut % (len(body) - 1 - last_event_start)
    if end == last_event_start:
        return
    stream = parse_sse(body[:end])
    assert not stream.complete
    assert list(stream.events) == _expected(events[:-1])


def test_sse_field_rules() -> None:
    body = "\ufeffdata:no-space\ndata:  two spaces\nid: 7\nretry: 10\nevent: x\n\n: comment\n\ndata\n\n"
    stream = parse_sse(body)
    assert stream.complete
    assert stream.events == (
        SSEEvent(data="no-space\n two spaces", event="x", id="7", retry=10),
        SSEEvent(data="", event="message", id="7"),  # "data" alone is an empty data line
    )
    assert parse_sse("event: only\n\n").events == ()  # no data, no event


def test_looks_like_sse() -> None:
    assert looks_like_sse(": ping\n\nevent: a\ndata: {}\n\n")
    assert not looks_like_sse('{"data": 1}')


# ----------------------------------------------------------------------------------------------
# Building interactions

CHAT = "https://api.openai.com/v1/chat/completions"
RESPONSES = "https://api.openai.com/v1/responses"
MESSAGES = "https://api.anthropic.com/v1/messages"
EMBEDDINGS = "https://api.openai.com/v1/embeddings"


def _req(uri: str, body: Any = None, method: str = "POST") -> dict[str, Any]:
    return {
        "method": method,
        "uri": uri,
        "body": json.dumps(body) if body is not None else None,
        "headers": {},
    }


def _resp(
    body: str | bytes, status: int = 200, content_type: str = "application/json", **headers: str
) -> dict[str, Any]:
    all_headers = {"Content-Type": [content_type], **{k.replace("_", "-"): [v] for k, v in headers.items()}}
    return {"status": {"code": status, "message": "OK"}, "headers": all_headers, "body": {"string": body}}


def _sse(*payloads: Any, done: bool = False) -> str:
    out = "".join(f"data: {json.dumps(p)}\n\n" for p in payloads)
    return out + ("data: [DONE]\n\n" if done else "")


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-x-1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


# ----------------------------------------------------------------------------------------------
# Errors name the source and index


def test_truncated_sse_stream_names_source_and_index() -> None:
    body = _sse(_chunk({"content": "Hel"}))
    body += 'data: {"model": "gpt-x-1", "choices": [{"index": 0, "delta": {"content": "lo"'
    with pytest.raises(CassetteFormatError, match=r"tests/x\.yaml: interaction 3 .*truncated mid-event"):
        parse_interaction(
            _req(CHAT, {"model": "gpt-x"}),
            _resp(body, content_type="text/event-stream"),
            source="tests/x.yaml",
            index=3,
        )


def test_stream_cut_at_an_event_boundary_is_reported() -> None:
    body = _sse(_chunk({"content": "Hel"}))
    with pytest.raises(CassetteFormatError, match=r"s\.yaml: interaction 0 .*ended before \[DONE\]"):
        parse_interaction(_req(CHAT, {}), _resp(body, content_type="text/event-stream"), source="s.yaml")
    anthropic = _sse({"type": "message_start", "message": {"model": "c", "usage": {"input_tokens": 1}}})
    with pytest.raises(CassetteFormatError, match="ended before message_delta"):
        parse_interaction(_req(MESSAGES, {}), _resp(anthropic, content_type="text/event-stream"))
    responses = _sse({"type": "response.created", "response": {"model": "m"}})
    with pytest.raises(CassetteFormatError, match=r"without response\.completed"):
        parse_interaction(_req(RESPONSES, {}), _resp(responses, content_type="text/event-stream"))


def test_non_json_200_body_names_source_and_index() -> None:
    with pytest.raises(
        CassetteFormatError, match=r"c\.yaml: interaction 2 \(POST .*chat/completions\).*not JSON"
    ):
        parse_interaction(_req(CHAT, {}), _resp("<html>oops</html>"), source="c.yaml", index=2)


def test_event_data_that_is_not_json() -> None:
    with pytest.raises(CassetteFormatError, match=r"event 0 .*not JSON"):
        parse_interaction(_req(CHAT, {}), _resp("data: {nope\n\n", content_type="text/event-stream"))


def test_yaml_of_the_wrong_shape(tmp_path: Path) -> None:
    path = tmp_path / "wrong.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(CassetteFormatError, match=r"wrong\.yaml: not a vcrpy cassette"):
        read_cassette(path)
    path.write_text("interactions:\n- request: {method: POST}\n  response: {status: {code: 200}}\n")
    with pytest.raises(CassetteFormatError, match=r"wrong\.yaml: interaction 0 lacks uri"):
        read_cassette(path)


def test_non_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    with pytest.raises(CassetteFormatError, match=r"binary\.yaml: not a text cassette"):
        read_cassette(path)
    path.write_text("interactions: [ {request: \n  - :: ][")
    with pytest.raises(CassetteFormatError, match=r"binary\.yaml: not a YAML cassette"):
        load_calls(path)


def test_truncated_yaml_and_json_files(tmp_path: Path) -> None:
    good = (
        "interactions:\n- request:\n    method: POST\n    uri: https://api.openai.com/v1/chat/completions\n"
    )
    path = tmp_path / "cut.yaml"
    path.write_text(good)
    with pytest.raises(
        CassetteFormatError, match=r"cut\.yaml: interaction 0 lacks a 'request' or 'response'"
    ):
        read_cassette(path)
    json_path = tmp_path / "cut.json"
    json_path.write_text('{"interactions": [{"request": ')
    with pytest.raises(CassetteFormatError, match=r"cut\.json: not a JSON cassette"):
        read_cassette(json_path)


def test_json_serializer_cassette_and_latency(tmp_path: Path) -> None:
    body = {
        "model": "gpt-x-1",
        "choices": [{"index": 0, "message": {"content": "hi"}, "finish_reason": "stop"}],
    }
    response = _resp(json.dumps(body))
    response["latency_ms"] = 812.5
    path = tmp_path / "c.json"
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "interactions": [{"request": _req(CHAT, {"model": "gpt-x"}), "response": response}],
            }
        )
    )
    (call,) = load_calls(path)
    assert (call.text, call.latency_ms, call.model_requested, call.model_echoed) == (
        "hi",
        812.5,
        "gpt-x",
        "gpt-x-1",
    )
    assert call.usage == Usage()


# ----------------------------------------------------------------------------------------------
# Bodies, dispatch and provider errors


def test_other_traffic_is_never_an_error() -> None:
    call = parse_interaction(
        _req("https://cdn.example.com/a.png", method="GET"), _resp(b"\x89PNG\xff", content_type="image/png")
    )
    assert (call.provider, call.endpoint, call.status, call.method) == ("unknown", "other", 200, "GET")
    # A GET on a chat path (listing stored completions) is not a completion either.
    assert parse_interaction(_req(CHAT, method="GET"), _resp("{}")).endpoint == "other"


def test_gzip_and_deflate_bodies() -> None:
    body = {"model": "m", "choices": [{"index": 0, "message": {"content": "zip"}, "finish_reason": "stop"}]}
    raw = json.dumps(body).encode()
    assert parse_interaction(_req(CHAT, {}), _resp(gzip.compress(raw), content_encoding="gzip")).text == "zip"
    import zlib

    assert (
        parse_interaction(_req(CHAT, {}), _resp(zlib.compress(raw), content_encoding="deflate")).text == "zip"
    )
    with pytest.raises(CassetteFormatError, match="content-encoding 'br' is not supported"):
        parse_interaction(_req(CHAT, {}), _resp(b"\x00\x01", content_encoding="br"))


def test_provider_error_bodies() -> None:
    openai_body = json.dumps(
        {"error": {"message": "Rate limit", "type": "requests", "code": "rate_limit_exceeded"}}
    )
    call = parse_interaction(_req(CHAT, {"model": "gpt-x"}), _resp(openai_body, status=429))
    assert call.error == ProviderError(429, "requests", "Rate limit")
    assert not call.ok
    anthropic_body = json.dumps(
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    )
    call = parse_interaction(_req(MESSAGES, {}), _resp(anthropic_body, status=529))
    assert call.error == ProviderError(529, "overloaded_error", "Overloaded")
    call = parse_interaction(
        _req(MESSAGES, {}), _resp("<html>Bad gateway</html>", status=502, content_type="text/html")
    )
    assert call.error == ProviderError(502, None, "<html>Bad gateway</html>")
    # An error event mid-stream (HTTP 200) is an error too, not an empty output.
    stream = _sse(
        {"type": "message_start", "message": {"model": "c", "usage": {"input_tokens": 3}}},
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    )
    call = parse_interaction(_req(MESSAGES, {}), _resp(stream, content_type="text/event-stream"))
    assert call.error == ProviderError(200, "overloaded_error", "Overloaded")
    assert call.streaming


def test_openai_chat_refusal_logprobs_and_stream_refusal() -> None:
    body = {
        "model": "gpt-x-1",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"content": None, "refusal": "I can't help with that."},
                "logprobs": {
                    "content": [{"token": "I", "logprob": -0.1}, {"token": " can't", "logprob": -0.2}]
                },
            }
        ],
        "usage": {
            "prompt_tokens": 5,
            "completion_tokens": 2,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }
    call = parse_interaction(_req(CHAT, {}), _resp(json.dumps(body)))
    assert (call.text, call.refusal) == ("", "I can't help with that.")
    assert call.logprobs == (("I", -0.1), (" can't", -0.2))
    assert call.usage == Usage(5, 2, cached_input_tokens=4, reasoning_tokens=0)
    stream = _sse(
        _chunk({"refusal": "I can't"}), _chunk({"refusal": " do that."}), _chunk({}, "stop"), done=True
    )
    call = parse_interaction(_req(CHAT, {}), _resp(stream, content_type="text/event-stream"))
    assert (call.text, call.refusal, call.finish_reason, call.streaming) == (
        "",
        "I can't do that.",
        "stop",
        True,
    )
    assert call.usage == Usage()  # no usage chunk: nothing reported, not zero


def test_openai_chat_stream_parallel_tool_calls() -> None:
    def tc(index: int, **function: str) -> dict[str, Any]:
        item: dict[str, Any] = {"index": index, "function": function}
        if "name" in function:
            item["id"] = f"call_{index}"
        return item

    stream = _sse(
        _chunk({"tool_calls": [tc(0, name="a", arguments="")]}),
        _chunk({"tool_calls": [tc(1, name="b", arguments='{"y"')]}),
        _chunk({"tool_calls": [tc(0, arguments='{"x": 1}')]}),
        _chunk({"tool_calls": [tc(1, arguments=": 2}")]}),
        _chunk({}, "tool_calls"),
        {"model": "gpt-x-1", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}},
        done=True,
    )
    call = parse_interaction(_req(CHAT, {}), _resp(stream, content_type="text/event-stream"))
    assert [(t.id, t.name, t.arguments) for t in call.tool_calls] == [
        ("call_0", "a", {"x": 1}),
        ("call_1", "b", {"y": 2}),
    ]
    assert call.usage == Usage(9, 4)


def test_responses_refusal_and_incomplete() -> None:
    body = {
        "object": "response",
        "model": "m",
        "status": "incomplete",
        "incomplete_details": {"reason": "max_output_tokens"},
        "output": [
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "hidden"}]},
            {
                "type": "message",
                "content": [{"type": "refusal", "refusal": "No."}, {"type": "output_text", "text": "Part"}],
            },
        ],
        "usage": {"input_tokens": 1, "output_tokens": 2},
    }
    call = parse_interaction(_req(RESPONSES, {}), _resp(json.dumps(body)))
    assert (call.text, call.refusal, call.finish_reason) == ("Part", "No.", "max_output_tokens")


def test_anthropic_refusal_marker_and_streamed_usage() -> None:
    body = {
        "type": "message",
        "role": "assistant",
        "model": "c",
        "content": [],
        "stop_reason": "refusal",
        "usage": {
            "input_tokens": 3,
            "output_tokens": 0,
            "cache_read_input_tokens": 2,
            "cache_creation_input_tokens": 1,
        },
    }
    call = parse_interaction(_req(MESSAGES, {}), _resp(json.dumps(body)))
    assert call.refusal == REFUSAL_MARKER
    assert call.usage == Usage(3, 0, cached_input_tokens=3)
    stream = _sse(
        {
            "type": "message_start",
            "message": {"model": "c-1", "usage": {"input_tokens": 10, "output_tokens": 1}},
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Sorry"}},
        {"type": "message_delta", "delta": {"stop_reason": "refusal"}, "usage": {"output_tokens": 7}},
        {"type": "message_stop"},
    )
    call = parse_interaction(_req(MESSAGES, {"model": "c"}), _resp(stream, content_type="text/event-stream"))
    assert (call.text, call.refusal, call.finish_reason, call.model_echoed) == (
        "Sorry",
        "Sorry",
        "refusal",
        "c-1",
    )
    assert call.usage == Usage(10, 7)


def test_embeddings_float_and_base64() -> None:
    vector = [0.5, -1.25, 3.0]
    b64 = base64.b64encode(struct.pack("<3f", *vector)).decode()
    body = {
        "object": "list",
        "model": "text-embedding-3-small",
        "data": [
            {"object": "embedding", "index": 1, "embedding": b64},
            {"object": "embedding", "index": 0, "embedding": vector},
        ],
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }
    call = parse_interaction(_req(EMBEDDINGS, {"model": "text-embedding-3-small"}), _resp(json.dumps(body)))
    assert call.embeddings == (tuple(vector), tuple(vector))
    assert call.usage == Usage(input_tokens=4)
    assert (call.provider, call.endpoint) == ("openai", "embeddings")


# ----------------------------------------------------------------------------------------------
# SDK objects


def test_call_from_sdk_objects() -> None:
    from anthropic.types import Message
    from openai.types import CreateEmbeddingResponse
    from openai.types.chat import ChatCompletion
    from openai.types.responses import Response

    completion = ChatCompletion.model_validate(
        {
            "id": "c",
            "object": "chat.completion",
            "created": 0,
            "model": "gpt-x-1",
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    )
    call = call_from_response_object(completion)
    assert (call.provider, call.endpoint, call.text, call.usage) == (
        "openai",
        "chat.completions",
        "hi",
        Usage(1, 1),
    )
    message = Message.model_validate(
        {
            "id": "m",
            "type": "message",
            "role": "assistant",
            "model": "c-1",
            "stop_reason": "end_turn",
            "content": [{"type": "text", "text": "yo"}],
            "usage": {"input_tokens": 2, "output_tokens": 1},
        }
    )
    assert call_from_response_object(message).text == "yo"
    response = Response.model_validate(
        {
            "id": "r",
            "object": "response",
            "created_at": 0,
            "model": "m",
            "status": "completed",
            "output": [
                {
                    "type": "message",
                    "id": "i",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": "ok", "annotations": []}],
                }
            ],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
        }
    )
    assert call_from_response_object(response).text == "ok"
    embeddings = CreateEmbeddingResponse.model_validate(
        {
            "object": "list",
            "model": "e",
            "data": [{"object": "embedding", "index": 0, "embedding": [1.0]}],
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        }
    )
    assert call_from_response_object(embeddings).embeddings == ((1.0,),)
    with pytest.raises(TypeError, match="expects an openai or anthropic SDK response object"):
        call_from_response_object({"object": "chat.completion"})
    with pytest.raises(TypeError, match="is not a chat completion"):
        call_from_response_object(ChatCompletion.model_construct(object="chat.completion.chunk"))
