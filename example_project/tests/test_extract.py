"""ticket-extract: the ticket's fields as one JSON object, which the app parses strictly."""

from __future__ import annotations

import pytest
from support_desk import TICKET_SCHEMA, extract_ticket
from ticket_texts import DOUBLE_CHARGE, MULTI_ISSUE, OUTAGE

pytestmark = pytest.mark.prompt(
    "ticket-extract",
    purpose="Turn a ticket into a JSON object the desk stores as it is",
    sensitivities=["JSON only, no commentary", "schema: severity enum, order id A-NNNN"],
)


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


@pytest.mark.samples(5)
def test_extracts_multi_issue_ticket(model, checks):
    """Long tickets are where a model starts talking around its JSON: sample it five times."""
    result = extract_ticket(MULTI_ISSUE, model=model)
    checks.json_lenient(result.text)  # the JSON is in there somewhere...
    checks.json_strict(result.text)  # ...but the app's json.loads needs nothing else
    checks.json_schema(result.text, TICKET_SCHEMA, lenient=True)
