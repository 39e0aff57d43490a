"""ticket-extract: the ticket's fields as one JSON object, which the app parses strictly."""

from __future__ import annotations

import pytest
from support_desk import TICKET_SCHEMA, extract_ticket
from ticket_texts import DOUBLE_CHARGE, MULTI_ISSUE, OUTAGE

# Stochastic: long tickets sometimes get commentary around the JSON. Sixty samples per test and
# model are what a non-inferiority call at the default 5-point margin needs on three tests.
pytestmark = [
    pytest.mark.prompt(
        "ticket-extract",
        purpose="Turn a ticket into a JSON object the desk stores as it is",
        sensitivities=["JSON only, no commentary", "schema: severity enum, order id A-NNNN"],
    ),
    pytest.mark.samples(60),
]


def test_extracts_double_charge(model, checks):
    result = extract_ticket(DOUBLE_CHARGE, model=model)
    checks.json_strict(result.text)
    checks.json_schema(result.text, TICKET_SCHEMA)
    checks.contains(result.text, ["A-1042", "dana@example.com"])


def test_extracts_outage(model, checks):
    result = extract_ticket(OUTAGE, model=model)
    checks.json_strict(result.text)
    checks.json_schema(result.text, TICKET_SCHEMA)
    checks.regex(result.text, r'"severity":\s*"urgent"')


def test_extracts_multi_issue_ticket(model, checks):
    """Long tickets are where a model starts talking around its JSON."""
    result = extract_ticket(MULTI_ISSUE, model=model)
    checks.json_lenient(result.text)  # the JSON is in there somewhere...
    checks.json_strict(result.text)  # ...but the app's json.loads needs nothing else
    checks.json_schema(result.text, TICKET_SCHEMA, lenient=True)
