"""Reading the results of wrapper libraries as model responses, and picking a test's calls.

Pure module: no pytest import, and no wrapper library is imported: objects are recognised by
their class name and module (``langchain_core.messages``, ``litellm``, ``pydantic_ai``,
instructor's pydantic models), so the checks never pull in a library the test does not use.

Accepted (see ``docs/wrappers.md``):

- LangChain ``AIMessage`` / ``AIMessageChunk`` (an accumulated stream too): text, tool calls,
  the echoed model, the finish reason and usage from ``response_metadata``/``usage_metadata``;
- litellm ``ModelResponse``: read as the OpenAI chat completion it mirrors;
- pydantic-ai ``AgentRunResult`` / ``StreamedRunResult`` (its final ``ModelResponse``) and a
  pydantic-ai ``ModelResponse``; the text is the run's output (a model's output as JSON);
- a pydantic model returned by instructor: its raw completion (``_raw_response``), the text
  being the model as JSON; any other pydantic model: its JSON text.

Inside the ``checks`` fixture a wrapper result is matched to the test's recorded call with the
same response id, so the check also sees the request (the model asked for, the tool schemas).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pytest_modelmigrate.errors import ChecksConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pytest_modelmigrate.providers.base import Call

__all__ = [
    "WrapperRead",
    "answer_text",
    "call_id",
    "pick_calls",
    "read_wrapper",
    "recorded_match",
    "request_text",
]


@dataclass(frozen=True)
class WrapperRead:
    """What a wrapper result says: the text a check reads, the call built from it, its response id."""

    text: str
    call: Call | None
    source: str  # "wrapper:<class name>"
    response_id: str | None = None


def _module(obj: Any) -> str:
    return type(obj).__module__ or ""


def _mro_names(obj: Any) -> set[str]:
    return {f"{c.__module__}.{c.__name__}" for c in type(obj).__mro__}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _tool_call(name: Any, args: Any, ident: Any = None) -> Any:
    from pytest_modelmigrate.providers.base import ToolCall

    if isinstance(args, str):
        try:
            parsed: Any = json.loads(args)
        except ValueError:
            parsed = None
        text = args
    else:
        parsed, text = args, json.dumps(args, ensure_ascii=False, default=str)
    return ToolCall(
        name=str(name), arguments_text=text, arguments=parsed, id=None if ident is None else str(ident)
    )


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif (
                isinstance(part, dict)
                and part.get("type") in (None, "text", "output_text")
                and isinstance(part.get("text"), str)
            ):
                parts.append(part["text"])
        return "".join(parts)
    return ""


def _langchain(obj: Any) -> WrapperRead:
    from pytest_modelmigrate.providers.base import Call, Usage

    meta = getattr(obj, "response_metadata", None) or {}
    usage_meta = getattr(obj, "usage_metadata", None) or {}
    provider = str(meta.get("model_provider") or "")
    if not provider:
        provider = "anthropic" if "stop_reason" in meta else "openai"
    endpoint = "messages" if provider == "anthropic" else "chat.completions"
    tool_calls = tuple(
        _tool_call(tc.get("name", ""), tc.get("args", {}), tc.get("id"))
        for tc in getattr(obj, "tool_calls", None) or []
        if isinstance(tc, dict)
    )
    extra = getattr(obj, "additional_kwargs", None) or {}
    refusal = extra.get("refusal") if isinstance(extra.get("refusal"), str) else None
    usage = Usage(
        input_tokens=_int(usage_meta.get("input_tokens")), output_tokens=_int(usage_meta.get("output_tokens"))
    )
    text = _content_text(getattr(obj, "content", ""))
    call = Call(
        provider=provider,
        endpoint=endpoint,
        method="",
        url="",
        status=200,
        streaming="Chunk" in type(obj).__name__,
        model_echoed=meta.get("model_name") or meta.get("model"),
        text=text,
        tool_calls=tool_calls,
        finish_reason=meta.get("finish_reason") or meta.get("stop_reason"),
        usage=usage,
        refusal=refusal,
        raw=meta,
    )
    ident = meta.get("id")
    return WrapperRead(text, call, f"wrapper:{type(obj).__name__}", ident if isinstance(ident, str) else None)


def _pydantic_ai_response(obj: Any, text: str | None = None) -> WrapperRead:
    from pytest_modelmigrate.providers.base import Call, Usage

    texts: list[str] = []
    tool_calls = []
    for part in getattr(obj, "parts", None) or []:
        kind = type(part).__name__
        if kind == "TextPart":
            texts.append(str(getattr(part, "content", "")))
        elif kind in ("ToolCallPart", "BuiltinToolCallPart"):
            tool_calls.append(
                _tool_call(
                    getattr(part, "tool_name", ""),
                    getattr(part, "args", None) or {},
                    getattr(part, "tool_call_id", None),
                )
            )
    usage_obj = getattr(obj, "usage", None)
    usage = Usage(
        input_tokens=_int(getattr(usage_obj, "input_tokens", None)),
        output_tokens=_int(getattr(usage_obj, "output_tokens", None)),
    )
    provider = str(getattr(obj, "provider_name", None) or "unknown")
    details = getattr(obj, "provider_details", None) or {}
    finish = details.get("finish_reason") if isinstance(details, dict) else None
    own_text = "".join(texts)
    call = Call(
        provider=provider,
        endpoint="messages" if provider == "anthropic" else "chat.completions",
        method="",
        url="",
        status=200,
        streaming=False,
        model_echoed=getattr(obj, "model_name", None),
        text=own_text,
        tool_calls=tuple(tool_calls),
        finish_reason=finish if isinstance(finish, str) else getattr(obj, "finish_reason", None),
        usage=usage,
    )
    ident = getattr(obj, "provider_response_id", None)
    return WrapperRead(
        own_text if text is None else text,
        call,
        f"wrapper:{type(obj).__name__}",
        ident if isinstance(ident, str) else None,
    )


def _output_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    dump = getattr(value, "model_dump_json", None)
    if callable(dump):
        return str(dump())
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def _pydantic_ai_run(obj: Any) -> WrapperRead:
    messages = obj.all_messages() if callable(getattr(obj, "all_messages", None)) else []
    responses = [m for m in messages if type(m).__name__ == "ModelResponse"]
    if not responses:
        raise ChecksConfigError(f"the {type(obj).__name__} holds no model response")
    output = getattr(obj, "output", None)
    read = _pydantic_ai_response(responses[-1], text=_output_text(output) if output is not None else None)
    return replace(read, source=f"wrapper:{type(obj).__name__}")


def _sdk_dict(obj: Any) -> Call:
    from pytest_modelmigrate.providers.parse import call_from_response_object

    return call_from_response_object(obj)


def read_wrapper(obj: Any) -> WrapperRead | None:
    """Read a wrapper library's result, or None when ``obj`` is not one this module knows."""
    module, name = _module(obj), type(obj).__name__
    names = _mro_names(obj)
    if module.startswith("langchain") and any(
        n.startswith("langchain_core.messages.ai.AIMessage") for n in names
    ):
        return _langchain(obj)
    if module.startswith("pydantic_ai"):
        if callable(getattr(obj, "all_messages", None)) and hasattr(obj, "output"):
            return _pydantic_ai_run(obj)
        if name == "ModelResponse":
            return _pydantic_ai_response(obj)
    if module.startswith("litellm") and name in ("ModelResponse", "ModelResponseStream"):
        call = _sdk_dict(obj)
        ident = getattr(obj, "id", None)
        return WrapperRead(call.text, call, f"wrapper:{name}", ident if isinstance(ident, str) else None)
    raw = getattr(obj, "_raw_response", None)  # instructor keeps the completion on its result
    if raw is not None and callable(getattr(obj, "model_dump_json", None)):
        call = _sdk_dict(raw)
        ident = getattr(raw, "id", None)
        return WrapperRead(
            _output_text(obj), call, f"wrapper:{name}", ident if isinstance(ident, str) else None
        )
    if callable(getattr(obj, "model_dump_json", None)) and hasattr(type(obj), "model_fields"):
        data = obj.model_dump(mode="json")
        if isinstance(data, dict) and (data.get("object") or data.get("type") == "message"):
            return None  # an SDK response object: the SDK reader's job
        return WrapperRead(_output_text(obj), None, f"wrapper:{name}")
    return None


# --- the test's calls --------------------------------------------------------------------------


def call_id(call: Call) -> str | None:
    """The provider's response id of a recorded call (``chatcmpl-…``, ``msg_…``, ``resp_…``)."""
    raw = call.raw
    if isinstance(raw, dict):
        ident = raw.get("id")
        return ident if isinstance(ident, str) else None
    if isinstance(raw, list):
        for event in raw:
            if not isinstance(event, dict):
                continue
            for holder in (event, event.get("message"), event.get("response")):
                if isinstance(holder, dict) and isinstance(holder.get("id"), str):
                    return str(holder["id"])
    return None


def recorded_match(read: WrapperRead, calls: Sequence[Call]) -> Call | None:
    """The recorded call the wrapper result came from (same response id), its text the wrapper's
    when the call itself carried none (a structured output sent as a tool call)."""
    if not read.response_id:
        return None
    for call in reversed(calls):
        if call_id(call) == read.response_id:
            if not call.text and read.text:
                return replace(call, text=read.text)
            return call
    return None


def request_text(call: Call) -> str:
    """The text of the request's messages (system, user, tool results), joined by newlines."""
    body = call.request_json if isinstance(call.request_json, dict) else {}
    texts: list[str] = []

    def add(content: Any) -> None:
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, str):
                    texts.append(part)
                elif isinstance(part, dict):
                    if isinstance(part.get("text"), str):
                        texts.append(part["text"])
                    elif "content" in part:
                        add(part["content"])

    add(body.get("system"))
    add(body.get("instructions"))
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            add(message.get("content"))
    raw_input = body.get("input")
    if isinstance(raw_input, str):
        texts.append(raw_input)
    elif isinstance(raw_input, list):
        for item in raw_input:
            if isinstance(item, dict):
                add(item.get("content"))
                if isinstance(item.get("output"), str):
                    texts.append(item["output"])
    return "\n".join(t for t in texts if t)


def _forced(call: Call) -> bool:
    body = call.request_json if isinstance(call.request_json, dict) else {}
    choice = body.get("tool_choice")
    if choice in ("required", "any"):
        return True
    return isinstance(choice, dict) and choice.get("type") in ("function", "tool", "any", "allowed_tools")


def answer_text(call: Call) -> str:
    """The text a check reads from a call: its text; for a reply that is only the one tool call
    the request forced (a structured output: instructor's TOOLS mode, pydantic-ai's output tool),
    that call's JSON arguments."""
    if call.text or len(call.tool_calls) != 1 or not _forced(call):
        return call.text
    return call.tool_calls[0].arguments_text


def is_final(call: Call) -> bool:
    """A call that answered rather than asked for a tool result: successful, and with no tool
    calls unless the request forced one (a structured output sent as a forced tool call)."""
    if not call.ok:
        return False
    return not call.tool_calls or _forced(call)


def _describe(calls: Sequence[Call]) -> str:
    if not calls:
        return "no model call was recorded in this test"
    rows = []
    for i, c in enumerate(calls):
        tools = ",".join(tc.name for tc in c.tool_calls)
        rows.append(
            f"[{i}] {c.endpoint} {c.model_requested or '?'} status {c.status}"
            + (f" tools {tools}" if tools else "")
        )
    return f"the test's {len(calls)} calls: " + "; ".join(rows)


def pick_calls(
    calls: Sequence[Call],
    *,
    endpoint: str | None = None,
    tool: str | None = None,
    prompt: str | re.Pattern[str] | None = None,
    final: bool = False,
    ok: bool | None = None,
) -> list[Call]:
    """``calls`` filtered: by endpoint (``chat.completions``, ``responses``, ``messages``), by a tool
    the model called, by a regex searched in the request's text, final answers only, successful."""
    if endpoint is not None and endpoint not in ("chat.completions", "responses", "messages"):
        raise ChecksConfigError(
            f"calls: unknown endpoint {endpoint!r} (use 'chat.completions', 'responses' or 'messages')"
        )
    picked = list(calls)
    if endpoint is not None:
        picked = [c for c in picked if c.endpoint == endpoint]
    if tool is not None:
        picked = [c for c in picked if any(tc.name == tool for tc in c.tool_calls)]
    if prompt is not None:
        pattern = prompt if isinstance(prompt, re.Pattern) else re.compile(prompt)
        picked = [c for c in picked if pattern.search(request_text(c))]
    if final:
        picked = [c for c in picked if is_final(c)]
    if ok is not None:
        picked = [c for c in picked if c.ok == ok]
    return picked


def pick_call(calls: Sequence[Call], index: int = -1, **filters: Any) -> Call:
    """One call of :func:`pick_calls` (``index`` counts in the filtered list; -1: the last)."""
    picked = pick_calls(calls, **filters)
    try:
        return picked[index]
    except IndexError:
        used = ", ".join(f"{k}={v!r}" for k, v in filters.items() if v not in (None, False))
        what = f"{len(picked)} calls match {used}" if used else f"{len(picked)} calls"
        raise ChecksConfigError(f"call: no call at index {index} ({what}); {_describe(calls)}") from None
