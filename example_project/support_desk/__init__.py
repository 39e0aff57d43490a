"""support_desk: support-ticket handling on top of the OpenAI and Anthropic SDKs.

The functions take the model name as an argument, as production code does when the model is a
setting; the SDK is chosen from the name (see :mod:`support_desk.clients`).
"""

from __future__ import annotations

from .desk import (
    QUEUES,
    TICKET_SCHEMA,
    Extraction,
    OrderQuery,
    Reply,
    Summary,
    Triage,
    answer_customer,
    classify_queue,
    extract_ticket,
    find_order,
    route_ticket,
    summarize,
)

__all__ = [
    "QUEUES",
    "TICKET_SCHEMA",
    "Extraction",
    "OrderQuery",
    "Reply",
    "Summary",
    "Triage",
    "answer_customer",
    "classify_queue",
    "extract_ticket",
    "find_order",
    "route_ticket",
    "summarize",
]
