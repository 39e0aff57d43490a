"""``portable_history``: model-specific artifacts left in a conversation before it goes to another model.

When traffic is rolled back mid-session (candidate → incumbent) or moved to another provider, the
history the next model receives was written by a different one. What that model cannot take, or
takes as noise, is listed per turn with how to fix it:

- ``foreign_reasoning``: a thinking block or reasoning item another model or provider produced
  (its signature only its producer can verify: Anthropic rejects a foreign or altered signature);
- ``unsigned_reasoning``: a thinking block without its signature (Anthropic rejects it);
- ``inline_reasoning``: ``<think>...</think>`` written into an answer's text;
- ``tool_call_id``: a tool-call id in another provider's format (``call_...`` sent to Anthropic,
  ``toolu_...`` sent to OpenAI), or with characters Anthropic rejects;
- ``tool_call_format``: tool arguments the target cannot take (not JSON; not an object for Anthropic);
- ``unanswered_tool_call`` / ``orphan_tool_result``: a call without its result, a result without its
  call (both APIs reject the request);
- ``json_wrapping``: JSON wrapped differently (fenced vs bare) than the target's own earlier turns
  (or than ``json_wrap=``), which the next model tends to copy.

Pure module: no pytest import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_modelmigrate.checks.result import CheckResult, ChecksConfigError
from pytest_modelmigrate.conversation import (
    ANTHROPIC_TOOL_ID,
    Conversation,
    ConversationError,
    Turn,
    inline_reasoning,
    json_wrapping,
    same_model,
    tool_id_provider,
)

__all__ = ["ARTIFACTS", "portable_history", "read_history"]

ARTIFACTS = (
    "foreign_reasoning",
    "unsigned_reasoning",
    "inline_reasoning",
    "tool_call_id",
    "tool_call_format",
    "unanswered_tool_call",
    "orphan_tool_result",
    "json_wrapping",
)

_APIS = {"chat": "openai", "responses": "openai", "messages": "anthropic"}
_ID_FORMAT = {"openai": "call_...", "anthropic": "toolu_..."}
_STRIP = "strip it: conversation.portable(target_model, target_provider)"


def _is_anthropic_shape(messages: Sequence[Any]) -> bool:
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        if message.get("role") in ("system", "developer", "tool") or message.get("tool_calls"):
            return False
        content = message.get("content")
        if isinstance(content, list) and any(
            isinstance(b, Mapping)
            and b.get("type") in ("tool_use", "tool_result", "thinking", "redacted_thinking")
            for b in content
        ):
            return True
    return False


def read_history(history: Any, *, system: Any = None) -> Conversation:
    """A :class:`Conversation` as it is, or an OpenAI chat / Anthropic message list (told apart by
    shape). A message list does not say who wrote each turn: reasoning blocks in Anthropic form
    are taken as Anthropic's."""
    if isinstance(history, Conversation):
        return history
    if not isinstance(history, Sequence) or isinstance(history, (str, bytes)):
        raise ChecksConfigError(
            f"portable_history: got a {type(history).__name__}; pass a Conversation or a list of "
            "OpenAI chat or Anthropic messages"
        )
    try:
        if _is_anthropic_shape(history):
            conv = Conversation.from_anthropic(history, system=system)
            for turn in conv.turns:
                for r in turn.reasoning:
                    r.provider = r.provider or "anthropic"
            return conv
        return Conversation.from_openai_chat(history)
    except (ConversationError, AttributeError, TypeError) as exc:
        raise ChecksConfigError(f"portable_history: cannot read the history: {exc}") from None


def _who(index: int, turn: Turn) -> str:
    by = f", by {turn.model}" if turn.model else (f", from {turn.provider}" if turn.provider else "")
    return f"turn {index} ({turn.role}{by})"


def _finding(index: int, turn: Turn, artifact: str, detail: str, fix: str) -> dict[str, Any]:
    return {
        "turn": index,
        "role": turn.role,
        "model": turn.model,
        "artifact": artifact,
        "detail": detail,
        "fix": fix,
        "text": f"{_who(index, turn)}: {detail}; {fix}",
    }


def _reasoning_findings(index: int, turn: Turn, target: str, provider: str, api: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for r in turn.reasoning:
        name = {"thinking": "thinking block", "redacted_thinking": "redacted thinking block"}.get(
            r.kind, "reasoning item"
        )
        if r.provider is not None and r.provider != provider:
            where = {
                "messages": "Anthropic cannot verify its signature and rejects the request",
                "responses": "OpenAI cannot decrypt it and rejects the request",
                "chat": "chat messages have no place for it: a client that sends it as text leaks it",
            }[api]
            found.append(
                _finding(
                    index,
                    turn,
                    "foreign_reasoning",
                    f"a {name} from {r.provider} sent to {target} ({provider}): {where}",
                    _STRIP,
                )
            )
        elif r.model is not None and not same_model(target, r.model):
            found.append(
                _finding(
                    index,
                    turn,
                    "foreign_reasoning",
                    f"a {name} produced by {r.model}, sent to {target}: its signature and its "
                    "reasoning belong to the model that wrote it",
                    _STRIP,
                )
            )
        elif api == "messages" and r.kind == "thinking" and not r.signature:
            found.append(
                _finding(
                    index,
                    turn,
                    "unsigned_reasoning",
                    "a thinking block without its signature: Anthropic rejects it "
                    "(thinking.signature: Field required)",
                    "send the block back unchanged with its signature, or strip it",
                )
            )
    span = inline_reasoning(turn.text) if turn.role == "assistant" else None
    if span is not None:
        found.append(
            _finding(
                index,
                turn,
                "inline_reasoning",
                f"reasoning written into the answer's text ({span[:40]!r}): the next model reads it as "
                "its own words",
                "strip the tags and their text (conversation.portable(...) does)",
            )
        )
    return found


def _tool_findings(conv: Conversation, target: str, provider: str, api: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    answered = {t.tool_call_id for t in conv.turns if t.role == "tool"}
    called: set[str] = set()
    for index, turn in enumerate(conv.turns, start=1):
        if turn.role == "tool":
            if turn.tool_call_id not in called:
                found.append(
                    _finding(
                        index,
                        turn,
                        "orphan_tool_result",
                        f"a tool result for {turn.tool_call_id!r}, which no earlier assistant turn "
                        "called: both APIs reject it",
                        "drop the result, or keep the assistant turn that made the call",
                    )
                )
            continue
        for call in turn.tool_calls:
            called.add(call.id)
            owner = tool_id_provider(call.id)
            if api == "messages" and not ANTHROPIC_TOOL_ID.match(call.id):
                found.append(
                    _finding(
                        index,
                        turn,
                        "tool_call_id",
                        f"tool-call id {call.id!r} has characters Anthropic rejects "
                        "(tool_use.id must match ^[a-zA-Z0-9_-]+$)",
                        "convert the ids of the call and its result together: conversation.portable(...)",
                    )
                )
            elif owner is not None and owner != provider:
                found.append(
                    _finding(
                        index,
                        turn,
                        "tool_call_id",
                        f"tool-call id {call.id!r} is in {owner}'s format, sent to {target} ({provider} "
                        f"writes {_ID_FORMAT[provider]})",
                        "convert the ids of the call and its result together: conversation.portable(...)",
                    )
                )
            try:
                parsed = call.parsed_arguments()
            except ConversationError:
                found.append(
                    _finding(
                        index,
                        turn,
                        "tool_call_format",
                        f"tool call {call.name} ({call.id}) has arguments that are not JSON: "
                        f"{call.arguments[:60]!r}; {target} cannot take them",
                        "repair or drop the call and its result",
                    )
                )
                continue
            if api == "messages" and not isinstance(parsed, dict):
                found.append(
                    _finding(
                        index,
                        turn,
                        "tool_call_format",
                        f"tool call {call.name} ({call.id}) has {type(parsed).__name__} arguments: "
                        "Anthropic's tool_use.input must be an object",
                        'wrap them in an object (conversation.portable(...) writes {"value": ...})',
                    )
                )
            if call.id not in answered:
                found.append(
                    _finding(
                        index,
                        turn,
                        "unanswered_tool_call",
                        f"tool call {call.name} ({call.id}) has no tool result after it: both APIs reject "
                        "a history that leaves a call unanswered",
                        "add its result with conversation.tool_result(id, ...), or drop the call",
                    )
                )
    return found


def _json_findings(conv: Conversation, target: str, json_wrap: str | None) -> list[dict[str, Any]]:
    wrapped = [
        (i, t, w)
        for i, t in enumerate(conv.turns, start=1)
        if t.role == "assistant" and (w := json_wrapping(t.text)) is not None
    ]
    reference = json_wrap
    source = f"{target} writes it {json_wrap} (json_wrap={json_wrap!r})"
    if reference is None:
        own = [w for _, t, w in wrapped if t.model is not None and same_model(target, t.model)]
        if own:
            reference = max(set(own), key=own.count)
            source = f"{target}'s own earlier turns write it {reference}"
    if reference is None:
        kinds = [w for _, _, w in wrapped]
        if len(set(kinds)) < 2:
            return []
        reference, source = kinds[0], f"turn {wrapped[0][0]} wrote it {kinds[0]}"
    return [
        _finding(
            i,
            t,
            "json_wrapping",
            f"JSON written {w}, where {source}: the next model tends to copy the history's wrapping",
            f"rewrite it {reference} (conversation.portable(..., json_wrap={reference!r}))",
        )
        for i, t, w in wrapped
        if w != reference and not (t.model is not None and same_model(target, t.model))
    ]


def portable_history(
    history: Any,
    target: Any,
    *,
    provider: str | None = None,
    api: str | None = None,
    system: Any = None,
    json_wrap: str | None = None,
    provider_patterns: Sequence[tuple[str, str]] | None = None,
    name: str | None = None,
) -> CheckResult:
    """Passes when ``history`` (a :class:`Conversation`, or an OpenAI chat / Anthropic message list)
    holds nothing specific to a model other than ``target`` (the model name the history goes to next).

    ``provider`` defaults to the provider of ``target`` by name (``claude*`` → anthropic, else
    openai; ``provider_patterns`` as ``prompt``'s); ``api`` is ``"chat"`` (OpenAI's default),
    ``"responses"`` or ``"messages"`` (Anthropic's). ``json_wrap`` (``"bare"`` or ``"fenced"``)
    states how the target's JSON answers are wrapped, when it has no earlier turn to tell.
    Each finding in ``details["findings"]`` names the turn (1-based, system prompt not counted),
    the artifact and the fix.
    """
    from pytest_modelmigrate.prompting import DEFAULT_PROVIDER_PATTERNS, resolve_provider

    if not isinstance(target, str) or not target:
        raise ChecksConfigError("portable_history: target must be the name of the model the history goes to")
    if json_wrap not in (None, "bare", "fenced"):
        raise ChecksConfigError(f"portable_history: json_wrap={json_wrap!r}; use 'bare' or 'fenced'")
    if api is not None and api not in _APIS:
        raise ChecksConfigError(f"portable_history: api={api!r}; use 'chat', 'responses' or 'messages'")
    if provider is None:
        provider = (
            _APIS[api]
            if api is not None
            else resolve_provider(target, provider_patterns or DEFAULT_PROVIDER_PATTERNS)
        )
    if provider not in ("openai", "anthropic"):
        raise ChecksConfigError(f"portable_history: provider={provider!r}; use 'openai' or 'anthropic'")
    api = api or ("messages" if provider == "anthropic" else "chat")
    if _APIS[api] != provider:
        raise ChecksConfigError(f"portable_history: api={api!r} is not an API of {provider}")
    conv = read_history(history, system=system)
    findings: list[dict[str, Any]] = []
    for index, turn in enumerate(conv.turns, start=1):
        findings.extend(_reasoning_findings(index, turn, target, provider, api))
    findings.extend(_tool_findings(conv, target, provider, api))
    findings.extend(_json_findings(conv, target, json_wrap))
    findings.sort(key=lambda f: (f["turn"], ARTIFACTS.index(f["artifact"])))
    details: dict[str, Any] = {
        "target": target,
        "provider": provider,
        "api": api,
        "turns": len(conv),
        "findings": findings,
    }
    if not findings:
        return CheckResult(
            "portable_history",
            True,
            f"history of {len(conv)} turns is portable to {target}",
            details,
            label=name,
        )
    lines = "; ".join(f["text"] for f in findings)
    return CheckResult(
        "portable_history",
        False,
        f"{len(findings)} model-specific artifact(s) in the history sent to {target}: {lines}",
        details,
        label=name,
    )
