"""What every API module shares: the parsed request (:class:`Request`) and the concrete answer
(:class:`Reply`) that the engine picks for it."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .script import ErrorSpec

__all__ = [
    "REASONING_EFFORTS",
    "Event",
    "Reply",
    "ReplyToolCall",
    "Request",
    "RequestError",
    "ToolDef",
    "content_text",
    "optional_int",
    "reasoning_effort",
    "require_model",
]


_SIGNING_KEY = b"pytest-modelmigrate emulator thinking signature"


def sign_thinking(ident: str, thinking: str) -> str:
    """The opaque signature of a thinking block (Anthropic) or reasoning item's ``encrypted_content``
    (OpenAI): a seed and its keyed digest, so :func:`signature_valid` tells the emulator's own
    signatures from foreign or altered ones, as the real APIs do."""
    seed = hashlib.sha256(f"{ident}\x00{thinking}".encode()).digest()
    tag = hashlib.sha256(_SIGNING_KEY + seed).digest()
    filler = b"".join(hashlib.sha256(seed + bytes([i])).digest() for i in range(4))
    return base64.b64encode(seed + tag + filler).decode()


def signature_valid(signature: object) -> bool:
    """Whether ``signature`` is one :func:`sign_thinking` made (unaltered)."""
    if not isinstance(signature, str):
        return False
    try:
        raw = base64.b64decode(signature.encode(), validate=True)
    except ValueError:
        return False
    return len(raw) >= 64 and hashlib.sha256(_SIGNING_KEY + raw[:32]).digest() == raw[32:64]


class RequestError(ValueError):
    """A request the real API would reject with 400 (missing model, bad JSON, ...)."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


@dataclass(frozen=True)
class ToolDef:
    name: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class Request:
    """A request, reduced to what decides the answer.

    ``prompt`` is the text the script's rules match: the system text (or instructions) and the
    user messages, joined by newlines. ``input_text`` is every text of the request (for the
    prompt token count).
    """

    api: str  # "chat" | "responses" | "messages" | "embeddings"
    model: str
    prompt: str
    last_user: str = ""
    input_text: str = ""
    messages: int = 1
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    json_mode: bool = False
    schema: dict[str, Any] | None = None
    tools: tuple[ToolDef, ...] = ()
    forced_tool: str | None = None  # a tool name, or "" for "any tool" (required / any)
    logprobs: bool = False
    top_logprobs: int = 0
    reasoning_effort: str | None = None  # chat ``reasoning_effort`` / Responses ``reasoning.effort``
    reasoning_summary: str | None = None  # Responses ``reasoning.summary`` (auto, concise, detailed)
    thinking: bool = False  # Anthropic ``thinking`` enabled (or adaptive)
    thinking_budget: int | None = None  # Anthropic ``thinking.budget_tokens``
    thinking_omitted: bool = False  # Anthropic ``thinking.display: "omitted"``
    body: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReplyToolCall:
    id: str  # hex; each API adds its prefix (call_, fc_, toolu_)
    name: str
    arguments: str  # JSON text


@dataclass(frozen=True)
class Reply:
    model: str  # the model name echoed back
    ident: str  # hex used for response ids
    text: str | None = None
    refusal: str | None = None
    tool_calls: tuple[ReplyToolCall, ...] = ()
    truncated: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    confidence: float = 0.9
    token_factor: float = 1.0
    error: ErrorSpec | None = None
    latency_ms: float = 0.0
    where: str = "auto"
    fingerprint: str = ""  # the chat completions ``system_fingerprint``
    thinking: str | None = None  # the reasoning text (Anthropic thinking block, Responses summary)
    reasoning_tokens: int = 0  # included in ``output_tokens``
    signature: str = ""  # the Anthropic thinking block's signature


# A server-sent event: (event name or None, JSON data or the literal "[DONE]").
Event = tuple[str | None, object]


def content_text(content: object) -> str:
    """The text of a message ``content``: a string, or a list of parts carrying ``text``
    (``text``/``input_text``/``output_text`` parts; Anthropic ``tool_result`` content too)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif "content" in part:
                    texts.append(content_text(part["content"]))
        return "\n".join(t for t in texts if t)
    return ""


def require_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("you must provide a model parameter", param="model")
    return model


def optional_int(body: dict[str, Any], *names: str) -> int | None:
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise RequestError(f"Invalid '{name}': expected a positive integer, got {value!r}", param=name)
        return value
    return None


REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")


def reasoning_effort(value: object, param: str) -> str | None:
    """A reasoning effort (``none`` ... ``xhigh``), None when absent; a 400 for any other value."""
    if value is None:
        return None
    if value not in REASONING_EFFORTS:
        supported = ", ".join(f"'{e}'" for e in REASONING_EFFORTS)
        raise RequestError(
            f"Invalid value: {value!r}. Supported values are: {supported}.", param=param, code="invalid_value"
        )
    return str(value)
