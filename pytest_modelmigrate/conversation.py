"""A model-agnostic conversation, converted to and from each SDK's message shape.

A :class:`Conversation` holds a system prompt and turns (user, assistant, tool results). An
assistant turn keeps what the model produced: its text, its tool calls (with their ids as the
provider wrote them) and its reasoning (Anthropic ``thinking`` blocks with their signatures,
OpenAI Responses ``reasoning`` items) as artifacts, with the model and provider that produced
them. Each turn can then be written for another model: :meth:`Conversation.to_openai_chat`,
:meth:`Conversation.to_openai_responses`, :meth:`Conversation.to_anthropic`. These write the
history as it is, artifacts included where the target shape has a place for them;
:meth:`Conversation.portable` returns a copy fit for another model (foreign reasoning stripped,
tool-call ids converted, JSON wrapped like the target's), and
:func:`pytest_modelmigrate.checks.portability.portable_history` lists what is left to fix.

:class:`RollbackPlan` says which model answers which turn in a ``@pytest.mark.rollback`` test.

Pure module: no pytest import; the SDKs are never imported (response objects are read by shape).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_modelmigrate.prompting import PromptClient

__all__ = [
    "ANTHROPIC_TOOL_ID",
    "Conversation",
    "ConversationError",
    "Reasoning",
    "RollbackPlan",
    "ToolCall",
    "Turn",
    "inline_reasoning",
    "json_wrapping",
    "same_model",
    "strip_inline_reasoning",
    "tool_id_provider",
]

ROLES = ("user", "assistant", "tool")

# Tool-call ids as each provider writes them.
_ID_PREFIX = {"openai": "call_", "anthropic": "toolu_"}
ANTHROPIC_TOOL_ID = re.compile(r"^[A-Za-z0-9_-]+$")  # what Anthropic accepts in tool_use.id
_FENCE_INSIDE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n(?P<body>.*?)\n?[ \t]*```", re.DOTALL)
_FENCED = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(?P<body>.*?)\n?\s*```\s*$", re.DOTALL)


class ConversationError(ValueError):
    """A message list or response that cannot be read as a conversation; the message says where."""


def _plain(obj: Any) -> Any:
    """An SDK object (pydantic) or a mapping as plain dicts and lists."""
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=False)
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


_DATED = r"-?(\d{4}-?\d{2}-?\d{2}|latest)"


def same_model(requested: str, produced: str) -> bool:
    """Whether ``produced`` (what a response echoed) is ``requested``, or a dated snapshot of it."""
    if produced == requested:
        return True
    return re.fullmatch(re.escape(requested.removesuffix("-latest")) + _DATED, produced) is not None


def tool_id_provider(call_id: str) -> str | None:
    """The provider whose format a tool-call id has: ``call_...`` openai, ``toolu_...`` anthropic."""
    for provider, prefix in _ID_PREFIX.items():
        if call_id.startswith(prefix):
            return provider
    if call_id.startswith("fc_"):
        return "openai"
    return None


def _structured(body: str) -> bool:
    stripped = body.strip()
    if not stripped or stripped[0] not in "[{":
        return False  # a bare number or string is not a structured output
    try:
        json.loads(stripped)
    except ValueError:
        return False
    return True


def json_wrapping(text: str) -> str | None:
    """How ``text`` carries a JSON object or array: ``"bare"`` (the text is the JSON), ``"fenced"``
    (in a Markdown code fence, alone or with commentary around it), or None (no JSON)."""
    if _structured(text):
        return "bare"
    match = _FENCED.match(text) or _FENCE_INSIDE.search(text)
    return "fenced" if match is not None and _structured(match.group("body")) else None


def _unfence(text: str) -> str:
    """The JSON of a fenced answer alone (commentary around the fence dropped)."""
    match = _FENCED.match(text) or _FENCE_INSIDE.search(text)
    return match.group("body").strip() if match else text


@dataclass
class ToolCall:
    """A tool call of an assistant turn: ``arguments`` is the JSON text the model wrote."""

    id: str
    name: str
    arguments: str = "{}"

    def parsed_arguments(self) -> Any:
        """The arguments as JSON (raises :class:`ConversationError` when they are not JSON)."""
        try:
            return json.loads(self.arguments or "{}")
        except ValueError as exc:
            raise ConversationError(
                f"tool call {self.id} ({self.name}): arguments are not JSON: {self.arguments[:80]!r}"
            ) from exc


@dataclass
class Reasoning:
    """A reasoning artifact: ``kind`` ``"thinking"``/``"redacted_thinking"`` (Anthropic) or
    ``"reasoning"`` (an OpenAI Responses item); ``signature`` is the opaque proof the provider
    checks when the block is sent back (``signature``, ``data`` or ``encrypted_content``)."""

    kind: str
    text: str = ""
    signature: str | None = None
    item_id: str | None = None
    provider: str | None = None
    model: str | None = None


@dataclass
class Turn:
    """One message: ``role`` user, assistant or tool (a tool result, ``tool_call_id`` set)."""

    role: str
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    reasoning: list[Reasoning] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None  # the tool's name, for a tool result
    model: str | None = None  # who produced an assistant turn
    provider: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ConversationError(f"turn role {self.role!r}: use one of {', '.join(ROLES)}")
        if self.role == "tool" and not self.tool_call_id:
            raise ConversationError("a tool result turn needs the tool_call_id it answers")


@dataclass
class Conversation:
    """A system prompt and its turns, in order. Build it with :meth:`user`, :meth:`append_response`
    and :meth:`tool_result`, or read one with :meth:`from_openai_chat` / :meth:`from_anthropic`."""

    system: str | None = None
    turns: list[Turn] = field(default_factory=list)

    def __iter__(self) -> Iterator[Turn]:
        return iter(self.turns)

    def __len__(self) -> int:
        return len(self.turns)

    # --- building -------------------------------------------------------------------------

    def user(self, text: str) -> Turn:
        turn = Turn("user", text)
        self.turns.append(turn)
        return turn

    def assistant(
        self,
        text: str = "",
        *,
        tool_calls: Iterable[ToolCall] = (),
        reasoning: Iterable[Reasoning] = (),
        model: str | None = None,
        provider: str | None = None,
    ) -> Turn:
        turn = Turn("assistant", text, list(tool_calls), list(reasoning), model=model, provider=provider)
        self.turns.append(turn)
        return turn

    def tool_result(self, tool_call_id: str, content: Any, *, name: str | None = None) -> Turn:
        """The result of a tool call (``content`` that is not text is written as JSON)."""
        text = content if isinstance(content, str) else json.dumps(content)
        turn = Turn("tool", text, tool_call_id=tool_call_id, name=name or self._tool_name(tool_call_id))
        self.turns.append(turn)
        return turn

    def _tool_name(self, call_id: str) -> str | None:
        for turn in self.turns:
            for call in turn.tool_calls:
                if call.id == call_id:
                    return call.name
        return None

    def last_tool_calls(self) -> list[ToolCall]:
        """The tool calls of the last assistant turn (empty when it called none)."""
        for turn in reversed(self.turns):
            if turn.role == "assistant":
                return list(turn.tool_calls)
        return []

    def append_response(self, response: Any, *, model: str | None = None) -> Turn:
        """Add the assistant turn of an SDK response: an OpenAI ``ChatCompletion`` or Responses
        ``Response``, an Anthropic ``Message``, their dict form, or anything with ``.raw`` (a
        :class:`~pytest_modelmigrate.prompting.PromptResponse`)."""
        raw = getattr(response, "raw", None)
        if raw is not None and not isinstance(response, Mapping):
            response = raw
        data = _plain(response)
        if not isinstance(data, Mapping):
            raise ConversationError(f"append_response: cannot read a {type(response).__name__} as a response")
        kind = data.get("object") or data.get("type")
        if kind == "chat.completion":
            turn = _turn_from_chat_completion(data)
        elif kind == "message" and data.get("role") == "assistant":
            turn = _turn_from_anthropic_message(data)
        elif kind == "response":
            turn = _turn_from_responses(data)
        else:
            raise ConversationError(
                f"append_response: a {type(response).__name__} ({kind!r}) is not an OpenAI chat "
                "completion, an OpenAI Responses response or an Anthropic message"
            )
        if model is not None:
            turn.model = model
        self.turns.append(turn)
        return turn

    # --- reading SDK message lists ---------------------------------------------------------

    @classmethod
    def from_openai_chat(cls, messages: Sequence[Mapping[str, Any]]) -> Conversation:
        """Read OpenAI chat ``messages`` (system/developer, user, assistant with tool_calls, tool)."""
        conv = cls()
        for index, raw in enumerate(messages):
            message = _plain(raw)
            where = f"messages[{index}]"
            if not isinstance(message, Mapping):
                raise ConversationError(f"{where}: not a message object")
            role = message.get("role")
            text = _text_of(message.get("content"), where)
            if role in ("system", "developer"):
                conv.system = f"{conv.system}\n{text}" if conv.system else text
            elif role == "user":
                conv.user(text)
            elif role == "assistant":
                calls = _chat_tool_calls(message)
                reasoning = (
                    [
                        Reasoning("thinking", str(p.get("thinking", "")), p.get("signature"))
                        for p in message.get("content") or []
                        if isinstance(p, Mapping) and p.get("type") in ("thinking", "redacted_thinking")
                    ]
                    if isinstance(message.get("content"), list)
                    else []
                )
                conv.turns.append(Turn("assistant", text, calls, reasoning))
            elif role == "tool":
                conv.turns.append(Turn("tool", text, tool_call_id=str(message.get("tool_call_id") or "")))
            else:
                raise ConversationError(f"{where}: unknown role {role!r}")
        return conv

    @classmethod
    def from_anthropic(cls, messages: Sequence[Mapping[str, Any]], system: Any = None) -> Conversation:
        """Read Anthropic ``messages`` (text, tool_use, tool_result, thinking blocks) and ``system``."""
        conv = cls(system=_text_of(system, "system") if system else None)
        for index, raw in enumerate(messages):
            message = _plain(raw)
            where = f"messages[{index}]"
            if not isinstance(message, Mapping):
                raise ConversationError(f"{where}: not a message object")
            role = message.get("role")
            content = message.get("content")
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
            if role == "user":
                texts: list[str] = []
                for block in blocks:
                    if block.get("type") == "tool_result":
                        conv.turns.append(
                            Turn(
                                "tool",
                                _text_of(block.get("content"), f"{where}.tool_result"),
                                tool_call_id=str(block.get("tool_use_id") or ""),
                            )
                        )
                    elif block.get("type") == "text":
                        texts.append(str(block.get("text", "")))
                if texts:
                    conv.user("\n".join(texts))
            elif role == "assistant":
                conv.turns.append(_turn_from_blocks(blocks, provider=None, model=None))
            else:
                raise ConversationError(
                    f"{where}: unknown role {role!r} (Anthropic takes user and assistant)"
                )
        return conv

    # --- writing SDK message lists ---------------------------------------------------------

    def to_openai_chat(self) -> list[dict[str, Any]]:
        """OpenAI chat ``messages``. Chat has no place for reasoning: it is left out."""
        out: list[dict[str, Any]] = []
        if self.system:
            out.append({"role": "system", "content": self.system})
        for turn in self.turns:
            if turn.role == "user":
                out.append({"role": "user", "content": turn.text})
            elif turn.role == "tool":
                out.append({"role": "tool", "tool_call_id": turn.tool_call_id, "content": turn.text})
            else:
                message: dict[str, Any] = {"role": "assistant", "content": turn.text or None}
                if turn.tool_calls:
                    message["tool_calls"] = [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": c.arguments},
                        }
                        for c in turn.tool_calls
                    ]
                out.append(message)
        return out

    def to_openai_responses(self) -> list[dict[str, Any]]:
        """OpenAI Responses ``input`` items (pass ``instructions=conversation.system``):
        reasoning items are written back with their ``encrypted_content``."""
        out: list[dict[str, Any]] = []
        for turn in self.turns:
            if turn.role == "user":
                out.append({"role": "user", "content": turn.text})
            elif turn.role == "tool":
                out.append(
                    {"type": "function_call_output", "call_id": turn.tool_call_id, "output": turn.text}
                )
            else:
                for r in turn.reasoning:
                    item: dict[str, Any] = {"type": "reasoning", "summary": []}
                    if r.item_id:
                        item["id"] = r.item_id
                    if r.text:
                        item["summary"] = [{"type": "summary_text", "text": r.text}]
                    if r.signature:
                        item["encrypted_content"] = r.signature
                    out.append(item)
                if turn.text:
                    out.append({"role": "assistant", "content": turn.text})
                for c in turn.tool_calls:
                    out.append(
                        {"type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments}
                    )
        return out

    def to_anthropic(self) -> list[dict[str, Any]]:
        """Anthropic ``messages`` (pass ``system=conversation.system``): thinking blocks first in
        their assistant turn, tool calls as ``tool_use``, results as ``tool_result`` blocks of a
        user message (consecutive results and a following user text share one message)."""
        out: list[dict[str, Any]] = []

        def user_blocks() -> list[dict[str, Any]]:
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                blocks: list[dict[str, Any]] = out[-1]["content"]
                return blocks
            out.append({"role": "user", "content": []})
            fresh: list[dict[str, Any]] = out[-1]["content"]
            return fresh

        for turn in self.turns:
            if turn.role == "user":
                user_blocks().append({"type": "text", "text": turn.text})
            elif turn.role == "tool":
                user_blocks().append(
                    {"type": "tool_result", "tool_use_id": turn.tool_call_id, "content": turn.text}
                )
            else:
                blocks: list[dict[str, Any]] = []
                for r in turn.reasoning:
                    if r.kind == "redacted_thinking":
                        blocks.append({"type": "redacted_thinking", "data": r.signature or ""})
                    else:
                        block: dict[str, Any] = {"type": "thinking", "thinking": r.text}
                        if r.signature is not None:
                            block["signature"] = r.signature
                        blocks.append(block)
                if turn.text:
                    blocks.append({"type": "text", "text": turn.text})
                for c in turn.tool_calls:
                    try:
                        arguments = c.parsed_arguments()
                    except ConversationError:
                        arguments = c.arguments  # sent as it is: the API says what is wrong
                    blocks.append({"type": "tool_use", "id": c.id, "name": c.name, "input": arguments})
                out.append({"role": "assistant", "content": blocks})
        return out

    def messages_for(self, provider: str) -> list[dict[str, Any]]:
        """:meth:`to_anthropic` for ``"anthropic"``, :meth:`to_openai_chat` for ``"openai"``.

        OpenAI chat messages carry the system prompt; for Anthropic pass ``system=`` yourself."""
        if provider == "anthropic":
            return self.to_anthropic()
        if provider == "openai":
            return self.to_openai_chat()
        raise ConversationError(f"messages_for: unknown provider {provider!r} (use 'openai' or 'anthropic')")

    # --- cleaning -------------------------------------------------------------------------

    def portable(
        self, target_model: str, target_provider: str, *, json_wrap: str | None = None
    ) -> Conversation:
        """A copy fit to send to ``target_model``: reasoning the target did not produce stripped,
        tool-call ids not in the target provider's format rewritten (calls and results alike),
        inline ``<think>`` text removed, and, with ``json_wrap`` ``"bare"`` or ``"fenced"``,
        assistant JSON wrapped that way."""
        conv = copy.deepcopy(self)
        renamed: dict[str, str] = {}
        for turn in conv.turns:
            if turn.role != "assistant":
                continue
            turn.reasoning = [
                r
                for r in turn.reasoning
                if r.provider == target_provider and r.model is not None and same_model(target_model, r.model)
            ]
            turn.text = strip_inline_reasoning(turn.text)
            for call in turn.tool_calls:
                if tool_id_provider(call.id) != target_provider or (
                    target_provider == "anthropic" and not ANTHROPIC_TOOL_ID.match(call.id)
                ):
                    digest = hashlib.sha256(call.id.encode()).hexdigest()[:24]
                    renamed[call.id] = _ID_PREFIX[target_provider] + digest
                    call.id = renamed[call.id]
                try:
                    parsed = call.parsed_arguments()
                except ConversationError:
                    parsed = None
                if not isinstance(parsed, dict):
                    call.arguments = json.dumps({"value": parsed if parsed is not None else call.arguments})
            wrapping = json_wrapping(turn.text)
            if json_wrap == "bare" and wrapping == "fenced":
                turn.text = _unfence(turn.text)
            elif json_wrap == "fenced" and wrapping == "bare":
                turn.text = f"```json\n{turn.text.strip()}\n```"
        for turn in conv.turns:
            if turn.role == "tool" and turn.tool_call_id in renamed:
                turn.tool_call_id = renamed[turn.tool_call_id]
        return conv


_INLINE_REASONING = re.compile(r"<(think|thinking|reasoning)>.*?</\1>\s*", re.DOTALL | re.IGNORECASE)


def inline_reasoning(text: str) -> str | None:
    """The first ``<think>``/``<thinking>``/``<reasoning>`` span a model wrote into its text."""
    match = _INLINE_REASONING.search(text)
    return match.group(0).strip() if match else None


def strip_inline_reasoning(text: str) -> str:
    return _INLINE_REASONING.sub("", text).strip() if _INLINE_REASONING.search(text) else text


def _text_of(content: Any, where: str) -> str:
    """The text of a content string or list of parts (text parts joined; others skipped)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping) and part.get("type") in ("text", "output_text", "input_text"):
                parts.append(str(part.get("text", "")))
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    raise ConversationError(f"{where}: content must be text or a list of parts, got {type(content).__name__}")


def _chat_tool_calls(message: Mapping[str, Any]) -> list[ToolCall]:
    """The tool calls of an OpenAI chat assistant message (``tool_calls[].function``)."""
    return [
        ToolCall(
            str(c.get("id", "")),
            str((c.get("function") or {}).get("name", "")),
            str((c.get("function") or {}).get("arguments") or "{}"),
        )
        for c in message.get("tool_calls") or []
    ]


def _turn_from_chat_completion(data: Mapping[str, Any]) -> Turn:
    choices = data.get("choices") or []
    if not choices:
        raise ConversationError("append_response: the chat completion has no choices")
    message = choices[0].get("message") or {}
    calls = _chat_tool_calls(message)
    return Turn(
        "assistant",
        str(message.get("content") or ""),
        calls,
        model=str(data.get("model") or "") or None,
        provider="openai",
    )


def _turn_from_blocks(
    blocks: Sequence[Mapping[str, Any]], *, provider: str | None, model: str | None
) -> Turn:
    texts: list[str] = []
    calls: list[ToolCall] = []
    reasoning: list[Reasoning] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            calls.append(
                ToolCall(str(block.get("id", "")), str(block.get("name", "")), json.dumps(block.get("input")))
            )
        elif kind == "thinking":
            reasoning.append(
                Reasoning(
                    "thinking", str(block.get("thinking", "")), block.get("signature"), None, provider, model
                )
            )
        elif kind == "redacted_thinking":
            reasoning.append(Reasoning("redacted_thinking", "", block.get("data"), None, provider, model))
    return Turn("assistant", "\n".join(texts), calls, reasoning, model=model, provider=provider)


def _turn_from_anthropic_message(data: Mapping[str, Any]) -> Turn:
    model = str(data.get("model") or "") or None
    return _turn_from_blocks(data.get("content") or [], provider="anthropic", model=model)


def _turn_from_responses(data: Mapping[str, Any]) -> Turn:
    model = str(data.get("model") or "") or None
    texts: list[str] = []
    calls: list[ToolCall] = []
    reasoning: list[Reasoning] = []
    for item in data.get("output") or []:
        kind = item.get("type")
        if kind == "message":
            texts.append(_text_of(item.get("content"), "output.message"))
        elif kind == "function_call":
            calls.append(
                ToolCall(
                    str(item.get("call_id", "")),
                    str(item.get("name", "")),
                    str(item.get("arguments") or "{}"),
                )
            )
        elif kind == "reasoning":
            summary = "\n".join(str(s.get("text", "")) for s in item.get("summary") or [])
            reasoning.append(
                Reasoning(
                    "reasoning", summary, item.get("encrypted_content"), item.get("id"), "openai", model
                )
            )
    return Turn("assistant", "\n".join(texts), calls, reasoning, model=model, provider="openai")


@dataclass(frozen=True)
class RollbackPlan:
    """Which model answers each turn of a ``@pytest.mark.rollback(switch_after=k)`` test: turns
    1..k go to ``first``, the rest to ``then``. ``direction`` is ``"rollback"`` (the column's
    candidate first, then the incumbent), ``"upgrade"`` (the incumbent first, then the candidate)
    or ``"baseline"`` (the incumbent's own column: the incumbent throughout)."""

    direction: str
    first: str
    then: str
    switch_after: int
    first_id: str = ""
    then_id: str = ""
    first_provider: str = "openai"
    then_provider: str = "openai"

    def model(self, turn: int) -> str:
        """The model name for ``turn`` (1-based: the first user turn is 1)."""
        if turn < 1:
            raise ValueError(f"rollback: turns count from 1, got {turn}")
        return self.first if turn <= self.switch_after else self.then

    def provider(self, turn: int) -> str:
        """``"openai"`` or ``"anthropic"``: the provider of :meth:`model` for ``turn``."""
        self.model(turn)  # checks the turn
        return self.first_provider if turn <= self.switch_after else self.then_provider

    def prompt(self, turn: int) -> PromptClient:
        """A :class:`~pytest_modelmigrate.prompting.PromptClient` for ``turn``'s model (feed it
        ``conversation.messages_for(rollback.provider(turn))``)."""
        from pytest_modelmigrate.prompting import PromptClient

        return PromptClient(self.model(turn), self.provider(turn))

    def models(self, turns: int) -> list[str]:
        return [self.model(t) for t in range(1, turns + 1)]

    @property
    def pair(self) -> str:
        """``first→then`` as model ids, e.g. ``gpt-5→gpt-4o``."""
        return f"{self.first_id or self.first}→{self.then_id or self.then}"

    def __str__(self) -> str:
        return f"{self.direction} {self.pair} after turn {self.switch_after}"
