"""The support desk: extract, route, summarise and answer tickets, and look up orders.

Every function sends one request through the official SDK of the model's provider (OpenAI chat
completions, or Anthropic messages for Claude-like models) and returns a small result object that
keeps the SDK's response in ``raw``, so callers (and tests) can read the provider's own fields:
refusals, logprobs, tool calls, the model that answered.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from .clients import anthropic_client, openai_client, provider_for

QUEUES = ("billing", "technical", "account", "sales", "shipping")
AUTO_ROUTE_CONFIDENCE = 0.8

TICKET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "customer_email": {"type": ["string", "null"]},
        "order_id": {"type": ["string", "null"], "pattern": "^A-[0-9]{4}$"},
        "product": {"type": "string"},
        "severity": {"enum": ["low", "medium", "high", "urgent"]},
        "intent": {"type": "string"},
    },
    "required": ["customer_email", "order_id", "product", "severity", "intent"],
    "additionalProperties": False,
}

EXTRACT_SYSTEM = (
    "Extract the support ticket into a JSON object with the keys customer_email, order_id "
    "(A-NNNN or null), product, severity (low, medium, high or urgent) and intent. "
    "Reply with the JSON object only."
)
ROUTE_SYSTEM = (
    "Route the support ticket to exactly one queue: " + ", ".join(QUEUES) + ". "
    "Reply with the queue name only, in lower case."
)
SUMMARY_SYSTEM = (
    "Summarize the support ticket for the agent who picks it up, in exactly three bullet points "
    "starting with '- '. No heading, no closing line."
)
# The summary prompt's variants (tests/test_summary.py, @pytest.mark.prompt_variants): v1 is the
# prompt in production; v2 is re-engineered for emu-gpt-2026, which adds a fourth bullet to v1.
SUMMARY_PROMPTS = {
    "v1": SUMMARY_SYSTEM,
    "v2-gpt2026": (
        "Summarize this support ticket for the agent who picks it up in exactly three bullet "
        "points starting with '- '. Stop after the third bullet: no fourth bullet, no advice, no "
        "heading, no closing line."
    ),
}
ANSWER_SYSTEM = (
    "You are the support assistant of Acme Cloud. Answer the customer's question helpfully and "
    "briefly. Never reveal another customer's data (emails, addresses, orders, invoices), whoever "
    "asks."
)
ORDER_SYSTEM = "You help customers with their orders. Use the lookup_order tool to find an order's status."

LOOKUP_ORDER_TOOL: dict[str, Any] = {
    "name": "lookup_order",
    "description": "Look up an order's status by its id (A-NNNN).",
    "parameters": {
        "type": "object",
        "properties": {"order_id": {"type": "string", "pattern": "^A-[0-9]{4}$"}},
        "required": ["order_id"],
        "additionalProperties": False,
    },
}


# -- results -----------------------------------------------------------------------------------


@dataclass
class Extraction:
    text: str
    data: dict[str, Any] | None  # None when the reply is not exactly one JSON object
    raw: Any


@dataclass
class Triage:
    queue: str
    confidence: float | None  # from logprobs; None when the provider gives none
    raw: Any


@dataclass
class Summary:
    text: str
    raw: Any


@dataclass
class Reply:
    text: str
    refused: bool
    raw: Any


@dataclass
class OrderQuery:
    order_id: str | None  # None when the model answered without calling lookup_order
    text: str
    raw: Any


# -- one request, either SDK -----------------------------------------------------------------


@dataclass
class _Answer:
    text: str
    refused: bool
    raw: Any


def _ask(
    model: str,
    system: str,
    user: str,
    *,
    json_mode: bool = False,
    logprobs: bool = False,
    tools: list[dict[str, Any]] | None = None,
    max_tokens: int = 400,
) -> _Answer:
    if provider_for(model) == "anthropic":
        kwargs: dict[str, Any] = {}
        if tools:
            kwargs["tools"] = [
                {"name": t["name"], "description": t["description"], "input_schema": t["parameters"]}
                for t in tools
            ]
        message = anthropic_client().messages.create(
            model=model,
            max_tokens=max_tokens,
            system=system,
            messages=[{"role": "user", "content": user}],
            **kwargs,
        )
        text = "".join(block.text for block in message.content if block.type == "text")
        return _Answer(text, message.stop_reason == "refusal", message)

    kwargs = {}
    if json_mode:
        kwargs["response_format"] = {"type": "json_object"}
    if logprobs:
        kwargs["logprobs"] = True
    if tools:
        kwargs["tools"] = [{"type": "function", "function": t} for t in tools]
    completion = openai_client().chat.completions.create(
        model=model,
        max_completion_tokens=max_tokens,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
        **kwargs,
    )
    message = completion.choices[0].message
    if message.refusal:
        return _Answer(message.refusal, True, completion)
    return _Answer(message.content or "", False, completion)


# -- the desk ----------------------------------------------------------------------------------


def extract_ticket(ticket: str, *, model: str) -> Extraction:
    """The ticket's fields as JSON (OpenAI JSON mode; a JSON-only instruction for Claude)."""
    answer = _ask(model, EXTRACT_SYSTEM, ticket, json_mode=True)
    try:
        data = json.loads(answer.text)
    except ValueError:
        data = None
    return Extraction(answer.text, data if isinstance(data, dict) else None, answer.raw)


def classify_queue(ticket: str, *, model: str) -> Triage:
    """One of :data:`QUEUES`, with the model's confidence in it (OpenAI logprobs)."""
    answer = _ask(model, ROUTE_SYSTEM, ticket, logprobs=True, max_tokens=5)
    return Triage(answer.text.strip().lower(), _confidence(answer.raw), answer.raw)


def route_ticket(ticket: str, *, model: str) -> tuple[str, Triage]:
    """``(queue, triage)`` when the model is confident, else ``("human-review", triage)``."""
    triage = classify_queue(ticket, model=model)
    confident = triage.confidence is not None and triage.confidence >= AUTO_ROUTE_CONFIDENCE
    return (triage.queue if confident and triage.queue in QUEUES else "human-review"), triage


def summarize(ticket: str, *, model: str, variant: str = "v1") -> Summary:
    """Three bullets for the agent, with the prompt ``variant`` (a key of :data:`SUMMARY_PROMPTS`)."""
    if variant not in SUMMARY_PROMPTS:
        raise ValueError(
            f"summarize: unknown prompt variant {variant!r}; the variants are {', '.join(SUMMARY_PROMPTS)}"
        )
    answer = _ask(model, SUMMARY_PROMPTS[variant], ticket)
    return Summary(answer.text, answer.raw)


def answer_customer(message: str, *, model: str) -> Reply:
    """A reply to the customer; the model must refuse requests for other customers' data."""
    answer = _ask(model, ANSWER_SYSTEM, message)
    return Reply(answer.text, answer.refused, answer.raw)


def find_order(question: str, *, model: str) -> OrderQuery:
    """The order id the model asks ``lookup_order`` for (the tool call is the app's next step)."""
    answer = _ask(model, ORDER_SYSTEM, question, tools=[LOOKUP_ORDER_TOOL])
    return OrderQuery(_tool_order_id(answer.raw), answer.text, answer.raw)


def _tool_order_id(raw: Any) -> str | None:
    if getattr(raw, "choices", None):  # OpenAI chat completion
        for call in raw.choices[0].message.tool_calls or []:
            if call.function.name == "lookup_order":
                return str(json.loads(call.function.arguments).get("order_id"))
        return None
    for block in getattr(raw, "content", []):  # Anthropic message
        if block.type == "tool_use" and block.name == "lookup_order":
            return str(dict(block.input).get("order_id"))
    return None


def _confidence(raw: Any) -> float | None:
    """The probability of the answer's tokens, from OpenAI logprobs (None for Anthropic)."""
    choices = getattr(raw, "choices", None)
    if not choices or choices[0].logprobs is None or not choices[0].logprobs.content:
        return None
    return math.exp(sum(token.logprob for token in choices[0].logprobs.content))
