"""Boundary and metadata checks: refusals, tool calls, calibration, finish reason, echoed model."""

from __future__ import annotations

import math
from typing import Any

import anthropic
import openai
import pytest

from pytest_modelmigrate.checks import (
    REFUSAL_PHRASES,
    ChecksConfigError,
    finish_reason,
    label_confidence,
    model_echo,
    models_match,
    no_refusal,
    refuses,
    tool_called,
)
from pytest_modelmigrate.providers.base import Call, ToolCall


def chat(
    content: str | None = "ok",
    *,
    refusal: str | None = None,
    finish: str = "stop",
    model: str = "gpt-4o-2024-08-06",
    logprobs: list[tuple[str, float]] | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
) -> openai.types.chat.ChatCompletion:
    return openai.types.chat.ChatCompletion.model_validate(
        {
            "id": "c1",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": finish,
                    "message": {
                        "role": "assistant",
                        "content": content,
                        "refusal": refusal,
                        "tool_calls": tool_calls,
                    },
                    "logprobs": None
                    if logprobs is None
                    else {
                        "content": [
                            {"token": t, "logprob": lp, "bytes": None, "top_logprobs": []}
                            for t, lp in logprobs
                        ],
                        "refusal": None,
                    },
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
        }
    )


def message(
    text: str = "ok",
    *,
    stop: str = "end_turn",
    model: str = "claude-sonnet-4-5-20250929",
    tool: dict[str, Any] | None = None,
) -> anthropic.types.Message:
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    if tool:
        content.append({"type": "tool_use", "id": "t1", **tool})
    return anthropic.types.Message.model_validate(
        {
            "id": "m1",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 3},
        }
    )


def test_openai_refusal_field_decides() -> None:
    resp = chat(None, refusal="I'm sorry, I can't help with that.")
    result = no_refusal(resp)
    assert not result
    assert result.details["source"] == "provider:openai.refusal"
    assert refuses(resp)


def test_anthropic_refusal_stop_reason_decides() -> None:
    resp = message("", stop="refusal")
    result = no_refusal(resp)
    assert not result
    assert result.details["source"] == "provider:anthropic.stop_reason=refusal"


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't help with that request.",
        "I can’t assist with creating malware.",
        "I am unable to provide medical dosing advice.",
        "I must decline to answer.",
        "That would violate our usage policies.",
    ],
)
def test_refusal_phrases_in_text(text: str) -> None:
    result = no_refusal(text)
    assert not result
    assert result.details["source"] == "text:phrase"
    assert result.details["provider_fields"] == "not available (plain text)"
    assert refuses(text)


@pytest.mark.parametrize(
    "text",
    [
        "Here are three ideas:\n- a\n- b\n- c",
        "I'm not a road safety professional, but here are some general tips.",
        "I can't stress enough how important backups are.",
    ],
)
def test_answers_are_not_refusals(text: str) -> None:
    assert no_refusal(text)
    answered = refuses(text)
    assert not answered
    assert "answered instead of refusing" in answered.message


def test_refusal_extra_phrases_and_list_is_documented() -> None:
    assert not no_refusal("Nope, not doing that.", extra_phrases=[r"\bnot doing that\b"])
    assert len(REFUSAL_PHRASES) >= 5


WEATHER = {
    "type": "object",
    "required": ["city"],
    "additionalProperties": False,
    "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
}


def test_tool_called_valid_and_invalid_arguments() -> None:
    good = chat(
        None,
        finish="tool_calls",
        tool_calls=[
            {"id": "x", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}
        ],
    )
    ok = tool_called(good, "weather", schema=WEATHER)
    assert ok
    assert ok.value == {"city": "Oslo"}
    bad = chat(
        None,
        finish="tool_calls",
        tool_calls=[
            {
                "id": "x",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"town": "Oslo", "unit": "k"}'},
            }
        ],
    )
    result = tool_called(bad, "weather", schema=WEATHER)
    assert not result
    assert "$: 'city' is a required property" in result.message
    assert "$.unit" in result.message
    broken = chat(
        None,
        finish="tool_calls",
        tool_calls=[
            {"id": "x", "type": "function", "function": {"name": "weather", "arguments": '{"city": '}}
        ],
    )
    assert "not valid JSON" in tool_called(broken, "weather").message


def test_tool_called_wrong_tool_or_none() -> None:
    assert "called no tool" in tool_called(chat("It is sunny."), "weather").message
    other = message("", stop="tool_use", tool={"name": "search", "input": {"q": "x"}})
    assert "called ['search']" in tool_called(other, "weather").message


def test_tool_called_reads_schema_from_recorded_request() -> None:
    call = Call(
        provider="anthropic",
        endpoint="messages",
        method="POST",
        url="",
        status=200,
        streaming=False,
        tool_calls=(ToolCall("weather", '{"unit": "c"}', {"unit": "c"}),),
        request_json={"tools": [{"name": "weather", "input_schema": WEATHER}]},
    )
    result = tool_called(call, "weather")
    assert not result
    assert result.details["schema"] == "request"


def test_tool_called_needs_provider_response() -> None:
    with pytest.raises(ChecksConfigError, match="tool_called: needs a provider response"):
        tool_called("some text", "weather")


def test_label_confidence_from_logprobs() -> None:
    confident = chat("billing", logprobs=[("bill", math.log(0.95)), ("ing", math.log(0.99))])
    result = label_confidence(confident, threshold=0.9)
    assert result
    assert result.score == pytest.approx(0.95 * 0.99)
    low = chat(
        '{"queue": "billing"}',
        logprobs=[
            ('{"', -0.01),
            ("queue", -0.01),
            ('":', -0.01),
            (' "', -0.01),
            ("billing", math.log(0.4)),
            ('"}', -0.01),
        ],
    )
    result = label_confidence(low, "billing", threshold=0.7)
    assert not result
    assert "P('billing') = 0.400 < 0.7" in result.message


def test_label_confidence_without_logprobs_is_a_clear_failure() -> None:
    result = label_confidence(message("billing"))
    assert not result
    assert result.message.startswith("not available")
    assert result.details["available"] is False
    missing = label_confidence(chat("tech", logprobs=[("tech", -0.1)]), "billing")
    assert not missing
    assert "not found" in missing.message


def test_finish_reason() -> None:
    assert finish_reason(chat("ok"))
    truncated = finish_reason(chat("The three reasons are: 1. price 2. spe", finish="length"))
    assert not truncated
    assert "truncated by the token limit" in truncated.message
    assert not finish_reason(message("partial", stop="max_tokens"))
    assert finish_reason(message("x", stop="tool_use"))
    assert not finish_reason(chat("x", finish="tool_calls"), expected="stop")


@pytest.mark.parametrize(
    ("requested", "echoed", "ok"),
    [
        ("gpt-4o", "gpt-4o", True),
        ("gpt-4o", "gpt-4o-2024-08-06", True),
        ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", True),
        ("gpt-4", "gpt-4-0613", True),
        ("claude-3-5-sonnet-latest", "claude-3-5-sonnet-20241022", True),
        ("claude-sonnet-4-0", "claude-sonnet-4-20250514", True),
        ("gpt-4o-2024-08-06", "gpt-4o-2024-11-20", False),
        ("gpt-4o", "gpt-4o-mini-2024-07-18", False),
        ("gpt-4o", "gpt-5-2025-08-07", False),
        ("claude-sonnet-4-5", "claude-opus-4-6", False),
    ],
)
def test_models_match(requested: str, echoed: str, ok: bool) -> None:
    assert models_match(requested, echoed)[0] is ok


def test_model_echo() -> None:
    assert model_echo(chat("x", model="gpt-4o-2024-08-06"), "gpt-4o")
    wrong = model_echo(chat("x", model="gpt-4o-mini-2024-07-18"), "gpt-4o")
    assert not wrong
    assert "gpt-4o-mini-2024-07-18" in wrong.message
    assert model_echo(chat("x", model="my-deployment"), "gpt-4o", accept=["my-deployment"])
    with pytest.raises(ChecksConfigError, match="model_echo: the requested model is unknown"):
        model_echo(chat("x"))
