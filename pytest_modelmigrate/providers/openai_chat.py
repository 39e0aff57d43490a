"""OpenAI chat completions (``POST /v1/chat/completions``), whole JSON and streamed chunks.

Pure module: no pytest import. Only the first choice (``index == 0``) is read: ``n > 1`` is not
what prompt tests exercise, and the SDK helpers read ``choices[0]`` too.

Tool calls are ``message.tool_calls``; a response to the legacy ``functions=`` parameter has
``message.function_call`` instead (finish reason ``function_call``), read as one tool call with
no id. A 200 body that is an error object (``{"error": {...}}``, as some proxies and Azure's
content filter send) is read as an error, with its ``code``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from pytest_modelmigrate.providers import base
from pytest_modelmigrate.providers.base import Call, CassetteFormatError, ProviderError, ToolCall, Usage

_dict, _list, _int = base.as_dict, base.as_list, base.as_int


def parse_arguments(text: str) -> Any:
    """The parsed JSON of a tool call's arguments, or None where the text is not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return None


def usage_from_chat(usage: Any) -> Usage:
    """``usage`` of a chat completion (also used for embeddings, which report prompt tokens only)."""
    u = _dict(usage)
    if not u:
        return Usage()
    return Usage(
        input_tokens=_int(u.get("prompt_tokens")),
        output_tokens=_int(u.get("completion_tokens")),
        cached_input_tokens=_int(_dict(u.get("prompt_tokens_details")).get("cached_tokens")),
        reasoning_tokens=_int(_dict(u.get("completion_tokens_details")).get("reasoning_tokens")),
    )


def openai_error(status: int, body: Any) -> ProviderError | None:
    """The ``{"error": {...}}`` body OpenAI sends with a 4xx/5xx (and in a failed stream)."""
    err = _dict(body).get("error")
    if isinstance(err, str):
        return ProviderError(status=status, type=None, message=err)
    err = _dict(err)
    if not err:
        return None
    err_type = err.get("type") or err.get("code")
    code = err.get("code")
    return ProviderError(
        status=status,
        type=str(err_type) if err_type is not None else None,
        message=str(err.get("message") or ""),
        code=str(code) if code is not None else None,
    )


def _logprobs(choice: dict[str, Any]) -> list[tuple[str, float]] | None:
    content = _dict(choice.get("logprobs")).get("content")
    if not isinstance(content, list):
        return None
    return [(str(item["token"]), float(item["logprob"])) for item in content if isinstance(item, dict)]


def _function_call(message: dict[str, Any]) -> tuple[ToolCall, ...]:
    """The legacy ``message.function_call`` (``functions=`` requests), read as a tool call."""
    function = message.get("function_call")
    if not isinstance(function, dict) or not function.get("name"):
        return ()
    text = function.get("arguments") or ""
    return (ToolCall(name=str(function["name"]), arguments_text=text, arguments=parse_arguments(text)),)


def _tool_call(item: dict[str, Any]) -> ToolCall:
    if item.get("type") == "custom":
        custom = _dict(item.get("custom"))
        text = str(custom.get("input") or "")
        return ToolCall(name=str(custom.get("name")), arguments_text=text, arguments=None, id=item.get("id"))
    function = _dict(item.get("function"))
    text = function.get("arguments") or ""
    return ToolCall(
        name=str(function.get("name")),
        arguments_text=text,
        arguments=parse_arguments(text),
        id=item.get("id"),
    )


def _first_choice(choices: Any) -> dict[str, Any]:
    for choice in _list(choices):
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return choice
    return {}


def _fingerprint(body: dict[str, Any]) -> str | None:
    value = body.get("system_fingerprint")
    return value if isinstance(value, str) and value else None


def read_json(base: Call, data: Any) -> Call:
    """A whole ``chat.completion`` object."""
    body = _dict(data)
    if not body or not isinstance(body.get("choices"), list):
        error = openai_error(base.status, data)
        if error is not None:
            return replace(base, error=error, raw=data)
        raise CassetteFormatError("chat completion JSON has no 'choices' list")
    choice = _first_choice(body["choices"])
    message = _dict(choice.get("message"))
    content = message.get("content")
    logprobs = _logprobs(choice)
    return replace(
        base,
        model_echoed=body.get("model"),
        system_fingerprint=_fingerprint(body),
        text=content if isinstance(content, str) else "",
        tool_calls=tuple(_tool_call(t) for t in _list(message.get("tool_calls")) if isinstance(t, dict))
        or _function_call(message),
        finish_reason=choice.get("finish_reason"),
        usage=usage_from_chat(body.get("usage")),
        refusal=message.get("refusal") or None,
        logprobs=tuple(logprobs) if logprobs is not None else None,
        raw=data,
    )


def read_stream(base: Call, payloads: list[Any]) -> Call:
    """The ``data:`` payloads of a ``chat.completion.chunk`` stream (``[DONE]`` already removed)."""
    text: list[str] = []
    refusal: list[str] = []
    saw_refusal = False
    logprobs: list[tuple[str, float]] | None = None
    tools: dict[int, dict[str, Any]] = {}
    legacy_call: dict[str, dict[str, Any]] = {}  # a streamed legacy ``function_call``
    finish_reason: str | None = None
    model: str | None = None
    fingerprint: str | None = None
    usage = Usage()
    for chunk in payloads:
        chunk = _dict(chunk)
        error = openai_error(base.status, chunk)
        if error is not None:
            return replace(base, error=error, raw=payloads, model_echoed=model)
        if model is None and chunk.get("model"):
            model = chunk["model"]
        fingerprint = fingerprint or _fingerprint(chunk)
        if chunk.get("usage"):
            usage = usage_from_chat(chunk["usage"])
        choice = _first_choice(chunk.get("choices"))
        if not choice:
            continue
        delta = _dict(choice.get("delta"))
        if isinstance(delta.get("content"), str):
            text.append(delta["content"])
        if isinstance(delta.get("refusal"), str):
            saw_refusal = True
            refusal.append(delta["refusal"])
        chunk_logprobs = _logprobs(choice)
        if chunk_logprobs is not None:
            logprobs = (logprobs or []) + chunk_logprobs
        legacy = _dict(delta.get("function_call"))
        if legacy:
            slot = legacy_call.setdefault("call", {"arguments": []})
            if legacy.get("name"):
                slot["name"] = legacy["name"]
            if isinstance(legacy.get("arguments"), str):
                slot["arguments"].append(legacy["arguments"])
        for item in _list(delta.get("tool_calls")):
            item = _dict(item)
            slot = tools.setdefault(int(item.get("index", len(tools))), {"arguments": []})
            if item.get("id"):
                slot["id"] = item["id"]
            function = _dict(item.get("function"))
            if function.get("name"):
                slot["name"] = function["name"]
            if isinstance(function.get("arguments"), str):
                slot["arguments"].append(function["arguments"])
        if choice.get("finish_reason"):
            finish_reason = choice["finish_reason"]
    tool_calls = []
    slots = [slot for _, slot in sorted(tools.items())] or list(legacy_call.values())
    for slot in slots:
        arguments_text = "".join(slot["arguments"])
        tool_calls.append(
            ToolCall(
                name=str(slot.get("name")),
                arguments_text=arguments_text,
                arguments=parse_arguments(arguments_text),
                id=slot.get("id"),
            )
        )
    return replace(
        base,
        model_echoed=model,
        system_fingerprint=fingerprint,
        text="".join(text),
        tool_calls=tuple(tool_calls),
        finish_reason=finish_reason,
        usage=usage,
        refusal="".join(refusal) if saw_refusal and "".join(refusal) else None,
        logprobs=tuple(logprobs) if logprobs is not None else None,
        raw=payloads,
    )


def stream_finished(payloads: list[Any], saw_done: bool) -> bool:
    """Whether a chunk stream reached its end (``[DONE]`` or a finish reason)."""
    if saw_done:
        return True
    return any(_first_choice(_dict(p).get("choices")).get("finish_reason") for p in payloads) or any(
        "error" in _dict(p) for p in payloads
    )
