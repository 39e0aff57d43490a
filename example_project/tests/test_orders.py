"""order-lookup: the model asks the lookup_order tool for the right order."""

from __future__ import annotations

import pytest
from support_desk import find_order

pytestmark = pytest.mark.prompt(
    "order-lookup",
    purpose="Call lookup_order with the order id the customer gave",
    sensitivities=["tool call, not prose", "arguments match the tool's schema"],
    deterministic=True,  # the emulated models answer this prompt the same on every draw
)


def test_looks_up_order(model, checks):
    query = find_order("Where is my order A-1042? It was due on Monday.", model=model)
    checks.tool_called(query.raw, "lookup_order")
    checks.model_echo(query.raw)  # the provider answered with the model we asked for
    assert query.order_id == "A-1042"
