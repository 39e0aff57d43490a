"""Rollback across model versions mid-conversation: the conversation, the artifact check, the
``rollback`` marker and fixture, and the emulator's history checks, with the real SDKs."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import pytest
from conftest import free_port
from hypothesis import given
from hypothesis import strategies as st

from pytest_modelmigrate.checks import CheckCollector, ChecksConfigError, portable_history
from pytest_modelmigrate.conversation import (
    Conversation,
    ConversationError,
    Reasoning,
    RollbackPlan,
    ToolCall,
    Turn,
    json_wrapping,
    same_model,
    tool_id_provider,
)
from pytest_modelmigrate.emulator import Emulator
from pytest_modelmigrate.reports.run import validate_run

# --- the conversation ----------------------------------------------------------------------------


def _claude_history() -> Conversation:
    """Turn 1 user, 2 assistant (thinking + tool_use), 3 tool result, 4 assistant (fenced JSON)."""
    conv = Conversation(system="You are the support assistant.")
    conv.user("Where is order A-1042?")
    conv.assistant(
        "Let me look.",
        tool_calls=[ToolCall("toolu_01AbC", "lookup_order", '{"order_id": "A-1042"}')],
        reasoning=[
            Reasoning("thinking", "The customer wants the order.", "c2ln", None, "anthropic", "claude-x")
        ],
        model="claude-x",
        provider="anthropic",
    )
    conv.tool_result("toolu_01AbC", {"status": "in transit"})
    conv.assistant('```json\n{"status": "in transit"}\n```', model="claude-x", provider="anthropic")
    return conv


def test_anthropic_messages_round_trip_keeps_thinking_tool_use_and_results() -> None:
    conv = _claude_history()
    messages = conv.to_anthropic()
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert [b["type"] for b in messages[1]["content"]] == ["thinking", "text", "tool_use"]
    assert messages[1]["content"][0]["signature"] == "c2ln"
    assert messages[1]["content"][2]["input"] == {"order_id": "A-1042"}
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_01AbC", "content": '{"status": "in transit"}'}
    ]
    back = Conversation.from_anthropic(messages, system=conv.system)
    assert back.system == conv.system
    assert [t.role for t in back] == ["user", "assistant", "tool", "assistant"]
    assert back.turns[1].reasoning[0].signature == "c2ln"
    assert back.turns[1].tool_calls[0].parsed_arguments() == {"order_id": "A-1042"}
    assert back.turns[2].tool_call_id == "toolu_01AbC"
    assert back.to_anthropic() == messages


def test_openai_chat_round_trip_leaves_reasoning_out() -> None:
    conv = _claude_history()
    messages = conv.to_openai_chat()
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert messages[2]["tool_calls"][0] == {
        "id": "toolu_01AbC",
        "type": "function",
        "function": {"name": "lookup_order", "arguments": '{"order_id": "A-1042"}'},
    }
    assert "thinking" not in json.dumps(messages)  # chat has no place for it
    back = Conversation.from_openai_chat(messages)
    assert back.system == conv.system
    assert back.to_openai_chat() == messages


_TEXT = st.text(alphabet='abc xyz{}[]:,"', max_size=12)


@st.composite
def _conversations(draw: st.DrawFn) -> Conversation:
    """User turns, assistant turns (text, tool calls with object arguments, signed thinking) and
    the results of every call, in the order the APIs take them."""
    conv = Conversation(system=draw(st.one_of(st.none(), _TEXT.filter(bool))))
    for n in range(draw(st.integers(1, 4))):
        conv.user(draw(_TEXT))
        calls = [
            ToolCall(f"toolu_{n}{i}", "f", json.dumps({"k": draw(_TEXT)}))
            for i in range(draw(st.integers(0, 2)))
        ]
        thinking = [Reasoning("thinking", draw(_TEXT), "c2ln")] if draw(st.booleans()) else []
        conv.assistant(draw(_TEXT.filter(bool)), tool_calls=calls, reasoning=thinking)
        for call in calls:
            conv.tool_result(call.id, draw(_TEXT))
    return conv


@given(_conversations())
def test_both_shapes_read_back_what_they_wrote(conv: Conversation) -> None:
    anthropic_messages = conv.to_anthropic()
    assert (
        Conversation.from_anthropic(anthropic_messages, system=conv.system).to_anthropic()
        == anthropic_messages
    )
    chat = conv.to_openai_chat()
    assert Conversation.from_openai_chat(chat).to_openai_chat() == chat
    # tool results of one assistant turn share one Anthropic user message with the next user text
    roles = [m["role"] for m in anthropic_messages]
    assert all(a != b for a, b in itertools.pairwise(roles))


def test_openai_responses_input_carries_reasoning_items_and_function_calls() -> None:
    items = _claude_history().to_openai_responses()
    assert [i.get("type") or i["role"] for i in items] == [
        "user",
        "reasoning",
        "assistant",
        "function_call",
        "function_call_output",
        "assistant",
    ]
    assert items[1]["encrypted_content"] == "c2ln"
    assert items[3]["call_id"] == items[4]["call_id"] == "toolu_01AbC"


def test_append_response_reads_each_sdk_shape() -> None:
    conv = Conversation()
    chat = {
        "object": "chat.completion",
        "model": "gpt-x-2025-01-01",
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                    ],
                }
            }
        ],
    }
    message = {
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [
            {"type": "thinking", "thinking": "hm", "signature": "sig"},
            {"type": "text", "text": "done"},
        ],
    }
    response = {
        "object": "response",
        "model": "gpt-r",
        "output": [
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "enc"},
            {"type": "message", "content": [{"type": "output_text", "text": "hi"}]},
        ],
    }
    a, b, c = conv.append_response(chat), conv.append_response(message), conv.append_response(response)
    assert (a.provider, a.model, a.tool_calls[0].id) == ("openai", "gpt-x-2025-01-01", "call_1")
    assert (b.provider, b.text, b.reasoning[0].signature, b.reasoning[0].model) == (
        "anthropic",
        "done",
        "sig",
        "claude-x",
    )
    assert (c.text, c.reasoning[0].item_id, c.reasoning[0].signature) == ("hi", "rs_1", "enc")
    with pytest.raises(ConversationError, match="not an OpenAI chat completion"):
        conv.append_response({"object": "list"})


def test_bad_input_names_where() -> None:
    with pytest.raises(ConversationError, match=r"messages\[1\]: unknown role 'robot'"):
        Conversation.from_openai_chat([{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}])
    with pytest.raises(ConversationError, match="tool_call_id"):
        Conversation().turns.append(Turn("tool", "x"))
    with pytest.raises(ConversationError, match="not JSON"):
        ToolCall("call_1", "f", "{oops").parsed_arguments()


def test_helpers() -> None:
    assert tool_id_provider("call_abc") == "openai"
    assert tool_id_provider("toolu_01") == "anthropic"
    assert tool_id_provider("xyz") is None
    assert json_wrapping('{"a": 1}') == "bare"
    assert json_wrapping('```json\n{"a": 1}\n```') == "fenced"
    assert json_wrapping("hello") is None
    assert same_model("gpt-4o", "gpt-4o-2024-08-06")
    assert not same_model("gpt-4o", "gpt-4o-mini")
    plan = RollbackPlan("rollback", "new", "old", 2, "n", "o", "openai", "anthropic")
    assert plan.models(3) == ["new", "new", "old"]
    assert [plan.provider(t) for t in (1, 2, 3)] == ["openai", "openai", "anthropic"]
    assert plan.pair == "n→o"
    with pytest.raises(ValueError, match="count from 1"):
        plan.model(0)


# --- the artifact check --------------------------------------------------------------------------


def _artifacts(result: Any) -> list[tuple[int, str]]:
    return [(f["turn"], f["artifact"]) for f in result.details["findings"]]


def test_check_flags_thinking_tool_ids_and_json_wrapping_sent_to_openai() -> None:
    result = portable_history(_claude_history(), "gpt-4o", json_wrap="bare")
    assert not result
    assert _artifacts(result) == [(2, "foreign_reasoning"), (2, "tool_call_id"), (4, "json_wrapping")]
    first = result.details["findings"][0]
    assert first["text"].startswith("turn 2 (assistant, by claude-x): a thinking block from anthropic")
    assert "strip it" in first["fix"]
    assert "convert the ids" in result.details["findings"][1]["fix"]
    assert "json_wrap='bare'" in result.details["findings"][2]["fix"]


def test_portable_copy_passes_the_check_and_keeps_calls_paired() -> None:
    conv = _claude_history()
    clean = conv.portable("gpt-4o", "openai", json_wrap="bare")
    assert portable_history(clean, "gpt-4o", json_wrap="bare"), portable_history(clean, "gpt-4o").message
    new_id = clean.turns[1].tool_calls[0].id
    assert new_id.startswith("call_") and clean.turns[2].tool_call_id == new_id
    assert clean.turns[1].reasoning == [] and clean.turns[3].text == '{"status": "in transit"}'
    assert conv.turns[1].reasoning  # the original is untouched


def test_check_flags_reasoning_of_another_model_of_the_same_provider() -> None:
    result = portable_history(_claude_history(), "claude-y")
    assert (2, "foreign_reasoning") in _artifacts(result)
    assert "produced by claude-x" in result.message
    assert (2, "foreign_reasoning") not in _artifacts(portable_history(_claude_history(), "claude-x"))


def test_check_flags_unsigned_thinking_for_anthropic() -> None:
    conv = Conversation()
    conv.user("hi")
    conv.assistant(
        "ok", reasoning=[Reasoning("thinking", "hm", None, provider="anthropic", model="claude-x")]
    )
    assert _artifacts(portable_history(conv, "claude-x")) == [(2, "unsigned_reasoning")]


def test_check_flags_openai_tool_ids_and_bad_ids_sent_to_anthropic() -> None:
    conv = Conversation()
    conv.user("hi")
    conv.assistant(tool_calls=[ToolCall("call_9", "f", "{}"), ToolCall("call:0", "g", "{}")], model="gpt-4o")
    conv.tool_result("call_9", "a")
    conv.tool_result("call:0", "b")
    result = portable_history(conv, "claude-x")
    assert _artifacts(result) == [(2, "tool_call_id"), (2, "tool_call_id")]
    assert "openai's format" in result.details["findings"][0]["detail"]
    assert "characters Anthropic rejects" in result.details["findings"][1]["detail"]
    assert portable_history(conv.portable("claude-x", "anthropic"), "claude-x")


def test_check_flags_tool_call_formats_the_target_cannot_take() -> None:
    conv = Conversation()
    conv.user("hi")
    conv.assistant(tool_calls=[ToolCall("toolu_1", "f", "[1, 2]"), ToolCall("toolu_2", "g", "{bad")])
    conv.tool_result("toolu_1", "a")
    conv.tool_result("toolu_2", "b")
    result = portable_history(conv, "claude-x")
    assert _artifacts(result) == [(2, "tool_call_format"), (2, "tool_call_format")]
    assert "must be an object" in result.message and "not JSON" in result.message


def test_check_flags_unanswered_calls_and_orphan_results() -> None:
    conv = Conversation()
    conv.user("hi")
    conv.assistant(tool_calls=[ToolCall("call_1", "f", "{}")])
    conv.tool_result("call_7", "lost")
    assert _artifacts(portable_history(conv, "gpt-4o")) == [
        (2, "unanswered_tool_call"),
        (3, "orphan_tool_result"),
    ]


def test_check_flags_inline_reasoning_tags() -> None:
    conv = Conversation()
    conv.user("hi")
    conv.assistant("<think>the user greets me</think>Hello!", model="deepseek-r1")
    result = portable_history(conv, "gpt-4o")
    assert _artifacts(result) == [(2, "inline_reasoning")]
    assert conv.portable("gpt-4o", "openai").turns[1].text == "Hello!"


def test_json_wrapping_follows_the_targets_own_turns_or_the_majority() -> None:
    conv = Conversation()
    conv.user("a")
    conv.assistant('{"x": 1}', model="gpt-4o-2024-08-06")
    conv.user("b")
    conv.assistant('```json\n{"x": 2}\n```', model="emu-new")
    result = portable_history(conv, "gpt-4o")
    assert _artifacts(result) == [(4, "json_wrapping")]
    assert "gpt-4o's own earlier turns write it bare" in result.message
    # the target has no turn yet: mixed wrapping is flagged against the first
    assert _artifacts(portable_history(conv, "claude-x")) == [(4, "json_wrapping")]
    # all fenced, target unknown: nothing to compare with
    only = Conversation()
    only.user("a")
    only.assistant('```json\n{"x": 1}\n```', model="emu-new")
    assert portable_history(only, "gpt-4o")


def test_raw_message_lists_are_read_by_shape() -> None:
    anthropic_messages = _claude_history().to_anthropic()
    result = portable_history(anthropic_messages, "gpt-4o")
    assert (2, "foreign_reasoning") in _artifacts(result)
    assert "from anthropic" in result.message
    chat = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "x", "signature": "s"}]},
    ]
    assert portable_history(chat, "claude-x")  # no provider known for a chat part: kept


def test_check_errors_name_the_argument() -> None:
    with pytest.raises(ChecksConfigError, match="json_wrap='yaml'"):
        portable_history(Conversation(), "gpt-4o", json_wrap="yaml")
    with pytest.raises(ChecksConfigError, match="api='messages' is not an API of openai"):
        portable_history(Conversation(), "gpt-4o", provider="openai", api="messages")
    with pytest.raises(ChecksConfigError, match="pass a Conversation"):
        portable_history("hello", "gpt-4o")
    collector = CheckCollector(test_id="t.py::test_x", model="m")
    with pytest.raises(ChecksConfigError, match=r"t.py::test_x \[m\]: portable_history: target"):
        collector.portable_history(Conversation(), "")
    assert collector.portable_history(Conversation(), "gpt-4o").passed
    assert [r.check for r in collector] == ["portable_history"]


# --- the emulator accepts and rejects histories as the APIs do -----------------------------------

THINKER = {"models": {"claude-think": {"reasoning": {"text": "Check the order first."}}, "emu-old": {}}}


@pytest.fixture
def thinker() -> Iterator[Emulator]:
    with Emulator(THINKER, port=free_port(), time_scale=0.0) as emu:
        yield emu


def test_emulator_accepts_its_own_thinking_and_rejects_altered_or_missing_signatures(
    thinker: Emulator,
) -> None:
    client = anthropic.Anthropic(base_url=thinker.url, api_key="x", max_retries=0)
    conv = Conversation()
    conv.user("Where is my order?")
    first = client.messages.create(
        model="claude-think",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=conv.to_anthropic(),
    )
    conv.append_response(first)
    assert conv.turns[1].reasoning[0].signature
    conv.user("And when will it arrive?")
    client.messages.create(model="claude-think", max_tokens=2048, messages=conv.to_anthropic())  # accepted
    conv.turns[1].reasoning[0].signature = "Zm9yZWlnbg=="  # another provider's, or altered
    with pytest.raises(anthropic.BadRequestError, match=r"messages\.1\.content\.0: Invalid `signature`"):
        client.messages.create(model="claude-think", max_tokens=100, messages=conv.to_anthropic())
    conv.turns[1].reasoning[0].signature = None
    with pytest.raises(anthropic.BadRequestError, match=r"thinking\.signature: Field required"):
        client.messages.create(model="claude-think", max_tokens=100, messages=conv.to_anthropic())


def test_emulator_rejects_unpaired_tool_use_and_results(thinker: Emulator) -> None:
    client = anthropic.Anthropic(base_url=thinker.url, api_key="x", max_retries=0)
    conv = Conversation()
    conv.user("hi")
    conv.assistant(tool_calls=[ToolCall("toolu_1", "f", "{}")])
    conv.tool_result("toolu_2", "x")
    with pytest.raises(anthropic.BadRequestError, match=r"unexpected `tool_use_id`.*toolu_2"):
        client.messages.create(model="claude-think", max_tokens=100, messages=conv.to_anthropic())
    conv.turns[1].tool_calls[0].id = "call:1"
    with pytest.raises(anthropic.BadRequestError, match=r"tool_use\.id: String should match pattern"):
        client.messages.create(model="claude-think", max_tokens=100, messages=conv.to_anthropic())


def test_emulator_openai_chat_rejects_foreign_parts_and_unmatched_tool_messages(thinker: Emulator) -> None:
    client = openai.OpenAI(base_url=thinker.url + "/v1", api_key="x", max_retries=0)
    history: list[Any] = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
    ]
    client.chat.completions.create(model="emu-old", messages=history)  # accepted
    with pytest.raises(openai.BadRequestError, match="must be a response to a preceeding message"):
        client.chat.completions.create(
            model="emu-old",
            messages=[*history[:2], {"role": "tool", "tool_call_id": "toolu_1", "content": "ok"}],
        )
    with pytest.raises(openai.BadRequestError, match="did not have response messages: call_1"):
        client.chat.completions.create(
            model="emu-old", messages=[*history[:2], {"role": "user", "content": "?"}]
        )
    thinking = {"role": "assistant", "content": [{"type": "thinking", "thinking": "x", "signature": "s"}]}
    with pytest.raises(openai.BadRequestError, match="Invalid value: 'thinking'"):
        client.chat.completions.create(model="emu-old", messages=[history[0], thinking, history[0]])


def test_emulator_responses_checks_encrypted_reasoning_and_call_outputs(thinker: Emulator) -> None:
    client = openai.OpenAI(base_url=thinker.url + "/v1", api_key="x", max_retries=0)
    conv = Conversation()
    conv.user("Where is my order?")
    first = client.responses.create(
        model="claude-think",  # a reasoning model of the script, asked over the Responses API
        input=conv.to_openai_responses(),
        reasoning={"effort": "medium"},
        include=["reasoning.encrypted_content"],
    )
    conv.append_response(first)
    assert conv.turns[1].reasoning[0].signature
    conv.user("When will it arrive?")
    client.responses.create(model="claude-think", input=conv.to_openai_responses())  # accepted
    conv.turns[1].reasoning[0].signature = "c2lnbmVkIGVsc2V3aGVyZQ=="
    with pytest.raises(openai.BadRequestError, match="could not be verified"):
        client.responses.create(model="claude-think", input=conv.to_openai_responses())
    orphan = [{"type": "function_call_output", "call_id": "call_9", "output": "ok"}]
    with pytest.raises(openai.BadRequestError, match="No tool call found for function call output"):
        client.responses.create(model="claude-think", input=orphan)


# --- end to end: the marker, the fixture, the matrix and the gate --------------------------------

ROLLBACK_SCRIPT: dict[str, Any] = {
    "models": {
        "emu-old": {
            "rules": [
                {"match": "(?s)anything else", "reply": "You're welcome. Your refund reference is R-77."},
                {
                    "match": "(?s)refund the shipping",
                    "json": {"action": "refund_shipping", "order": "A-1042"},
                },
                {"match": "(?s)in transit", "reply": "Your parcel A-1042 is in transit."},
                {
                    "match": "(?s)A-1042",
                    "tool_call": {"name": "lookup_order", "arguments": {"order_id": "A-1042"}},
                },
            ]
        },
        "emu-new": {
            "rules": [
                {"match": "(?s)anything else", "reply": "Glad to help. Refund reference R-77."},
                {
                    "match": "(?s)refund the shipping",
                    "json": {"action": "refund_shipping", "order": "A-1042"},
                    "wrap_json": 1.0,
                },
                {"match": "(?s)in transit", "reply": "A-1042 is on its way."},
                {
                    "match": "(?s)A-1042",
                    "tool_call": {"name": "lookup_order", "arguments": {"order_id": "A-1042"}},
                },
            ]
        },
        "claude-new": {
            "reasoning": {"text": "The customer asks about A-1042; look it up."},
            "rules": [
                {"match": "(?s)anything else", "reply": "Anything else I can do? Reference R-77."},
                {
                    "match": "(?s)refund the shipping",
                    "json": {"action": "refund_shipping", "order": "A-1042"},
                },
                {"match": "(?s)in transit", "reply": "It is in transit."},
                {
                    "match": "(?s)A-1042",
                    "tool_call": {"name": "lookup_order", "arguments": {"order_id": "A-1042"}},
                },
            ],
        },
    }
}

ROLLBACK_TESTS = """
import pytest
import app
from pytest_modelmigrate.conversation import Conversation

SYSTEM = "You are the support assistant."
TURNS = ["Where is my order A-1042?", "Can you refund the shipping? Answer in JSON.", "Thanks, anything else?"]
TOOL = {"name": "lookup_order", "description": "Look an order up",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}}}


def send(conv, model, provider):
    if provider == "anthropic":
        tool = {"name": TOOL["name"], "description": TOOL["description"], "input_schema": TOOL["parameters"]}
        return app.anthropic_client().messages.create(
            model=model, max_tokens=2048, system=SYSTEM, messages=conv.to_anthropic(), tools=[tool],
            thinking={"type": "enabled", "budget_tokens": 1024},
        )
    return app.openai_client().chat.completions.create(
        model=model, messages=conv.to_openai_chat(), tools=[{"type": "function", "function": TOOL}]
    )


def converse(rollback, checks, clean):
    conv = Conversation(system=SYSTEM)
    for turn, text in enumerate(TURNS, start=1):
        model, provider = rollback.model(turn), rollback.provider(turn)
        if turn == rollback.switch_after + 1:
            if clean:
                conv = conv.portable(model, provider, json_wrap="bare")
            checks.portable_history(conv, model, json_wrap="bare")
        conv.user(text)
        conv.append_response(send(conv, model, provider))
        calls = conv.last_tool_calls()
        for call in calls:
            conv.tool_result(call.id, {"status": "in transit"})
        if calls:
            conv.append_response(send(conv, model, provider))
    checks.contains(conv.turns[-1].text, "R-77")
    return conv


@pytest.mark.prompt("support-conversation", deterministic=True)
@pytest.mark.rollback(switch_after=2)
def test_support(rollback, checks):
    converse(rollback, checks, clean=False)


@pytest.mark.rollback(switch_after=2, directions=["rollback"])
def test_support_cleaned(rollback, checks, request):
    conv = converse(rollback, checks, clean=True)
    assert [t.model for t in conv.turns if t.role == "assistant"][-1].startswith(rollback.model(3))
"""


def _cells(run: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(o["test"].split("::")[-1], o["model"]): o["outcome"] for o in run["outcomes"]}


def test_rollback_rows_record_replay_and_gate(
    start_emulator: Callable[..., Emulator], pytester: pytest.Pytester, plugin_args: tuple[str, ...]
) -> None:
    emulator = start_emulator(ROLLBACK_SCRIPT, test_conv=ROLLBACK_TESTS)
    pytester.makeini("[pytest]\nmodelmigrate_incumbent = emu-old\n")
    models = "--models=emu-old,emu-new,claude-new"
    recorded = pytester.runpytest(
        *plugin_args,
        models,
        "--record-mode=once",
        "-p",
        "no:randomly",
        "--migration-gate=no-regression",
        "--migration-json=rec.json",
    )
    # test_support: rollback + upgrade rows x 3 models; test_support_cleaned: rollback x 3
    recorded.assert_outcomes(passed=6, failed=3)
    served = len(emulator.requests)
    cassettes = sorted(
        p.relative_to(pytester.path / "cassettes").as_posix()
        for p in (pytester.path / "cassettes").rglob("*.yaml")
    )
    assert len(cassettes) == 9 and len(set(cassettes)) == 9
    assert "test_conv/emu-new/test_support[rollback].yaml" in cassettes
    emulator.stop()

    replayed = pytester.runpytest(
        *plugin_args,
        models,
        "-p",
        "no:randomly",
        "--block-network",
        "--migration-gate=no-regression",
        "--migration-json=rep.json",
    )
    replayed.assert_outcomes(passed=6, failed=3)
    assert replayed.ret == 1  # the failed rollbacks are regressions of their candidates
    rec = json.loads((pytester.path / "rec.json").read_text())
    rep = json.loads((pytester.path / "rep.json").read_text())
    validate_run(rep)
    assert rec["matrix"] == rep["matrix"]
    assert served > 0
    cells = _cells(rep)
    assert cells == {
        ("test_support[rollback]", "emu-old"): "passed",  # the baseline: emu-old throughout
        ("test_support[rollback]", "emu-new"): "failed",  # fenced JSON left for emu-old
        ("test_support[rollback]", "claude-new"): "failed",  # thinking + toolu_ ids left for emu-old
        ("test_support[upgrade]", "emu-old"): "passed",
        ("test_support[upgrade]", "emu-new"): "passed",  # emu-old's history suits emu-new
        ("test_support[upgrade]", "claude-new"): "failed",  # call_ ids sent to Anthropic
        ("test_support_cleaned[rollback]", "emu-old"): "passed",
        ("test_support_cleaned[rollback]", "emu-new"): "passed",
        ("test_support_cleaned[rollback]", "claude-new"): "passed",  # converted, then continued
    }
    failed = {
        o["test"].split("::")[-1] + "@" + o["model"]: o for o in rep["outcomes"] if o["outcome"] == "failed"
    }
    claude = json.dumps(failed["test_support[rollback]@claude-new"])
    assert "foreign_reasoning" in claude and "tool_call_id" in claude
    assert "json_wrapping" in json.dumps(failed["test_support[rollback]@emu-new"])
    replayed.stdout.fnmatch_lines(
        [
            "*test_support[[]rollback[]]*1/1 100%*0/1   0%*0/1   0%",
            "*test_support[[]upgrade[]]*1/1 100%*1/1 100%*0/1   0%",
            "migration gate (no-regression): FAILED*",
        ]
    )


PLAN_TESTS = """
import pytest

@pytest.mark.rollback(switch_after=1)
def test_plan(rollback):
    print("PLAN", rollback.direction, rollback.pair, rollback.models(2))
"""


def test_the_plan_per_column_and_direction(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plan=PLAN_TESTS)
    pytester.makeini("[pytest]\nmodelmigrate_models = emu-old, emu-new\nmodelmigrate_incumbent = emu-old\n")
    result = pytester.runpytest("-s", "-p", "no:randomly", "--record-mode=once", "--migration-gate=report")
    out = result.stdout.str()
    assert "PLAN rollback emu-new→emu-old ['emu-new', 'emu-old']" in out
    assert "PLAN upgrade emu-old→emu-new ['emu-old', 'emu-new']" in out
    assert out.count("PLAN baseline emu-old→emu-old ['emu-old', 'emu-old']") == 2
    # recording the candidate alone still rolls back to the ini's incumbent
    alone = pytester.runpytest("-s", "-p", "no:randomly", "--models=emu-new", "--record-mode=once")
    assert "PLAN rollback emu-new→emu-old" in alone.stdout.str()
    assert "PLAN upgrade emu-old→emu-new" in alone.stdout.str()


@pytest.mark.parametrize(
    ("marker", "signature", "message"),
    [
        (
            "@pytest.mark.rollback(switch_after=0)",
            "rollback",
            "takes switch_after= (the number of turns, 1 or more",
        ),
        ("@pytest.mark.rollback(2, directions='rollback')", "rollback", "directions= (a list of 'rollback'"),
        ("@pytest.mark.rollback(switch_after=2)", "model", "needs the test to take the `rollback` fixture"),
        ("", "rollback", "uses the `rollback` fixture without @pytest.mark.rollback(switch_after=N)"),
    ],
)
def test_marker_mistakes_are_named(
    pytester: pytest.Pytester, marker: str, signature: str, message: str
) -> None:
    pytester.makepyfile(test_bad=f"import pytest\n\n{marker}\ndef test_x({signature}):\n    pass\n")
    result = pytester.runpytest("--models=emu-old,emu-new", "-p", "no:randomly")
    assert result.ret != 0
    assert "test_bad.py::test_x" in result.stdout.str()
    assert message in result.stdout.str()
