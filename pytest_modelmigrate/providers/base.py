"""What the plugin reads from one recorded HTTP call, whatever API produced it.

Pure module: no pytest import. The parsers in this package turn one vcrpy interaction
(the request dict and the response dict as a cassette stores them) into a :class:`Call`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class CassetteFormatError(ValueError):
    """A recorded interaction that cannot be read; the message names the file and the index."""


@dataclass(frozen=True)
class Usage:
    """Token counts as the provider reported them (``None`` where it reported nothing)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    # Tokens read from or written to a prompt cache, and reasoning tokens, where reported.
    cached_input_tokens: int | None = None
    reasoning_tokens: int | None = None

    @property
    def total_tokens(self) -> int | None:
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return (self.input_tokens or 0) + (self.output_tokens or 0)


@dataclass(frozen=True)
class ToolCall:
    name: str
    # The arguments as the model wrote them (a JSON text for OpenAI, already an object for Anthropic).
    arguments_text: str
    arguments: Any = None  # parsed JSON where it parses, else None
    id: str | None = None


@dataclass(frozen=True)
class ProviderError:
    """An error the provider answered with (an HTTP error, or an error body or event in a 200).

    ``type`` is the error's ``type`` (OpenAI falls back to its ``code`` where ``type`` is null);
    ``code`` is the provider's own error code where it sent one (OpenAI ``model_not_found``,
    ``content_filter``, ``unsupported_parameter``, ``rate_limit_exceeded``; Anthropic sends none).
    ``code`` is carried but not compared: two errors are equal by status, type and message.
    """

    status: int
    type: str | None
    message: str
    code: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Call:
    """One request to a model API and what came back.

    ``provider`` is ``"openai"`` or ``"anthropic"`` (``"unknown"`` for traffic we do not parse).
    ``endpoint`` is one of ``"chat.completions"``, ``"responses"``, ``"messages"``,
    ``"embeddings"`` or ``"other"``.
    """

    provider: str
    endpoint: str
    method: str
    url: str
    status: int
    streaming: bool
    model_requested: str | None = None
    model_echoed: str | None = None
    # OpenAI chat completions' ``system_fingerprint``: the backend configuration that answered.
    system_fingerprint: str | None = None
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    refusal: str | None = None
    error: ProviderError | None = None
    # Per output token: (token, logprob) pairs where the provider returned logprobs.
    logprobs: tuple[tuple[str, float], ...] | None = None
    # Embedding vectors for an embeddings call.
    embeddings: tuple[tuple[float, ...], ...] | None = None
    # Wall-clock latency measured while recording (ms); None for cassettes that lack it.
    latency_ms: float | None = None
    # The parsed response JSON (non-streaming) or the list of SSE event payloads (streaming).
    raw: Any = None
    request_json: Any = None

    @property
    def ok(self) -> bool:
        return self.error is None and 200 <= self.status < 300

    def summary(self) -> dict[str, Any]:
        """JSON-safe metrics of this call, without bodies (what results carry)."""
        return {
            "provider": self.provider,
            "endpoint": self.endpoint,
            "status": self.status,
            "streaming": self.streaming,
            "model_requested": self.model_requested,
            "model_echoed": self.model_echoed,
            "system_fingerprint": self.system_fingerprint,
            "finish_reason": self.finish_reason,
            "usage": asdict(self.usage),
            "latency_ms": self.latency_ms,
            "error": asdict(self.error) if self.error else None,
            "refusal": self.refusal is not None,
        }


# -- reading JSON from a provider: a wrong type reads as absent, never as a crash ------------------


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
