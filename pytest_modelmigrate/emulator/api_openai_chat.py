"""OpenAI chat completions, ``POST /v1/chat/completions``: JSON and SSE chunks."""

from __future__ import annotations

import time
from typing import Any

from .exchange import (
    Event,
    Reply,
    Request,
    RequestError,
    ToolDef,
    content_text,
    optional_int,
    reasoning_effort,
    require_model,
)
from .tokens import logprob_entries, split_pieces

__all__ = ["events", "parse", "render"]

_SYSTEM_ROLES = ("system", "developer")


def parse(body: dict[str, Any]) -> Request:
    model = require_model(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty array", param="messages")
    _check_history(messages)
    system: list[str] = []
    user: list[str] = []
    every: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            raise RequestError("each message must be an object", param="messages")
        text = content_text(message.get("content"))
        every.append(text)
        if message.get("role") in _SYSTEM_ROLES:
            system.append(text)
        elif message.get("role") in ("user", "tool", "function"):  # tool results, as Anthropic's
            user.append(text)
    fmt = body.get("response_format") or {}
    schema: dict[str, Any] | None = None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        found = spec.get("schema") if isinstance(spec, dict) else None
        schema = found if isinstance(found, dict) else {}
    tools = tuple(
        ToolDef(str(t["function"].get("name", "")), t["function"].get("parameters") or {})
        for t in body.get("tools") or []
        if isinstance(t, dict) and isinstance(t.get("function"), dict)
    )
    choice = body.get("tool_choice")
    forced: str | None = None
    if choice == "required":
        forced = ""
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        forced = str(choice["function"].get("name", ""))
    options = body.get("stream_options") or {}
    top = body.get("top_logprobs") or 0
    return Request(
        api="chat",
        model=model,
        prompt="\n".join(system + user),
        last_user=user[-1] if user else "",
        input_text="\n".join(every),
        messages=len(messages),
        stream=bool(body.get("stream")),
        include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
        max_tokens=optional_int(body, "max_completion_tokens", "max_tokens"),
        json_mode=isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"),
        schema=schema,
        tools=tools,
        forced_tool=forced,
        logprobs=bool(body.get("logprobs")),
        top_logprobs=top if isinstance(top, int) else 0,
        reasoning_effort=reasoning_effort(body.get("reasoning_effort"), "reasoning_effort"),
        body=body,
    )


_ASSISTANT_PARTS = ("text", "refusal")


def _check_history(messages: list[Any]) -> None:
    """Refuse a history the API refuses: content parts an assistant message cannot hold (an
    Anthropic thinking block), tool messages that answer no preceding tool call, and tool calls
    left unanswered before the next message."""
    pending: list[str] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role == "tool":
            if message.get("tool_call_id") not in pending:
                raise RequestError(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                    "message with 'tool_calls'.",
                    param=f"messages.[{i}].role",
                )
            pending.remove(message["tool_call_id"])
            continue
        if pending:
            raise RequestError(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to "
                f"each 'tool_call_id'. The following tool_call_ids did not have response messages: "
                f"{', '.join(pending)}",
                param=f"messages.[{i}].role",
            )
        content = message.get("content")
        if role == "assistant" and isinstance(content, list):
            for j, part in enumerate(content):
                kind = part.get("type") if isinstance(part, dict) else None
                if kind not in _ASSISTANT_PARTS:
                    raise RequestError(
                        f"Invalid value: '{kind}'. Supported values are: 'text' and 'refusal'.",
                        param=f"messages[{i}].content[{j}].type",
                        code="invalid_value",
                    )
        if role == "assistant":
            pending = [str(c.get("id")) for c in message.get("tool_calls") or [] if isinstance(c, dict)]


def _finish_reason(out: Reply) -> str:
    if out.tool_calls:
        return "tool_calls"
    return "length" if out.truncated else "stop"


def _usage(out: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": out.input_tokens,
        "completion_tokens": out.output_tokens,
        "total_tokens": out.input_tokens + out.output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": out.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _envelope(out: Reply, obj: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{out.ident[:29]}",
        "object": obj,
        "created": int(time.time()),
        "model": out.model,
        "service_tier": "default",
        "system_fingerprint": out.fingerprint,
    }


def _logprobs(call: Request, out: Reply, text: str | None) -> dict[str, Any] | None:
    if not call.logprobs:
        return None
    entries = logprob_entries(split_pieces(text or ""), out.confidence, call.top_logprobs)
    if out.refusal is not None:
        refusal = logprob_entries(split_pieces(out.refusal), out.confidence, call.top_logprobs)
        return {"content": None, "refusal": refusal}
    return {"content": entries, "refusal": None}


def render(call: Request, out: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": None if out.refusal is not None or (out.tool_calls and out.text is None) else out.text,
        "refusal": out.refusal,
        "annotations": [],
    }
    if out.tool_calls:
        message["tool_calls"] = [
            {
                "id": f"call_{tc.id}",
                "type": "function",
                "function": {"name": tc.name, "arguments": tc.arguments},
            }
            for tc in out.tool_calls
        ]
    body = _envelope(out, "chat.completion")
    body["choices"] = [
        {
            "index": 0,
            "message": message,
            "logprobs": _logprobs(call, out, out.text),
            "finish_reason": _finish_reason(out),
        }
    ]
    body["usage"] = _usage(out)
    return body


def events(call: Request, out: Reply) -> list[Event]:
    base = _envelope(out, "chat.completion.chunk")
    usage_key = {"usage": None} if call.include_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None = None, logprobs: Any = None) -> Event:
        return (
            None,
            {
                **base,
                "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}],
                **usage_key,
            },
        )

    result: list[Event] = [chunk({"role": "assistant", "content": "", "refusal": None})]
    if out.refusal is not None:
        for piece in split_pieces(out.refusal):
            lp = logprob_entries([piece], out.confidence, call.top_logprobs) if call.logprobs else None
            result.append(
                chunk({"refusal": piece}, logprobs={"content": None, "refusal": lp} if lp else None)
            )
    elif out.text is not None:
        for piece in split_pieces(out.text):
            lp = logprob_entries([piece], out.confidence, call.top_logprobs) if call.logprobs else None
            result.append(
                chunk({"content": piece}, logprobs={"content": lp, "refusal": None} if lp else None)
            )
    for index, tc in enumerate(out.tool_calls):
        head = {
            "index": index,
            "id": f"call_{tc.id}",
            "type": "function",
            "function": {"name": tc.name, "arguments": ""},
        }
        result.append(chunk({"tool_calls": [head]}))
        for piece in _slices(tc.arguments, 16):
            result.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    result.append(chunk({}, finish=_finish_reason(out)))
    if call.include_usage:
        result.append((None, {**base, "choices": [], "usage": _usage(out)}))
    result.append((None, "[DONE]"))
    return result


def _slices(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]
