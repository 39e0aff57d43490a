"""OpenAI Responses API (``POST /v1/responses``), whole JSON and streamed events.

Pure module: no pytest import.

- text: the ``output_text`` parts of ``message`` items, concatenated (reasoning items ignored);
- refusal: the ``refusal`` parts of ``message`` items;
- tool calls: ``function_call`` items (and ``custom_tool_call``); built-in tools such as web search
  run on OpenAI's side and are not tool calls the application answers;
- finish reason: the Responses API has none; this is ``incomplete_details.reason`` for an
  ``incomplete`` response (e.g. ``max_output_tokens``), else the response ``status``
  (``completed``, ``failed``, ...).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pytest_modelmigrate.providers import base
from pytest_modelmigrate.providers.base import Call, CassetteFormatError, ProviderError, ToolCall, Usage
from pytest_modelmigrate.providers.openai_chat import openai_error, parse_arguments

_dict, _list, _int = base.as_dict, base.as_list, base.as_int

TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


def usage_from_responses(usage: Any) -> Usage:
    u = _dict(usage)
    if not u:
        return Usage()
    return Usage(
        input_tokens=_int(u.get("input_tokens")),
        output_tokens=_int(u.get("output_tokens")),
        cached_input_tokens=_int(_dict(u.get("input_tokens_details")).get("cached_tokens")),
        reasoning_tokens=_int(_dict(u.get("output_tokens_details")).get("reasoning_tokens")),
    )


def _finish_reason(response: dict[str, Any]) -> str | None:
    reason = _dict(response.get("incomplete_details")).get("reason")
    if reason:
        return str(reason)
    status = response.get("status")
    return str(status) if status is not None else None


def _response_error(status: int, response: dict[str, Any]) -> ProviderError | None:
    err = _dict(response.get("error"))
    if not err:
        return None
    kind = err.get("code") or err.get("type")
    code = err.get("code")
    return ProviderError(
        status=status,
        type=str(kind) if kind is not None else None,
        message=str(err.get("message") or ""),
        code=str(code) if code is not None else None,
    )


def _tool_call(item: dict[str, Any]) -> ToolCall | None:
    if item.get("type") == "function_call":
        text = item.get("arguments") or ""
        return ToolCall(
            name=str(item.get("name")),
            arguments_text=text,
            arguments=parse_arguments(text),
            id=item.get("call_id") or item.get("id"),
        )
    if item.get("type") == "custom_tool_call":
        return ToolCall(
            name=str(item.get("name")),
            arguments_text=str(item.get("input") or ""),
            arguments=None,
            id=item.get("call_id") or item.get("id"),
        )
    return None


def _logprob_pairs(items: Any) -> list[tuple[str, float]]:
    return [(str(lp["token"]), float(lp["logprob"])) for lp in _list(items) if isinstance(lp, dict)]


def _read_output(output: Any) -> tuple[str, str | None, tuple[ToolCall, ...], list[tuple[str, float]] | None]:
    text: list[str] = []
    refusals: list[str] = []
    tools: list[ToolCall] = []
    logprobs: list[tuple[str, float]] | None = None
    for item in _list(output):
        item = _dict(item)
        if item.get("type") == "message":
            for part in _list(item.get("content")):
                part = _dict(part)
                if part.get("type") == "output_text":
                    text.append(str(part.get("text") or ""))
                    if part.get("logprobs"):
                        logprobs = (logprobs or []) + _logprob_pairs(part["logprobs"])
                elif part.get("type") == "refusal":
                    refusals.append(str(part.get("refusal") or ""))
            continue
        tool = _tool_call(item)
        if tool is not None:
            tools.append(tool)
    refusal = "".join(refusals) if refusals else None
    return "".join(text), refusal, tuple(tools), logprobs


def read_json(base: Call, data: Any) -> Call:
    """A whole ``response`` object."""
    body = _dict(data)
    if body.get("object") != "response" and "output" not in body:
        error = openai_error(base.status, data)
        if error is not None:
            return replace(base, error=error, raw=data)
        raise CassetteFormatError("Responses API JSON has neither 'output' nor an error")
    text, refusal, tools, logprobs = _read_output(body.get("output"))
    return replace(
        base,
        model_echoed=body.get("model"),
        text=text,
        tool_calls=tools,
        finish_reason=_finish_reason(body),
        usage=usage_from_responses(body.get("usage")),
        refusal=refusal,
        error=_response_error(base.status, body),
        logprobs=tuple(logprobs) if logprobs is not None else None,
        raw=data,
    )


def read_stream(base: Call, payloads: list[Any]) -> Call:
    """The event payloads of a Responses stream (``response.created`` ... ``response.completed``).

    Text, refusal, tool-call arguments and logprobs are accumulated from the deltas; the model,
    usage and status come from the terminal event's response.
    """
    text: list[str] = []
    refusal: list[str] = []
    saw_refusal = False
    logprobs: list[tuple[str, float]] | None = None
    tools: dict[str, dict[str, Any]] = {}  # by item id, in the order the items were added
    model: str | None = None
    final: dict[str, Any] = {}
    error: ProviderError | None = None
    for payload in payloads:
        event = _dict(payload)
        kind = event.get("type")
        response = _dict(event.get("response"))
        if response.get("model"):
            model = response["model"]
        if kind == "response.output_text.delta":
            text.append(str(event.get("delta") or ""))
            if event.get("logprobs"):
                logprobs = (logprobs or []) + _logprob_pairs(event["logprobs"])
        elif kind == "response.refusal.delta":
            saw_refusal = True
            refusal.append(str(event.get("delta") or ""))
        elif kind == "response.output_item.added":
            item = _dict(event.get("item"))
            if item.get("type") in ("function_call", "custom_tool_call"):
                tools[str(item.get("id"))] = {
                    "item": item,
                    "arguments": [str(item.get("arguments") or item.get("input") or "")],
                }
        elif kind in ("response.function_call_arguments.delta", "response.custom_tool_call_input.delta"):
            slot = tools.get(str(event.get("item_id")))
            if slot is None:
                raise CassetteFormatError(
                    f"{kind} for an item that was never added: {event.get('item_id')!r}"
                )
            slot["arguments"].append(str(event.get("delta") or ""))
        elif kind == "response.output_item.done":
            item = _dict(event.get("item"))
            slot = tools.get(str(item.get("id")))
            if slot is not None:  # the finished item carries the whole arguments text
                slot["item"] = item
                slot["arguments"] = [str(item.get("arguments") or item.get("input") or "")]
        elif kind in TERMINAL_EVENTS:
            final = response
        elif kind == "error":
            code = event.get("code") or event.get("type")
            error = ProviderError(
                status=base.status,
                type=str(code),
                message=str(event.get("message") or ""),
                code=str(event["code"]) if event.get("code") is not None else None,
            )
    if not final and error is None:
        raise CassetteFormatError(
            "Responses stream ended without response.completed, response.incomplete, response.failed or error"
        )
    tool_calls = []
    for slot in tools.values():
        tool = _tool_call(
            {**slot["item"], "arguments": "".join(slot["arguments"]), "input": "".join(slot["arguments"])}
        )
        if tool is not None:
            tool_calls.append(tool)
    if error is None:
        error = _response_error(base.status, final)
    return replace(
        base,
        model_echoed=model,
        text="".join(text),
        tool_calls=tuple(tool_calls),
        finish_reason=_finish_reason(final) if final else None,
        usage=usage_from_responses(final.get("usage")),
        refusal="".join(refusal) if saw_refusal else None,
        error=error,
        logprobs=tuple(logprobs) if logprobs is not None else None,
        raw=payloads,
    )
