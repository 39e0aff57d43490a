"""support-chat: an order-status chat started on a candidate and rolled back to the incumbent.

``@pytest.mark.rollback(switch_after=2)`` runs turns 1-2 on the column's candidate and turn 3 on
the incumbent (``emu-gpt-2024``); in the incumbent's own column all three turns run on it, the
baseline. The history is kept model-agnostic (``Conversation``) and written for each turn's SDK,
so the Claude candidate's conversation continues on the OpenAI incumbent. Before the switch,
``checks.portable_history`` lists what the candidate left in the history that the incumbent
should not get: ``emu-gpt-2026`` fences its JSON answer, where the incumbent writes it bare.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from support_desk.clients import anthropic_client, openai_client
from support_desk.desk import LOOKUP_ORDER_TOOL

from pytest_modelmigrate.conversation import Conversation

pytestmark = pytest.mark.prompt(
    "support-chat",
    purpose="Continue an order-status chat on the incumbent after a rollback",
    sensitivities=["history written by another model", "JSON wrapping", "tool-call ids"],
    deterministic=True,  # the emulated models answer this chat the same on every draw
)

CHAT_SYSTEM = "You chat with customers about their orders. Use lookup_order for an order's status."
TURNS = (
    "Hi, where is my order A-1042?",
    "It's late, so please refund the shipping. Answer with the refund as JSON.",
    "Thanks! Is there anything else I should know?",
)
ORDERS = {"A-1042": {"status": "in_transit", "eta": "Friday"}}


def _send(conversation: Conversation, model: str, provider: str) -> Any:
    """One request with the whole history, written for the model's SDK."""
    if provider == "anthropic":
        tool = {k: LOOKUP_ORDER_TOOL[k] for k in ("name", "description")}
        return anthropic_client().messages.create(
            model=model,
            max_tokens=400,
            system=CHAT_SYSTEM,
            messages=conversation.to_anthropic(),
            tools=[{**tool, "input_schema": LOOKUP_ORDER_TOOL["parameters"]}],
        )
    return openai_client().chat.completions.create(
        model=model,
        max_completion_tokens=400,
        messages=conversation.to_openai_chat(),
        tools=[{"type": "function", "function": LOOKUP_ORDER_TOOL}],
    )


@pytest.mark.rollback(switch_after=2, directions=["rollback"])
def test_order_chat_survives_rollback(rollback, checks):
    chat = Conversation(system=CHAT_SYSTEM)
    for turn, text in enumerate(TURNS, start=1):
        model, provider = rollback.model(turn), rollback.provider(turn)
        if turn == rollback.switch_after + 1:
            # traffic rolls back here: tool-call ids are converted for the incumbent's provider,
            # the rest of the history goes as the candidate wrote it
            chat = chat.portable(model, provider)
            checks.portable_history(chat, model, json_wrap="bare")
        chat.user(text)
        chat.append_response(_send(chat, model, provider))
        for call in chat.last_tool_calls():
            order = ORDERS.get(call.parsed_arguments().get("order_id"), {"status": "unknown"})
            chat.tool_result(call.id, order)
        if chat.turns[-1].role == "tool":
            chat.append_response(_send(chat, model, provider))
    refund = next(t.text for t in chat.turns if t.role == "assistant" and "refund_shipping" in t.text)
    checks.json_lenient(refund)
    checks.contains(chat.turns[-1].text, "R-77")
    assert json.loads(json.dumps(chat.to_openai_chat()))  # the history stays JSON all the way
