"""queue-triage and queue-confidence: route a ticket to one queue, automatically when sure."""

from __future__ import annotations

import pytest
from support_desk import QUEUES, classify_queue, route_ticket

TRIAGE = pytest.mark.prompt(
    "queue-triage",
    purpose="Route a ticket to one of the desk's queues",
    sensitivities=["label set", "edge cases between billing, sales and shipping"],
    deterministic=True,  # the emulated models answer this prompt the same on every draw
)
CONFIDENCE = pytest.mark.prompt(
    "queue-confidence",
    purpose="Route automatically only when the label's probability is at least 0.8",
    sensitivities=["logprobs available", "calibration"],
    deterministic=True,  # the emulated models answer this prompt the same on every draw
)


@TRIAGE
def test_routes_refund_to_billing(model, checks):
    triage = classify_queue("Please refund order A-1300, I returned it last week.", model=model)
    checks.one_of(triage.queue, QUEUES)
    checks.one_of(triage.queue, ["billing"], name="expected_queue")


@TRIAGE
def test_routes_late_parcel_to_shipping(model, checks):
    triage = classify_queue("My parcel was due on Friday and still is not here.", model=model)
    checks.one_of(triage.queue, QUEUES)
    checks.one_of(triage.queue, ["shipping"], name="expected_queue")


@TRIAGE
@pytest.mark.dataset("tickets.jsonl", labels=list(QUEUES))
def test_routes_labelled_tickets(model, example, prediction):
    triage = classify_queue(example["input"], model=model)
    prediction.label(triage.queue)


# The probability of the label the model chose, and whether it is the right one (expected=): the
# calibration section's accuracy, ECE and precision-matched threshold need the correctness.
@CONFIDENCE
def test_auto_routes_clear_invoice_question(model, checks):
    _queue, triage = route_ticket("Where can I download the invoice for my March payment?", model=model)
    checks.one_of(triage.queue, ["billing"], name="expected_queue")
    checks.label_confidence(triage.raw, triage.queue, threshold=0.8, expected="billing")


@CONFIDENCE
def test_auto_routes_clear_crash_report(model, checks):
    _queue, triage = route_ticket("The desktop app crashes as soon as I open a shared folder.", model=model)
    checks.one_of(triage.queue, ["technical"], name="expected_queue")
    checks.label_confidence(triage.raw, triage.queue, threshold=0.8, expected="technical")
