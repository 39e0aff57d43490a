"""ticket-summary: exactly three bullets for the agent who picks the ticket up."""

from __future__ import annotations

import pytest
from support_desk import summarize
from ticket_texts import DOUBLE_CHARGE, OUTAGE

pytestmark = pytest.mark.prompt(
    "ticket-summary",
    purpose="Three bullets an agent reads in five seconds",
    sensitivities=["exactly three bullets", "no heading or closing line"],
    deterministic=True,  # the emulated models answer this prompt the same on every draw
)


@pytest.mark.prompt_variants(
    "v1",
    "v2-gpt2026",
    targets={"v2-gpt2026": ["emu-gpt-2026"]},
    rationale={"v2-gpt2026": "emu-gpt-2026 wrote four bullets to v1; v2 tells it to stop after the third"},
)
def test_summarizes_double_charge(model, prompt_variant, checks):
    summary = summarize(DOUBLE_CHARGE, model=model, variant=prompt_variant)
    checks.bullets(summary.text, exactly=3)
    checks.similar(
        summary.text,
        "Dana was charged twice for order A-1042 and wants one charge refunded today.",
        min_score=0.3,
    )
    checks.drift(summary.text)  # informational: how far from the incumbent's summary


def test_summarizes_outage(model, checks):
    summary = summarize(OUTAGE, model=model)
    checks.bullets(summary.text, exactly=3)
    checks.contains(summary.text, "ops@globex.example")
    checks.drift(summary.text)
