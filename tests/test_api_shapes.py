"""API shapes that real cassettes of public projects hold and the reader misread (issue #17).

The cassettes here are written by hand where the emulator cannot produce the shape (Assistants,
legacy ``function_call``, error bodies in a 200, Anthropic server tools), with the bodies the
providers send (from their API references and public recordings). Where an SDK reads the shape,
the interaction is replayed through the SDK by vcrpy and the SDK's own reading is the reference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import vcr
import yaml

from pytest_modelmigrate.adopt import AdoptError, adopt_cassettes
from pytest_modelmigrate.checks.boundary import finish_reason, tool_called
from pytest_modelmigrate.cli import main
from pytest_modelmigrate.providers.parse import call_from_response_object, load_calls, parse_interaction
from pytest_modelmigrate.recording import GENERATION_ENDPOINTS

REAL = Path(__file__).parent / "data" / "real_cassettes"
SAMPLE = REAL / "pydantic-ai/cassettes/test_openai/test_valid_response.yaml"


def _interaction(
    uri: str,
    request: Any,
    response: Any,
    *,
    status: int = 200,
    content_type: str = "application/json",
    method: str = "POST",
) -> dict[str, Any]:
    return {
        "request": {
            "body": json.dumps(request) if request is not None else None,
            "headers": {"content-type": ["application/json"]},
            "method": method,
            "uri": uri,
        },
        "response": {
            "body": {"string": response if isinstance(response, str) else json.dumps(response)},
            "headers": {"content-type": [content_type]},
            "status": {"code": status, "message": "OK" if status < 400 else "Bad Request"},
        },
    }


def _write(tmp_path: Path, *interactions: dict[str, Any], name: str = "cassette.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"interactions": list(interactions), "version": 1}), encoding="utf-8")
    return path


def _parse(interaction: dict[str, Any]) -> Any:
    return parse_interaction(interaction["request"], interaction["response"])


def _replay(path: Path) -> Any:
    return vcr.VCR(record_mode="none", match_on=["method", "scheme", "host", "path"]).use_cassette(str(path))


def _sse(*events: dict[str, Any]) -> str:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)


# ----------------------------------------------------------------------------------------------
# OpenAI Assistants: /v1/threads/{id}/messages is no Anthropic message

THREAD_MESSAGE = {
    "id": "msg_abc123",
    "object": "thread.message",
    "created_at": 1713226573,
    "assistant_id": None,
    "thread_id": "thread_abc123",
    "run_id": None,
    "role": "user",
    "content": [{"type": "text", "text": {"value": "How does AI work?", "annotations": []}}],
    "attachments": [],
    "metadata": {},
}
RUN = {
    "id": "run_abc123",
    "object": "thread.run",
    "created_at": 1713226574,
    "assistant_id": "asst_abc123",
    "thread_id": "thread_abc123",
    "status": "queued",
    "model": "gpt-4o",
    "instructions": None,
    "tools": [],
}


@pytest.mark.parametrize(
    "base",
    ["https://api.openai.com", "http://127.0.0.1:8080", "https://myresource.openai.azure.com/openai"],
)
def test_assistants_thread_messages_and_runs_are_not_model_calls(base: str) -> None:
    message = _interaction(
        f"{base}/v1/threads/thread_abc123/messages",
        {"role": "user", "content": "How does AI work?"},
        THREAD_MESSAGE,
    )
    call = _parse(message)
    assert (call.provider, call.endpoint, call.text) == ("unknown", "other", "")
    assert call.endpoint not in GENERATION_ENDPOINTS  # what the checks' "last call" skips
    run = _parse(_interaction(f"{base}/v1/threads/thread_abc123/runs", {"assistant_id": "asst_abc123"}, RUN))
    assert run.endpoint == "other"
    # finish_reason on the message: no Anthropic stop_reason complaint, it is not a model response
    result = finish_reason(call)
    assert "Anthropic" not in result.message
    assert "is not a model call" in result.message


@pytest.mark.filterwarnings("ignore:The Assistants API is deprecated:DeprecationWarning")
def test_assistants_message_replays_through_the_sdk(tmp_path: Path) -> None:
    uri = "https://api.openai.com/v1/threads/thread_abc123/messages"
    path = _write(
        tmp_path, _interaction(uri, {"role": "user", "content": "How does AI work?"}, THREAD_MESSAGE)
    )
    client = openai.OpenAI(api_key="sk-test", max_retries=0)
    with _replay(path):
        created = client.beta.threads.messages.create(
            "thread_abc123", role="user", content="How does AI work?"
        )
    assert created.content[0].text.value == "How does AI work?"  # type: ignore[union-attr]
    (call,) = load_calls(path)
    assert call.endpoint == "other"
    assert "{'value'" not in call.text


@pytest.mark.parametrize(
    ("uri", "endpoint"),
    [
        ("https://api.anthropic.com/v1/messages", "messages"),
        ("http://localhost:4000/anthropic/v1/messages", "messages"),  # a proxy's mount point
        ("https://api.openai.com/v1/messages", "other"),  # no Anthropic API on an OpenAI host
        ("https://api.anthropic.com/v1/messages/batches", "other"),
        ("https://api.anthropic.com/v1/messages/count_tokens", "other"),
        ("https://api.anthropic.com/v1/chat/completions", "chat.completions"),  # OpenAI-compatible
        ("https://r.openai.azure.com/openai/deployments/gpt4o/chat/completions", "chat.completions"),
        ("https://api.openai.com/v1/threads/thread_1/runs/run_1/steps", "other"),
        ("https://api.openai.com/v1/responses", "responses"),
    ],
)
def test_classified_by_host_and_path(uri: str, endpoint: str) -> None:
    from pytest_modelmigrate.providers.parse import classify

    spec = classify("POST", uri)
    assert (spec[1] if spec else "other") == endpoint


# ----------------------------------------------------------------------------------------------
# Legacy ``functions=`` / ``message.function_call``

WEATHER_FUNCTION = {
    "name": "get_current_weather",
    "description": "Get the current weather in a given location",
    "parameters": {
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["location"],
    },
}
FUNCTION_REQUEST = {
    "model": "gpt-3.5-turbo-0613",
    "messages": [{"role": "user", "content": "What's the weather like in Boston?"}],
    "functions": [WEATHER_FUNCTION],
}


def _function_call_completion(arguments: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-7R5X0",
        "object": "chat.completion",
        "created": 1686724740,
        "model": "gpt-3.5-turbo-0613",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "function_call": {"name": "get_current_weather", "arguments": arguments},
                },
                "finish_reason": "function_call",
            }
        ],
        "usage": {"prompt_tokens": 82, "completion_tokens": 18, "total_tokens": 100},
    }


def test_legacy_function_call_is_a_tool_call_validated_against_functions(tmp_path: Path) -> None:
    uri = "https://api.openai.com/v1/chat/completions"
    good = _interaction(uri, FUNCTION_REQUEST, _function_call_completion('{\n  "location": "Boston, MA"\n}'))
    call = _parse(good)
    assert [(t.name, t.arguments) for t in call.tool_calls] == [
        ("get_current_weather", {"location": "Boston, MA"})
    ]
    assert call.finish_reason == "function_call"
    result = tool_called(call, "get_current_weather")
    assert result, result.message
    assert result.details["schema"] == "request"
    bad = _parse(
        _interaction(
            uri, FUNCTION_REQUEST, _function_call_completion('{"location": "Boston", "unit": "kelvin"}')
        )
    )
    assert (
        "'kelvin' is not one of ['celsius', 'fahrenheit']" in tool_called(bad, "get_current_weather").message
    )

    # the SDK reads the same function call
    path = _write(tmp_path, good)
    client = openai.OpenAI(api_key="sk-test", max_retries=0)
    with _replay(path):
        completion = client.chat.completions.create(**FUNCTION_REQUEST)
    sdk_call = completion.choices[0].message.function_call
    assert sdk_call is not None
    from_sdk = call_from_response_object(completion)
    assert [(t.name, t.arguments_text) for t in from_sdk.tool_calls] == [(sdk_call.name, sdk_call.arguments)]


def test_legacy_function_call_streamed(tmp_path: Path) -> None:
    chunks = [
        {
            "role": "assistant",
            "content": None,
            "function_call": {"name": "get_current_weather", "arguments": ""},
        },
        {"function_call": {"arguments": '{\n  "location"'}},
        {"function_call": {"arguments": ': "Boston, MA"\n}'}},
    ]
    body = "".join(
        "data: "
        + json.dumps(
            {
                "id": "chatcmpl-7R5X1",
                "object": "chat.completion.chunk",
                "created": 1686724741,
                "model": "gpt-3.5-turbo-0613",
                "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
            }
        )
        + "\n\n"
        for delta in chunks
    )
    body += "data: " + json.dumps(
        {
            "id": "chatcmpl-7R5X1",
            "object": "chat.completion.chunk",
            "created": 1686724741,
            "model": "gpt-3.5-turbo-0613",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "function_call"}],
        }
    )
    body += "\n\ndata: [DONE]\n\n"
    request = {**FUNCTION_REQUEST, "stream": True}
    interaction = _interaction(
        "https://api.openai.com/v1/chat/completions", request, body, content_type="text/event-stream"
    )
    call = _parse(interaction)
    assert call.streaming
    assert [(t.name, t.arguments) for t in call.tool_calls] == [
        ("get_current_weather", {"location": "Boston, MA"})
    ]
    assert tool_called(call, "get_current_weather")


# ----------------------------------------------------------------------------------------------
# Error bodies: in a 200, and with the provider's code


MODEL_NOT_FOUND = {
    "error": {
        "message": "The model `gpt-9` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    }
}
# Azure OpenAI's content filter: ``type`` is null, the reason is in ``code``.
CONTENT_FILTER = {
    "error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": {"hate": {"filtered": True}},
        },
    }
}
UNSUPPORTED = {
    "error": {
        "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
        "Use 'max_completion_tokens' instead.",
        "type": "invalid_request_error",
        "param": "max_tokens",
        "code": "unsupported_parameter",
    }
}
CHAT_URI = "https://api.openai.com/v1/chat/completions"
CHAT_REQUEST = {"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}


def test_a_200_whose_body_is_an_error_is_an_error_with_its_code(tmp_path: Path) -> None:
    interaction = _interaction(CHAT_URI, CHAT_REQUEST, MODEL_NOT_FOUND)
    call = _parse(interaction)
    assert call.error is not None and not call.ok
    assert (call.error.type, call.error.code) == ("invalid_request_error", "model_not_found")
    # the SDK builds a ChatCompletion with every field None: read as the same error, not a TypeError
    path = _write(tmp_path, interaction)
    client = openai.OpenAI(api_key="sk-test", max_retries=0)
    with _replay(path):
        completion = client.chat.completions.create(**CHAT_REQUEST)  # type: ignore[call-overload]
    from_sdk = call_from_response_object(completion)
    assert from_sdk.error == call.error
    assert from_sdk.error is not None and from_sdk.error.code == "model_not_found"
    assert (from_sdk.provider, from_sdk.endpoint) == ("openai", "chat.completions")


@pytest.mark.parametrize(
    ("uri", "body", "status", "expected"),
    [
        (CHAT_URI, CONTENT_FILTER, 400, ("content_filter", "content_filter")),
        (
            "https://r.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-06-01",
            CONTENT_FILTER,
            400,
            ("content_filter", "content_filter"),
        ),
        (CHAT_URI, UNSUPPORTED, 400, ("invalid_request_error", "unsupported_parameter")),
        (CHAT_URI, MODEL_NOT_FOUND, 404, ("invalid_request_error", "model_not_found")),
        (
            "https://api.openai.com/v1/responses",
            UNSUPPORTED,
            400,
            ("invalid_request_error", "unsupported_parameter"),
        ),
        (
            "https://api.anthropic.com/v1/messages",
            {"type": "error", "error": {"type": "not_found_error", "message": "model: claude-9"}},
            404,
            ("not_found_error", None),
        ),
    ],
)
def test_error_type_and_code(
    uri: str, body: dict[str, Any], status: int, expected: tuple[str, str | None]
) -> None:
    call = _parse(_interaction(uri, CHAT_REQUEST, body, status=status))
    assert call.error is not None
    assert (call.error.type, call.error.code) == expected
    assert call.error.message == body["error"]["message"]
    assert call.summary()["error"]["code"] == expected[1]


# ----------------------------------------------------------------------------------------------
# Anthropic streams with server tools: usage as the SDK's own final message reports it

SERVER_TOOL_REQUEST = {
    "model": "claude-sonnet-4-5-20250929",
    "max_tokens": 1024,
    "messages": [{"role": "user", "content": "What is the weather in NYC today?"}],
    "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 1}],
    "stream": True,
}


def _server_tool_stream(final_usage: dict[str, Any]) -> str:
    return _sse(
        {
            "type": "message_start",
            "message": {
                "id": "msg_01",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5-20250929",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 2679,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": 3,
                },
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": "Let me search."},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {
                "type": "server_tool_use",
                "id": "srvtoolu_01",
                "name": "web_search",
                "input": {},
            },
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"query": "weather NYC today"}'},
        },
        {"type": "content_block_stop", "index": 1},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {
                "type": "web_search_tool_result",
                "tool_use_id": "srvtoolu_01",
                "content": [
                    {
                        "type": "web_search_result",
                        "title": "NYC weather",
                        "url": "https://weather.example/nyc",
                        "encrypted_content": "EqgfCioIARgBIiQ3YTA",
                        "page_age": None,
                    }
                ],
            },
        },
        {"type": "content_block_stop", "index": 2},
        {
            "type": "content_block_start",
            "index": 3,
            "content_block": {"type": "text", "text": "", "citations": []},
        },
        {
            "type": "content_block_delta",
            "index": 3,
            "delta": {
                "type": "citations_delta",
                "citation": {
                    "type": "web_search_result_location",
                    "cited_text": "Sunny, 21C",
                    "url": "https://weather.example/nyc",
                    "title": "NYC weather",
                    "encrypted_index": "Eo8BCioIAhgBIiQ",
                },
            },
        },
        {"type": "content_block_delta", "index": 3, "delta": {"type": "text_delta", "text": " Sunny, 21C."}},
        {"type": "content_block_stop", "index": 3},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": final_usage,
        },
        {"type": "message_stop"},
    )


@pytest.mark.parametrize(
    "final_usage",
    [
        # what the API sends with server tools: cumulative totals, input included
        {
            "input_tokens": 10682,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 510,
            "server_tool_use": {"web_search_requests": 1},
        },
        # an older stream: message_delta without input tokens keeps message_start's
        {"output_tokens": 510},
    ],
    ids=["server-tool-totals", "output-only"],
)
@pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")
def test_anthropic_server_tool_stream_usage_is_the_sdks(final_usage: dict[str, Any], tmp_path: Path) -> None:
    interaction = _interaction(
        "https://api.anthropic.com/v1/messages",
        SERVER_TOOL_REQUEST,
        _server_tool_stream(final_usage),
        content_type="text/event-stream",
    )
    call = _parse(interaction)
    path = _write(tmp_path, interaction)
    client = anthropic.Anthropic(api_key="sk-ant-test", max_retries=0)
    request = {k: v for k, v in SERVER_TOOL_REQUEST.items() if k != "stream"}
    with _replay(path), client.messages.stream(**request) as stream:  # type: ignore[arg-type]
        final = stream.get_final_message()
    assert call.usage.input_tokens == final.usage.input_tokens
    assert call.usage.output_tokens == final.usage.output_tokens
    assert call.usage.input_tokens == final_usage.get("input_tokens", 2679)
    assert call.text == "".join(b.text for b in final.content if b.type == "text")
    assert call.tool_calls == ()  # a server tool is not a tool call the application answers
    assert call.finish_reason == final.stop_reason == "end_turn"
    # the SDK's final message read directly gives the same usage
    assert call_from_response_object(final, streaming=True).usage == call.usage


# ----------------------------------------------------------------------------------------------
# modelmigrate adopt: folders holding both cassettes and subfolders; other models' folders


def test_adopt_a_folder_holding_cassettes_and_module_folders(tmp_path: Path) -> None:
    root = tmp_path / "recordings"
    (root / "test_triage" / "old").mkdir(parents=True)
    SAMPLE_TEXT = SAMPLE.read_bytes()
    (root / "test_top.yaml").write_bytes(SAMPLE_TEXT)
    (root / "test_triage" / "test_refund.yaml").write_bytes(SAMPLE_TEXT)
    (root / "test_triage" / "old" / "test_refund.yaml").write_bytes(SAMPLE_TEXT)
    skipped: list[tuple[Path, str]] = []
    pairs = adopt_cassettes(root, "claude", dry_run=True, skipped=skipped)
    assert [d.relative_to(root).as_posix() for _, d in pairs] == [
        "claude/test_top.yaml",
        "test_triage/claude/test_refund.yaml",
    ]
    assert [(folder.relative_to(root).as_posix(), "model's folder" in why) for folder, why in skipped] == [
        ("test_triage/old", True)
    ]


def test_adopt_never_nests_a_model_folder_and_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = tmp_path / "cassettes" / "test_triage"
    (module / "old").mkdir(parents=True)
    (module / "test_refund.yaml").write_bytes(SAMPLE.read_bytes())
    (module / "old" / "test_refund.yaml").write_bytes(SAMPLE.read_bytes())
    assert main(["adopt", str(module), "--model", "claude"]) == 0
    captured = capsys.readouterr()
    assert f"warning: skipped {module / 'old'}: already a model's folder (test_triage/old/)" in captured.err
    assert (module / "claude" / "test_refund.yaml").exists()
    assert not (module / "old" / "claude").exists()
    assert not (module / "claude" / "old").exists()
    # the model's folder itself (or a file in it) is refused: it would become old/claude/
    for src in (module / "old", module / "old" / "test_refund.yaml"):
        with pytest.raises(AdoptError, match=r"model 'old''s folder of module 'test_triage'.*nest"):
            adopt_cassettes(src, "gpt-5")
    assert sorted(p.name for p in (module / "old").iterdir()) == ["test_refund.yaml"]
