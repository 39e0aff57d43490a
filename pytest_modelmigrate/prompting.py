"""A direct prompt client for tests that call a prompt rather than application code.

It sends through the official SDK (OpenAI chat completions or Anthropic messages), so inside a
test the traffic is recorded in the test's cassette. The provider is chosen from the model name
by an ordered list of ``fnmatch`` patterns (default: ``claude*`` → anthropic, else openai).
Pure module: no pytest import; the SDKs are imported on first use.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_modelmigrate.errors import ChecksConfigError

if TYPE_CHECKING:
    from pytest_modelmigrate.providers.base import Call, Usage

__all__ = [
    "DEFAULT_PROVIDER_PATTERNS",
    "PROVIDERS",
    "PromptClient",
    "PromptResponse",
    "resolve_provider",
]

PROVIDERS = ("openai", "anthropic")
DEFAULT_PROVIDER_PATTERNS: tuple[tuple[str, str], ...] = (("claude*", "anthropic"), ("*", "openai"))
_BASE_URL_ENV = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL"}
_JSON_INSTRUCTION = "Reply with a single JSON value and nothing else: no code fences, no commentary."


def resolve_provider(model: str, patterns: Sequence[tuple[str, str]] = DEFAULT_PROVIDER_PATTERNS) -> str:
    """The provider of ``model``: the first matching ``(pattern, provider)`` wins (case-insensitive)."""
    for pattern, provider in patterns:
        if fnmatch.fnmatchcase(model.lower(), pattern.lower()):
            if provider not in PROVIDERS:
                raise ChecksConfigError(f"prompt: unknown provider {provider!r} for pattern {pattern!r}")
            return provider
    raise ChecksConfigError(f"prompt: no provider pattern matches model {model!r}")


@dataclass(frozen=True)
class PromptResponse:
    """What :meth:`PromptClient.ask` returns. Pass it to any check (it carries ``call``)."""

    text: str
    json: Any
    usage: Usage
    call: Call
    raw: Any


def _to_call(raw: Any, model: str, request: Mapping[str, Any]) -> Call:
    from pytest_modelmigrate.providers.parse import call_from_response_object

    call = call_from_response_object(raw)
    return dataclasses.replace(call, model_requested=model, request_json=dict(request))


def _accepts(method: Any, name: str) -> bool:
    """Whether an SDK method takes the keyword ``name`` (SDK versions add and drop parameters)."""
    import inspect

    try:
        parameters = inspect.signature(method).parameters
    except (TypeError, ValueError):
        return True  # no signature to read: send it, and let the SDK say
    return name in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def _openai_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    if tool.get("type") == "function" and "function" in tool:
        return dict(tool)
    params = tool.get("parameters") or tool.get("input_schema") or {"type": "object", "properties": {}}
    fn = {"name": tool["name"], "parameters": params}
    if tool.get("description"):
        fn["description"] = tool["description"]
    return {"type": "function", "function": fn}


def _anthropic_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    if "input_schema" in tool:
        return dict(tool)
    fn = tool.get("function") if tool.get("type") == "function" else tool
    assert isinstance(fn, Mapping)
    out = {"name": fn["name"], "input_schema": fn.get("parameters") or {"type": "object", "properties": {}}}
    if fn.get("description"):
        out["description"] = fn["description"]
    return out


class PromptClient:
    """Ask one model a prompt through its provider's official SDK.

    ``provider`` overrides the pattern mapping; ``base_url`` defaults to ``OPENAI_BASE_URL`` /
    ``ANTHROPIC_BASE_URL`` (the SDK reads them too) so OpenAI-compatible servers work; ``client``
    injects a ready SDK client. The SDK client is built on first use.
    """

    def __init__(
        self,
        model: str,
        provider: str | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        provider_patterns: Sequence[tuple[str, str]] = DEFAULT_PROVIDER_PATTERNS,
        client: Any = None,
        default_max_tokens: int = 1024,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> None:
        if not model:
            raise ChecksConfigError("prompt: no model given")
        self.model = model
        self.provider = provider or resolve_provider(model, provider_patterns)
        if self.provider not in PROVIDERS:
            raise ChecksConfigError(
                f"prompt: unknown provider {self.provider!r} (expected one of {PROVIDERS})"
            )
        self.base_url = base_url or os.environ.get(_BASE_URL_ENV[self.provider]) or None
        self._api_key = api_key
        self._client = client
        self.default_max_tokens = default_max_tokens
        self._timeout = timeout
        self._max_retries = max_retries

    def __repr__(self) -> str:
        return f"PromptClient(model={self.model!r}, provider={self.provider!r}, base_url={self.base_url!r})"

    @property
    def client(self) -> Any:
        """The SDK client (``openai.OpenAI`` or ``anthropic.Anthropic``), built on first use."""
        if self._client is None:
            kwargs: dict[str, Any] = {"base_url": self.base_url, "api_key": self._api_key}
            if self._timeout is not None:
                kwargs["timeout"] = self._timeout
            if self._max_retries is not None:
                kwargs["max_retries"] = self._max_retries
            try:
                if self.provider == "anthropic":
                    import anthropic

                    self._client = anthropic.Anthropic(**kwargs)
                else:
                    import openai

                    self._client = openai.OpenAI(**kwargs)
            except ImportError as exc:
                raise ChecksConfigError(
                    f"prompt: model {self.model!r} needs the {self.provider} SDK "
                    f"(pip install {self.provider})"
                ) from exc
        return self._client

    def ask(
        self,
        prompt: str | Sequence[Mapping[str, Any]],
        *,
        system: str | None = None,
        json: bool = False,
        schema: Mapping[str, Any] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        **extra: Any,
    ) -> PromptResponse:
        """Send one request. ``prompt`` is a user message or a list of ``{"role", "content"}`` messages.

        ``json=True`` asks for a JSON reply (OpenAI ``json_object``; Anthropic: an instruction in
        the system prompt); ``schema`` asks for structured output (OpenAI ``json_schema``
        response format, Anthropic ``output_config.format``); in both cases ``.json`` is the
        leniently parsed reply (``None`` when it does not parse). ``tools`` take OpenAI function
        form or ``{"name", "description", "parameters"|"input_schema"}``. ``extra`` goes to the SDK.
        """
        messages: list[dict[str, Any]] = (
            [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
        )
        if self.provider == "anthropic":
            params = self._anthropic_params(messages, system, json, schema, tools, max_tokens, temperature)
            params.update(extra)
            raw = self.client.messages.create(**params)
        else:
            params = self._openai_params(messages, system, json, schema, tools, max_tokens, temperature)
            params.update(extra)
            raw = self.client.chat.completions.create(**params)
        call = _to_call(raw, self.model, params)
        parsed: Any = None
        if json or schema is not None:
            from pytest_modelmigrate.jsontext import extract_json

            found = extract_json(call.text)
            parsed = found[0] if found is not None else None
        return PromptResponse(text=call.text, json=parsed, usage=call.usage, call=call, raw=raw)

    def _openai_params(
        self,
        messages: list[dict[str, Any]],
        system: str | None,
        json: bool,
        schema: Mapping[str, Any] | None,
        tools: Sequence[Mapping[str, Any]] | None,
        max_tokens: int | None,
        temperature: float | None,
    ) -> dict[str, Any]:
        if system is not None:
            messages = [{"role": "system", "content": system}, *messages]
        params: dict[str, Any] = {"model": self.model, "messages": messages}
        if schema is not None:
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": str(schema.get("title") or "output"), "schema": dict(schema)},
            }
        elif json:
            params["response_format"] = {"type": "json_object"}
        if tools:
            params["tools"] = [_openai_tool(t) for t in tools]
        if max_tokens is not None:
            params["max_completion_tokens"] = max_tokens
        if temperature is not None:
            params["temperature"] = temperature
        return params

    def _anthropic_params(
        self,
        messages: list[dict[str, Any]],
        system: str | None,
        json: bool,
        schema: Mapping[str, Any] | None,
        tools: Sequence[Mapping[str, Any]] | None,
        max_tokens: int | None,
        temperature: float | None,
    ) -> dict[str, Any]:
        system_parts = [m["content"] for m in messages if m.get("role") == "system"]
        messages = [m for m in messages if m.get("role") != "system"]
        if system is not None:
            system_parts.insert(0, system)
        if json and schema is None:
            system_parts.append(_JSON_INSTRUCTION)
        params: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens if max_tokens is not None else self.default_max_tokens,
        }
        if system_parts:
            params["system"] = "\n\n".join(str(p) for p in system_parts)
        if schema is not None:
            params["output_config"] = {"format": {"type": "json_schema", "schema": dict(schema)}}
        if tools:
            params["tools"] = [_anthropic_tool(t) for t in tools]
        if temperature is not None and _accepts(self.client.messages.create, "temperature"):
            # anthropic 2.x's messages.create takes no temperature: the judge's 0.0 is then left out
            params["temperature"] = temperature
        return params
