"""OpenAI Responses, ``POST /v1/responses``: JSON and the SSE event sequence."""

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
    signature_valid,
)
from .tokens import logprob_entries, split_pieces

__all__ = ["events", "parse", "render"]

_LOGPROBS_INCLUDE = "message.output_text.logprobs"


def parse(body: dict[str, Any]) -> Request:
    model = require_model(body)
    raw_input = body.get("input")
    system: list[str] = []
    user: list[str] = []
    every: list[str] = []
    messages = 0
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        system.append(instructions)
        every.append(instructions)
    if isinstance(raw_input, str):
        user.append(raw_input)
        every.append(raw_input)
        messages = 1
    elif isinstance(raw_input, list):
        called: set[str] = set()
        for item in raw_input:
            if not isinstance(item, dict):
                raise RequestError("each input item must be an object", param="input")
            messages += 1
            _check_item(
                item, called, stateful=bool(body.get("previous_response_id") or body.get("conversation"))
            )
            if "role" in item:
                text = content_text(item.get("content"))
                every.append(text)
                if item["role"] in ("system", "developer"):
                    system.append(text)
                elif item["role"] == "user":
                    user.append(text)
            elif isinstance(item.get("output"), str):  # a function_call_output: matched like a user text
                every.append(item["output"])
                user.append(item["output"])
    else:
        raise RequestError("'input' must be a string or an array of input items", param="input")
    fmt = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
    fmt = fmt if isinstance(fmt, dict) else {}
    schema = fmt.get("schema") if fmt.get("type") == "json_schema" else None
    tools = tuple(
        ToolDef(str(t.get("name", "")), t.get("parameters") or {})
        for t in body.get("tools") or []
        if isinstance(t, dict) and t.get("type") == "function"
    )
    choice = body.get("tool_choice")
    forced: str | None = None
    if choice == "required":
        forced = ""
    elif isinstance(choice, dict) and choice.get("type") == "function":
        forced = str(choice.get("name", ""))
    include = body.get("include") or []
    top = body.get("top_logprobs") or 0
    reasoning = body.get("reasoning")
    if reasoning is not None and not isinstance(reasoning, dict):
        raise RequestError("Invalid type for 'reasoning': expected an object.", param="reasoning")
    reasoning = reasoning or {}
    summary = reasoning.get("summary") or reasoning.get("generate_summary")
    if summary is not None and summary not in ("auto", "concise", "detailed"):
        raise RequestError(
            f"Invalid value: {summary!r}. Supported values are: 'auto', 'concise', and 'detailed'.",
            param="reasoning.summary",
            code="invalid_value",
        )
    return Request(
        api="responses",
        model=model,
        prompt="\n".join(system + user),
        last_user=user[-1] if user else "",
        input_text="\n".join(every),
        messages=max(messages, 1),
        stream=bool(body.get("stream")),
        max_tokens=optional_int(body, "max_output_tokens"),
        json_mode=fmt.get("type") in ("json_object", "json_schema"),
        schema=(schema if isinstance(schema, dict) else {}) if fmt.get("type") == "json_schema" else None,
        tools=tools,
        forced_tool=forced,
        logprobs=isinstance(include, list) and _LOGPROBS_INCLUDE in include,
        top_logprobs=top if isinstance(top, int) else 0,
        reasoning_effort=reasoning_effort(reasoning.get("effort"), "reasoning.effort"),
        reasoning_summary=summary,
        body=body,
    )


def _check_item(item: dict[str, Any], called: set[str], *, stateful: bool) -> None:
    """Refuse input items the API refuses: a reasoning item whose ``encrypted_content`` the
    emulator did not make (another provider's or model's), a function call output that answers
    no earlier function call (unless the earlier turns live on the server: previous_response_id)."""
    kind = item.get("type")
    if kind == "reasoning" and "encrypted_content" in item and not signature_valid(item["encrypted_content"]):
        raise RequestError(
            f"The encrypted content for item {item.get('id') or 'reasoning'} could not be verified.",
            param="input",
            code="invalid_encrypted_content",
        )
    if kind == "function_call":
        called.add(str(item.get("call_id")))
    elif kind == "function_call_output" and not stateful and str(item.get("call_id")) not in called:
        raise RequestError(
            f"No tool call found for function call output with call_id {item.get('call_id')}.",
            param="input",
        )


def _reasoning_item(call: Request, out: Reply, *, done: bool) -> dict[str, Any] | None:
    """The ``reasoning`` output item a reasoning model puts before its message (None otherwise)."""
    if out.thinking is None:
        return None
    item: dict[str, Any] = {"id": f"rs_{out.ident[:48]}", "type": "reasoning", "summary": []}
    if done and call.reasoning_summary is not None:
        item["summary"] = [{"type": "summary_text", "text": out.thinking}]
    include = call.body.get("include") or []
    if isinstance(include, list) and "reasoning.encrypted_content" in include:
        item["encrypted_content"] = out.signature
    return item


def _message_item(call: Request, out: Reply, *, done: bool) -> dict[str, Any] | None:
    if out.refusal is not None:
        part: dict[str, Any] = {"type": "refusal", "refusal": out.refusal if done else ""}
    elif out.text is not None:
        logprobs = (
            logprob_entries(split_pieces(out.text), out.confidence, call.top_logprobs)
            if call.logprobs
            else []
        )
        part = {"type": "output_text", "text": out.text, "annotations": [], "logprobs": logprobs}
    else:
        return None
    status = ("incomplete" if out.truncated else "completed") if done else "in_progress"
    return {
        "id": f"msg_{out.ident[:40]}",
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [part] if done else [],
    }


def _function_items(out: Reply, *, done: bool) -> list[dict[str, Any]]:
    return [
        {
            "id": f"fc_{tc.id}",
            "type": "function_call",
            "status": "completed" if done else "in_progress",
            "arguments": tc.arguments if done else "",
            "call_id": f"call_{tc.id}",
            "name": tc.name,
        }
        for tc in out.tool_calls
    ]


def _response(call: Request, out: Reply, *, done: bool) -> dict[str, Any]:
    body = call.body
    output: list[dict[str, Any]] = []
    if done:
        reasoning = _reasoning_item(call, out, done=True)
        message = _message_item(call, out, done=True)
        output = [item for item in (reasoning, message) if item] + _function_items(out, done=True)
    text_config = body.get("text") if isinstance(body.get("text"), dict) else {"format": {"type": "text"}}
    return {
        "id": f"resp_{out.ident[:48]}",
        "object": "response",
        "created_at": int(time.time()),
        "status": ("incomplete" if out.truncated else "completed") if done else "in_progress",
        "background": False,
        "completed_at": int(time.time()) if done and not out.truncated else None,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if done and out.truncated else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") or {},
        "model": out.model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": (
            {"effort": call.reasoning_effort or "medium", "summary": call.reasoning_summary}
            if out.thinking is not None
            else {"effort": None, "summary": None}
        ),
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": text_config,
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_logprobs": body.get("top_logprobs", 0),
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": _usage(out) if done else None,
        "user": None,
    }


def _usage(out: Reply) -> dict[str, Any]:
    return {
        "input_tokens": out.input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": out.output_tokens,
        "output_tokens_details": {"reasoning_tokens": out.reasoning_tokens},
        "total_tokens": out.input_tokens + out.output_tokens,
    }


def render(call: Request, out: Reply) -> dict[str, Any]:
    return _response(call, out, done=True)


def events(call: Request, out: Reply) -> list[Event]:
    result: list[Event] = []

    def emit(kind: str, **fields: Any) -> None:
        result.append((kind, {"type": kind, "sequence_number": len(result), **fields}))

    emit("response.created", response=_response(call, out, done=False))
    emit("response.in_progress", response=_response(call, out, done=False))
    index = 0
    reasoning = _reasoning_item(call, out, done=True)
    if reasoning is not None:
        emit("response.output_item.added", output_index=index, item=_reasoning_item(call, out, done=False))
        for summary_index, part in enumerate(reasoning["summary"]):
            where = {"item_id": reasoning["id"], "output_index": index, "summary_index": summary_index}
            emit("response.reasoning_summary_part.added", **where, part={**part, "text": ""})
            for piece in split_pieces(part["text"]):
                emit("response.reasoning_summary_text.delta", **where, delta=piece)
            emit("response.reasoning_summary_text.done", **where, text=part["text"])
            emit("response.reasoning_summary_part.done", **where, part=part)
        emit("response.output_item.done", output_index=index, item=reasoning)
        index += 1
    message = _message_item(call, out, done=True)
    if message is not None:
        item_id = message["id"]
        emit("response.output_item.added", output_index=index, item=_message_item(call, out, done=False))
        part = message["content"][0]
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        if part["type"] == "refusal":
            emit("response.content_part.added", **where, part={"type": "refusal", "refusal": ""})
            for piece in split_pieces(part["refusal"]):
                emit("response.refusal.delta", **where, delta=piece)
            emit("response.refusal.done", **where, refusal=part["refusal"])
        else:
            emit("response.content_part.added", **where, part={**part, "text": "", "logprobs": []})
            pieces = split_pieces(part["text"])
            for i, piece in enumerate(pieces):
                logprobs = [part["logprobs"][i]] if part["logprobs"] else []
                emit("response.output_text.delta", **where, delta=piece, logprobs=logprobs)
            emit("response.output_text.done", **where, text=part["text"], logprobs=part["logprobs"])
        emit("response.content_part.done", **where, part=part)
        emit("response.output_item.done", output_index=index, item=message)
        index += 1
    for added, done in zip(_function_items(out, done=False), _function_items(out, done=True), strict=True):
        emit("response.output_item.added", output_index=index, item=added)
        for start in range(0, len(done["arguments"]), 16):
            emit(
                "response.function_call_arguments.delta",
                item_id=done["id"],
                output_index=index,
                delta=done["arguments"][start : start + 16],
            )
        emit(
            "response.function_call_arguments.done",
            item_id=done["id"],
            output_index=index,
            arguments=done["arguments"],
        )
        emit("response.output_item.done", output_index=index, item=done)
        index += 1
    final = "response.incomplete" if out.truncated else "response.completed"
    emit(final, response=_response(call, out, done=True))
    return result
