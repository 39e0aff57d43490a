"""Reading recorded calls per API: OpenAI chat, OpenAI Responses, Anthropic messages, SSE."""

from __future__ import annotations

from pytest_modelmigrate.providers.base import Call, CassetteFormatError, ProviderError, ToolCall, Usage
from pytest_modelmigrate.providers.parse import (
    call_from_response_object,
    load_calls,
    parse_interaction,
    read_cassette,
)

__all__ = [
    "Call",
    "CassetteFormatError",
    "ProviderError",
    "ToolCall",
    "Usage",
    "call_from_response_object",
    "load_calls",
    "parse_interaction",
    "read_cassette",
]
