"""Checks on real recorded responses (tests/data/real_cassettes, see its MANIFEST.tsv)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_modelmigrate.checks import (
    bullets,
    finish_reason,
    json_schema,
    json_strict,
    label_confidence,
    model_echo,
    no_refusal,
    numbered,
    tool_called,
)
from pytest_modelmigrate.providers.parse import load_calls

if TYPE_CHECKING:
    from pytest_modelmigrate.providers.base import Call

ROOT = Path(__file__).parent / "data" / "real_cassettes"
if not ROOT.is_dir():  # pragma: no cover - before the copy landed
    ROOT = Path("/work/shared/fixtures/real-cassettes")


def calls(rel: str) -> list[Call]:
    path = ROOT / rel
    if not path.exists():
        pytest.skip(f"{rel} not available")
    return load_calls(path)


def test_anthropic_bullets_and_metadata() -> None:
    call = calls("llm-anthropic/cassettes/test_anthropic/test_prompt.yaml")[0]
    assert bullets(call, 2)
    assert not bullets(call, 3)
    assert finish_reason(call)
    assert model_echo(call)  # claude-sonnet-4-5 → claude-sonnet-4-5-20250929
    assert no_refusal(call)


def test_numbered_list_from_opus() -> None:
    call = calls("llm-anthropic/cassettes/test_anthropic/test_opus_46_prompt.yaml")[0]
    assert numbered(call, 2)


def test_structured_output_schema() -> None:
    call = calls("pydantic-ai/cassettes/test_openai/test_openai_native_output.yaml")[-1]
    schema = {
        "type": "object",
        "required": ["city", "country"],
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    }
    assert json_strict(call)
    assert json_schema(call, schema)
    stricter = {**schema, "required": ["city", "country", "population"]}
    assert "population" in json_schema(call, stricter).message


def test_tool_call_validated_against_recorded_request_schema() -> None:
    call = calls("llm/cassettes/test_tools/test_tool_use_basic.yaml")[0]
    result = tool_called(call, "multiply")
    assert result, result
    assert result.details["schema"] == "request"
    assert not tool_called(call, "multiply", schema={"type": "object", "required": ["z"]})
    assert finish_reason(call)


def test_anthropic_tool_use() -> None:
    call = calls("llm-anthropic/cassettes/test_anthropic/test_tools.yaml")[0]
    assert tool_called(call, "pelican_name_generator")


def test_alias_resolution_claude_sonnet_4_0() -> None:
    call = calls("pydantic-ai/cassettes/test_anthropic/test_anthropic_model_thinking_part_stream.yaml")[0]
    assert model_echo(call), model_echo(call)


def test_logprobs_label_confidence() -> None:
    call = calls(
        "pydantic-ai/cassettes/test_openai/test_openai_instructions_with_responses_logprobs_streaming.yaml"
    )[0]
    result = label_confidence(call, "Belo Horizonte", threshold=0.5)
    assert result.details["available"] is True
    assert result.score is not None
    assert 0.0 < result.score <= 1.0
    assert not label_confidence(call, "Belo Horizonte", threshold=1.0) or result.score == 1.0


def test_hedged_answer_is_not_a_refusal() -> None:
    call = calls("pydantic-ai/cassettes/test_openai_responses/test_openai_responses_thinking_part_iter.yaml")[
        0
    ]
    assert no_refusal(call)


def test_http_error_call_has_no_finish_reason() -> None:
    call = calls("pydantic-ai/cassettes/test_openai/test_openai_o1_mini_system_role[developer].yaml")[0]
    result = finish_reason(call)
    assert not result
    assert "not available" in result.message
