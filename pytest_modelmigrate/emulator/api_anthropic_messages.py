"""Anthropic messages, ``POST /v1/messages``: JSON and the SSE event sequence."""

from __future__ import annotations

import json
import re
from typing import Any

from .exchange import (
    Event,
    Reply,
    Request,
    RequestError,
    ToolDef,
    content_text,
    optional_int,
    require_model,
    signature_valid,
)
from .tokens import split_pieces

__all__ = ["events", "parse", "render"]


def parse(body: dict[str, Any], *, count_only: bool = False) -> Request:
    model = require_model(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(
            "messages: Field required" if messages is None else "messages: must be a non-empty list"
        )
    max_tokens = optional_int(body, "max_tokens")
    if max_tokens is None and not count_only:
        raise RequestError("max_tokens: Field required")
    _check_history(messages)
    system_text = content_text(body.get("system"))
    user: list[str] = []
    every: list[str] = [system_text] if system_text else []
    for message in messages:
        if not isinstance(message, dict):
            raise RequestError("messages: each message must be an object")
        text = content_text(message.get("content"))
        every.append(text)
        if message.get("role") == "user":
            user.append(text)
    config = body.get("output_config")
    fmt = (config.get("format") if isinstance(config, dict) else None) or body.get("output_format")
    schema = fmt.get("schema") if isinstance(fmt, dict) and fmt.get("type") == "json_schema" else None
    tools = tuple(
        ToolDef(str(t.get("name", "")), t.get("input_schema") or {})
        for t in body.get("tools") or []
        if isinstance(t, dict) and "name" in t
    )
    thinking, budget, omitted = _thinking(body.get("thinking"), max_tokens, count_only=count_only)
    choice = body.get("tool_choice")
    forced: str | None = None
    if isinstance(choice, dict):
        if choice.get("type") == "any":
            forced = ""
        elif choice.get("type") == "tool":
            forced = str(choice.get("name", ""))
    if thinking and forced is not None:
        raise RequestError("Thinking may not be enabled when tool_choice forces tool use.")
    return Request(
        api="messages",
        model=model,
        prompt="\n".join(([system_text] if system_text else []) + user),
        last_user=user[-1] if user else "",
        input_text="\n".join(every),
        messages=len(messages),
        stream=bool(body.get("stream")),
        max_tokens=max_tokens,
        json_mode=schema is not None,
        schema=schema if isinstance(schema, dict) else None,
        tools=tools,
        forced_tool=forced,
        thinking=thinking,
        thinking_budget=budget,
        thinking_omitted=omitted,
        body=body,
    )


_TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")


def _blocks_of(message: object) -> list[dict[str, Any]]:
    content = message.get("content") if isinstance(message, dict) else None
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _check_history(messages: list[Any]) -> None:
    """Refuse a history the API refuses: thinking blocks without a valid signature, tool_use ids
    it does not accept, and tool_use / tool_result blocks that do not answer each other."""
    previous_calls: list[str] = []
    for i, message in enumerate(messages):
        blocks = _blocks_of(message)
        role = message.get("role") if isinstance(message, dict) else None
        if role == "assistant":
            calls: list[str] = []
            for j, block in enumerate(blocks):
                kind = block.get("type")
                if kind == "thinking":
                    if "signature" not in block:
                        raise RequestError(f"messages.{i}.content.{j}.thinking.signature: Field required")
                    if not signature_valid(block["signature"]):
                        raise RequestError(
                            f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
                        )
                elif kind == "redacted_thinking" and not signature_valid(block.get("data")):
                    raise RequestError(
                        f"messages.{i}.content.{j}: Invalid `data` in `redacted_thinking` block"
                    )
                elif kind == "tool_use":
                    ident = block.get("id")
                    if not isinstance(ident, str) or not _TOOL_ID.match(ident):
                        raise RequestError(
                            f"messages.{i}.content.{j}.tool_use.id: "
                            "String should match pattern '^[a-zA-Z0-9_-]+$'"
                        )
                    if not isinstance(block.get("input"), dict):
                        raise RequestError(
                            f"messages.{i}.content.{j}.tool_use.input: Input should be a valid dictionary"
                        )
                    calls.append(ident)
            if previous_calls:
                raise _unanswered(i - 1, previous_calls)
            previous_calls = calls
            continue
        results = [b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"]
        for j, block in enumerate(blocks):
            if block.get("type") == "tool_result" and block.get("tool_use_id") not in previous_calls:
                raise RequestError(
                    f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                    f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
                    "`tool_use` block in the previous message."
                )
        missing = [c for c in previous_calls if c not in results]
        if missing:
            raise _unanswered(i - 1, missing)
        previous_calls = []


def _unanswered(index: int, ids: list[str]) -> RequestError:
    return RequestError(
        f"messages.{index}: `tool_use` ids were found without `tool_result` blocks immediately after: "
        f"{', '.join(ids)}. Each `tool_use` block must have a corresponding `tool_result` block in the "
        "next message."
    )


# The smallest thinking budget the API accepts.
MIN_THINKING_BUDGET = 1024


def _thinking(config: object, max_tokens: int | None, *, count_only: bool) -> tuple[bool, int | None, bool]:
    """(enabled, budget_tokens, display omitted) of the ``thinking`` parameter, checked as the API does."""
    if config is None:
        return False, None, False
    if not isinstance(config, dict) or config.get("type") not in ("enabled", "disabled", "adaptive"):
        raise RequestError(
            "thinking: Input tag does not match any of the expected tags: 'enabled', 'disabled', 'adaptive'"
        )
    if config["type"] == "disabled":
        return False, None, False
    omitted = config.get("display") == "omitted"
    if config["type"] == "adaptive":
        return True, None, omitted
    budget = config.get("budget_tokens")
    if budget is None:
        raise RequestError("thinking.enabled.budget_tokens: Field required")
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise RequestError("thinking.enabled.budget_tokens: Input should be a valid integer")
    if budget < MIN_THINKING_BUDGET:
        raise RequestError(
            f"thinking.enabled.budget_tokens: Input should be greater than or equal to {MIN_THINKING_BUDGET}"
        )
    if not count_only and max_tokens is not None and max_tokens <= budget:
        raise RequestError("`max_tokens` must be greater than `thinking.budget_tokens`.")
    return True, budget, omitted


def _stop_reason(out: Reply) -> str:
    if out.refusal is not None:
        return "refusal"
    if out.tool_calls:
        return "tool_use"
    return "max_tokens" if out.truncated else "end_turn"


def _input(arguments: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        return {"_unparsed_arguments": arguments}
    return value if isinstance(value, dict) else {"value": value}


def _blocks(out: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if out.thinking is not None:
        blocks.append({"type": "thinking", "thinking": out.thinking, "signature": out.signature})
    text = out.refusal if out.refusal is not None else out.text
    if text is not None and (text or not out.tool_calls):
        blocks.append({"type": "text", "text": text, "citations": None})
    blocks.extend(
        {"type": "tool_use", "id": f"toolu_{tc.id}", "name": tc.name, "input": _input(tc.arguments)}
        for tc in out.tool_calls
    )
    return blocks


def _usage(out: Reply, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": out.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _stop_details(out: Reply) -> dict[str, Any] | None:
    if out.refusal is None:
        return None
    return {"type": "refusal", "category": None, "explanation": out.refusal}


def _message(out: Reply, *, done: bool) -> dict[str, Any]:
    return {
        "id": f"msg_{out.ident[:24]}",
        "type": "message",
        "role": "assistant",
        "model": out.model,
        "content": _blocks(out) if done else [],
        "stop_reason": _stop_reason(out) if done else None,
        "stop_sequence": None,
        "stop_details": _stop_details(out) if done else None,
        "usage": _usage(out, out.output_tokens if done else 1),
    }


def render(call: Request, out: Reply) -> dict[str, Any]:
    return _message(out, done=True)


def events(call: Request, out: Reply) -> list[Event]:
    result: list[Event] = []

    def emit(kind: str, **fields: Any) -> None:
        result.append((kind, {"type": kind, **fields}))

    emit("message_start", message=_message(out, done=False))
    emit("ping")
    for index, block in enumerate(_blocks(out)):
        if block["type"] == "thinking":
            emit("content_block_start", index=index, content_block={**block, "thinking": "", "signature": ""})
            for piece in split_pieces(block["thinking"]):
                emit("content_block_delta", index=index, delta={"type": "thinking_delta", "thinking": piece})
            emit(
                "content_block_delta",
                index=index,
                delta={"type": "signature_delta", "signature": block["signature"]},
            )
        elif block["type"] == "text":
            emit("content_block_start", index=index, content_block={**block, "text": ""})
            for piece in split_pieces(block["text"]):
                emit("content_block_delta", index=index, delta={"type": "text_delta", "text": piece})
        else:
            emit("content_block_start", index=index, content_block={**block, "input": {}})
            arguments = json.dumps(block["input"], ensure_ascii=False)
            for start in range(0, len(arguments), 16):
                delta = {"type": "input_json_delta", "partial_json": arguments[start : start + 16]}
                emit("content_block_delta", index=index, delta=delta)
        emit("content_block_stop", index=index)
    emit(
        "message_delta",
        delta={"stop_reason": _stop_reason(out), "stop_sequence": None, "stop_details": _stop_details(out)},
        usage={"output_tokens": out.output_tokens},
    )
    emit("message_stop")
    return result
