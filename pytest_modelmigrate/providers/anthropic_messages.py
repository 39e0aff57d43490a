"""Anthropic messages (``POST /v1/messages``), whole JSON and streamed events.

Pure module: no pytest import.

- text: the ``text`` content blocks, concatenated (``thinking`` blocks ignored);
- tool calls: ``tool_use`` blocks (server tools such as web search run on Anthropic's side and
  are not tool calls the application answers); ``arguments_text`` is the JSON the model streamed,
  or ``json.dumps(input)`` for a whole message;
- usage: ``input_tokens`` as Anthropic reports it (cache reads and writes are *not* included
  there, unlike OpenAI's ``prompt_tokens``); ``cached_input_tokens`` = cache read + cache write;
  streamed: the ``message_start`` usage, each field overwritten by the last ``message_delta`` that
  reports it (the deltas carry cumulative totals). With server tools (web search, code execution)
  the final ``message_delta``'s ``input_tokens`` is the total over the server-side turns, larger
  than ``message_start``'s: that is what the anthropic SDK's ``get_final_message().usage`` reports
  (its stream accumulation overwrites the same way) and what is billed, so it is reported here;
- refusal: ``stop_reason == "refusal"``: the text produced, or :data:`REFUSAL_MARKER` if none.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from pytest_modelmigrate.providers import base
from pytest_modelmigrate.providers.base import Call, CassetteFormatError, ProviderError, ToolCall, Usage
from pytest_modelmigrate.providers.openai_chat import openai_error, parse_arguments

_dict, _list, _int = base.as_dict, base.as_list, base.as_int

REFUSAL_MARKER = "[refused: stop_reason=refusal]"


def usage_from_anthropic(usage: Any) -> Usage:
    u = _dict(usage)
    if not u:
        return Usage()
    read = _int(u.get("cache_read_input_tokens"))
    written = _int(u.get("cache_creation_input_tokens"))
    cached = None if read is None and written is None else (read or 0) + (written or 0)
    return Usage(
        input_tokens=_int(u.get("input_tokens")),
        output_tokens=_int(u.get("output_tokens")),
        cached_input_tokens=cached,
        reasoning_tokens=None,
    )


def anthropic_error(status: int, body: Any) -> ProviderError | None:
    """``{"type": "error", "error": {"type": ..., "message": ...}}``.

    An ``{"error": {...}}`` without the top-level ``type`` (what an OpenAI-compatible proxy in
    front of Claude sends) is read too, OpenAI's way (``type``, else ``code``).
    """
    data = _dict(body)
    err = _dict(data.get("error"))
    if not err:
        return None
    if data.get("type") != "error":
        return openai_error(status, body)
    err_type = err.get("type")
    code = err.get("code")
    return ProviderError(
        status=status,
        type=str(err_type) if err_type is not None else None,
        message=str(err.get("message") or ""),
        code=str(code) if code is not None else None,
    )


def _refusal(stop_reason: Any, text: str) -> str | None:
    if stop_reason != "refusal":
        return None
    return text or REFUSAL_MARKER


def read_json(base: Call, data: Any) -> Call:
    """A whole ``message`` object."""
    body = _dict(data)
    if not isinstance(body.get("content"), list):
        error = anthropic_error(base.status, data)
        if error is not None:
            return replace(base, error=error, raw=data)
        raise CassetteFormatError("Anthropic message JSON has no 'content' list")
    text: list[str] = []
    tools: list[ToolCall] = []
    for block in body["content"]:
        block = _dict(block)
        if block.get("type") == "text":
            text.append(str(block.get("text") or ""))
        elif block.get("type") == "tool_use":
            arguments = block.get("input")
            tools.append(
                ToolCall(
                    name=str(block.get("name")),
                    arguments_text=json.dumps(arguments),
                    arguments=arguments,
                    id=block.get("id"),
                )
            )
    joined = "".join(text)
    return replace(
        base,
        model_echoed=body.get("model"),
        text=joined,
        tool_calls=tuple(tools),
        finish_reason=body.get("stop_reason"),
        usage=usage_from_anthropic(body.get("usage")),
        refusal=_refusal(body.get("stop_reason"), joined),
        raw=data,
    )


def read_stream(base: Call, payloads: list[Any]) -> Call:
    """The event payloads of a messages stream (``message_start`` ... ``message_stop``)."""
    blocks: dict[int, dict[str, Any]] = {}
    usage: dict[str, Any] = {}
    model: str | None = None
    stop_reason: str | None = None
    started = finished = False
    for payload in payloads:
        event = _dict(payload)
        kind = event.get("type")
        if kind == "message_start":
            started = True
            message = _dict(event.get("message"))
            model = message.get("model")
            usage.update({k: v for k, v in _dict(message.get("usage")).items() if v is not None})
            stop_reason = message.get("stop_reason") or stop_reason
        elif kind == "content_block_start":
            block = dict(_dict(event.get("content_block")))
            block["_parts"] = []
            blocks[int(event.get("index", len(blocks)))] = block
        elif kind == "content_block_delta":
            index = int(event.get("index", -1))
            if index not in blocks:
                raise CassetteFormatError(f"content_block_delta for block {index}, which never started")
            delta = _dict(event.get("delta"))
            if delta.get("type") == "text_delta":
                blocks[index]["_parts"].append(str(delta.get("text") or ""))
            elif delta.get("type") == "input_json_delta":
                blocks[index]["_parts"].append(str(delta.get("partial_json") or ""))
        elif kind == "message_delta":
            stop_reason = _dict(event.get("delta")).get("stop_reason") or stop_reason
            usage.update({k: v for k, v in _dict(event.get("usage")).items() if v is not None})
        elif kind == "message_stop":
            finished = True
        elif kind == "error":
            return replace(base, model_echoed=model, error=anthropic_error(base.status, event), raw=payloads)
    if not started:
        raise CassetteFormatError("Anthropic stream has no message_start event")
    if not finished and stop_reason is None:
        raise CassetteFormatError("Anthropic stream ended before message_delta/message_stop")
    text: list[str] = []
    tools: list[ToolCall] = []
    for _, block in sorted(blocks.items()):
        if block.get("type") == "text":
            text.append(str(block.get("text") or "") + "".join(block["_parts"]))
        elif block.get("type") == "tool_use":
            streamed = "".join(block["_parts"])
            arguments_text = streamed or json.dumps(block.get("input") or {})
            tools.append(
                ToolCall(
                    name=str(block.get("name")),
                    arguments_text=arguments_text,
                    arguments=parse_arguments(arguments_text),
                    id=block.get("id"),
                )
            )
    joined = "".join(text)
    return replace(
        base,
        model_echoed=model,
        text=joined,
        tool_calls=tuple(tools),
        finish_reason=stop_reason,
        usage=usage_from_anthropic(usage),
        refusal=_refusal(stop_reason, joined),
        raw=payloads,
    )
