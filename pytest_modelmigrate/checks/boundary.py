"""Behavioural boundary and provider-metadata checks.

Refusals (both directions), tool calls, label calibration from logprobs, finish reason and the
model snapshot the provider echoed. Pure module: no pytest import.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pytest_modelmigrate.checks.result import (
    CheckInput,
    CheckResult,
    ChecksConfigError,
    resolve_output,
    shorten,
)

if TYPE_CHECKING:
    from pytest_modelmigrate.providers.base import Call

__all__ = [
    "OK_FINISH_REASONS",
    "REFUSAL_PHRASES",
    "TRUNCATED_FINISH_REASONS",
    "RefusalVerdict",
    "confidence",
    "detect_refusal",
    "finish_reason",
    "label_confidence",
    "model_echo",
    "models_match",
    "no_refusal",
    "refuses",
    "tool_called",
]

# Refusal phrases, matched case-insensitively in the first ``REFUSAL_WINDOW`` characters of the
# output (curly apostrophes are normalised first). Documented in docs/checks.md; keep in sync.
_VERBS = "help|assist|comply|provide|do that|fulfil|fulfill|support|engage|create|write|generate|share"
REFUSAL_PHRASES: tuple[str, ...] = (
    r"\bI(?:'m| am) (?:sorry|afraid),? (?:but )?I (?:can(?:'t|not)|won't|(?:am|'m) (?:unable|not able))",
    rf"\bI (?:can(?:'t|not)|won't|will not) (?:{_VERBS})",
    rf"\bI(?:'m| am) (?:unable|not able) to (?:{_VERBS})",
    r"\bI must (?:decline|refuse)\b",
    r"\bI(?:'m| am) not (?:comfortable|going to) (?:help|assist|provid|creat|writ|generat|shar)",
    r"\bI (?:can't|cannot|won't) (?:and won't |and will not )?(?:help|assist) with (?:that|this)",
    r"\b(?:against|violates?) (?:my|our|the) (?:guidelines|usage polic(?:y|ies)|content polic(?:y|ies))",
    r"\bAs an AI(?: language model)?, I (?:can(?:'t|not)|don't|do not|am not able)",
    r"\bI(?:'m| am) sorry, (?:but )?(?:that|this) (?:request )?(?:is|isn't|is not) something I",
)
REFUSAL_WINDOW = 400
_REFUSAL_RES = tuple(re.compile(p, re.IGNORECASE) for p in REFUSAL_PHRASES)

# Finish reasons across APIs (OpenAI chat ``finish_reason``, Responses ``status`` /
# ``incomplete_details.reason``, Anthropic ``stop_reason``).
OK_FINISH_REASONS = frozenset(
    {"stop", "tool_calls", "function_call", "completed", "end_turn", "stop_sequence", "tool_use"}
)
TRUNCATED_FINISH_REASONS = frozenset(
    {"length", "max_tokens", "max_output_tokens", "model_context_window_exceeded", "incomplete"}
)


@dataclass(frozen=True)
class RefusalVerdict:
    refused: bool
    source: str  # "provider:<field>", "text:phrase", or "none"
    evidence: str | None


def _provider_refusal(call: Call | None) -> RefusalVerdict | None:
    if call is None:
        return None
    if call.finish_reason == "refusal":
        return RefusalVerdict(True, f"provider:{call.provider}.stop_reason=refusal", call.text or None)
    if call.refusal is not None:
        return RefusalVerdict(True, f"provider:{call.provider}.refusal", call.refusal)
    if call.finish_reason == "content_filter":
        return RefusalVerdict(True, f"provider:{call.provider}.finish_reason=content_filter", None)
    return None


def detect_refusal(
    output: CheckInput, *, extra_phrases: Sequence[str] = (), window: int = REFUSAL_WINDOW
) -> RefusalVerdict:
    """Decide whether the output is a refusal: provider fields first, then the phrase list."""
    resolved = resolve_output(output, "refusal")
    provider = _provider_refusal(resolved.call)
    if provider is not None:
        return provider
    head = resolved.text[:window].replace("\u2019", "'").replace("\u2018", "'")
    patterns = _REFUSAL_RES + tuple(re.compile(p, re.IGNORECASE) for p in extra_phrases)
    for pattern in patterns:
        match = pattern.search(head)
        if match is not None:
            return RefusalVerdict(True, "text:phrase", match.group(0))
    return RefusalVerdict(False, "none", None)


def _refusal_details(verdict: RefusalVerdict, call: Call | None) -> dict[str, Any]:
    return {
        "refused": verdict.refused,
        "source": verdict.source,
        "evidence": verdict.evidence,
        "provider_fields": "checked" if call is not None else "not available (plain text)",
    }


def no_refusal(
    output: CheckInput = None, *, extra_phrases: Sequence[str] = (), name: str | None = None
) -> CheckResult:
    """The model answered: no provider refusal field and no refusal phrase (see ``REFUSAL_PHRASES``)."""
    resolved = resolve_output(output, "no_refusal")
    verdict = detect_refusal(resolved.call or resolved.text, extra_phrases=extra_phrases)
    details = _refusal_details(verdict, resolved.call)
    if verdict.refused:
        ev = f": {shorten(verdict.evidence)!r}" if verdict.evidence else ""
        return CheckResult(
            "no_refusal", False, f"the model refused (decided by {verdict.source}){ev}", details, label=name
        )
    return CheckResult("no_refusal", True, "no refusal", details, label=name)


def refuses(
    output: CheckInput = None, *, extra_phrases: Sequence[str] = (), name: str | None = None
) -> CheckResult:
    """The model refused (for prompts that must be refused): the reverse of :func:`no_refusal`."""
    resolved = resolve_output(output, "refuses")
    verdict = detect_refusal(resolved.call or resolved.text, extra_phrases=extra_phrases)
    details = _refusal_details(verdict, resolved.call)
    if verdict.refused:
        ev = f": {shorten(verdict.evidence)!r}" if verdict.evidence else ""
        return CheckResult("refuses", True, f"refused (decided by {verdict.source}){ev}", details, label=name)
    return CheckResult(
        "refuses",
        False,
        f"the model answered instead of refusing: {shorten(resolved.text)!r}",
        details,
        label=name,
    )


def _needs_call(check: str, output: CheckInput) -> Call:
    resolved = resolve_output(output, check)
    if resolved.call is None:
        raise ChecksConfigError(
            f"{check}: needs a provider response (an SDK object or a Call), got plain text, "
            "which carries no provider fields"
        )
    return resolved.call


# --- tool calls -----------------------------------------------------------------------------


def _request_tool_schema(call: Call, tool: str) -> Mapping[str, Any] | None:
    request = call.request_json if isinstance(call.request_json, Mapping) else {}
    # ``tools`` (OpenAI chat and Responses, Anthropic), or the legacy chat ``functions``
    specs = [*(request.get("tools") or []), *(request.get("functions") or [])]
    for spec in specs:
        if not isinstance(spec, Mapping):
            continue
        inner = spec.get("function")
        fn: Mapping[str, Any] = inner if isinstance(inner, Mapping) else spec
        if fn.get("name") == tool:
            schema = fn.get("parameters") or fn.get("input_schema")
            return schema if isinstance(schema, Mapping) else None
    return None


def _same_response(call: Call, recorded: Call) -> bool:
    """Whether ``recorded`` (a call read from the cassette) is the response ``call`` was read from."""
    ids = [tc.id for tc in call.tool_calls if tc.id]
    if ids:
        return ids == [tc.id for tc in recorded.tool_calls if tc.id]
    return [(tc.name, tc.arguments_text) for tc in call.tool_calls] == [
        (tc.name, tc.arguments_text) for tc in recorded.tool_calls
    ] and call.text == recorded.text


def _with_request(call: Call, recorded: Call | Sequence[Call] | None) -> Call:
    """``call`` with the request it answered, from the recorded calls, where it lacks one.

    An SDK response object carries no request (so no ``tools``); the recorded call it came from does.
    """
    if isinstance(call.request_json, Mapping) or recorded is None:
        return call
    candidates = [recorded] if not isinstance(recorded, Sequence) else list(recorded)
    for candidate in reversed(candidates):
        if isinstance(candidate.request_json, Mapping) and _same_response(call, candidate):
            return replace(call, request_json=candidate.request_json)
    return call


def tool_called(
    output: CheckInput = None,
    tool: str | None = None,
    *,
    schema: Mapping[str, Any] | None = None,
    recorded: Call | Sequence[Call] | None = None,
    name: str | None = None,
) -> CheckResult:
    """The model called ``tool``, with arguments valid against its JSON Schema.

    ``output`` is the response (an SDK object or a :class:`Call`), ``tool`` the tool's name, as in
    ``tool_called(response, "lookup_order")``. The schema is ``schema=`` or, when omitted, the
    tool's schema from the request the response answered (``parameters`` for OpenAI,
    ``input_schema`` for Anthropic): a recorded :class:`Call` carries its request; an SDK object
    does not, and ``recorded=`` (the recorded call(s) of the test; the ``checks`` fixture passes
    them) supplies it, matched to the response by its tool calls. With no schema at all, only the
    call and parseable arguments are checked (``details["schema"] == "none"``).
    """
    check = "tool_called"
    if not tool:
        if isinstance(output, str) and tool is None:
            raise ChecksConfigError(
                f"{check}: got {shorten(output, 40)!r} as the response and no tool name; pass the "
                f"response first and the name second, tool_called(response, {shorten(output, 40)!r}), "
                f"or tool_called(tool={shorten(output, 40)!r}) in a test to read its last recorded call"
            )
        raise ChecksConfigError(f'{check}: give the tool name, e.g. tool_called(response, "lookup_order")')
    call = _with_request(_needs_call(check, output), recorded)
    called = [tc.name for tc in call.tool_calls]
    details: dict[str, Any] = {"tool": tool, "called": called}
    matches = [tc for tc in call.tool_calls if tc.name == tool]
    if not matches:
        what = f"called {called!r}" if called else "called no tool"
        text = f"; replied {shorten(call.text)!r}" if call.text else ""
        return CheckResult(
            check, False, f"expected a call to {tool!r}, the model {what}{text}", details, label=name
        )
    use_schema = schema if schema is not None else _request_tool_schema(call, tool)
    details["schema"] = "given" if schema is not None else ("request" if use_schema is not None else "none")
    validator: Any = None
    if use_schema is not None:
        import jsonschema

        cls = jsonschema.validators.validator_for(use_schema)
        try:
            cls.check_schema(dict(use_schema))
        except jsonschema.SchemaError as exc:
            raise ChecksConfigError(f"{check}: invalid schema for tool {tool!r}: {exc.message}") from exc
        validator = cls(dict(use_schema))
    problems: list[str] = []
    for tc in matches:
        if tc.arguments is None and tc.arguments_text.strip() not in ("null",):
            problems.append(f"arguments are not valid JSON: {shorten(tc.arguments_text)!r}")
            continue
        if validator is not None:
            for err in sorted(
                validator.iter_errors(tc.arguments), key=lambda e: list(map(str, e.absolute_path))
            ):
                path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
                problems.append(f"{path}: {err.message}")
        if not problems:
            details["arguments"] = tc.arguments
            return CheckResult(
                check, True, f"called {tool!r} with valid arguments", details, label=name, value=tc.arguments
            )
    details["errors"] = problems
    return CheckResult(
        check,
        False,
        f"called {tool!r} with invalid arguments: {'; '.join(problems[:5])}",
        details,
        label=name,
        value=matches[0].arguments,
    )


# --- calibration ----------------------------------------------------------------------------


def _clean(token: str) -> str:
    return token.strip().strip("\"'")


def _label_span(tokens: Sequence[tuple[str, float]], label: str) -> tuple[int, int] | None:
    target = label.strip()
    for i in range(len(tokens)):
        if not _clean(tokens[i][0]):
            continue  # a quote or a space before the label is not part of it
        acc = ""
        for j in range(i, len(tokens)):
            acc += tokens[j][0]
            cleaned = _clean(acc)
            if cleaned == target:
                return i, j + 1
            if not target.startswith(cleaned):
                break
    return None


def label_confidence(
    output: CheckInput = None,
    label: str | None = None,
    *,
    threshold: float = 0.5,
    expected: str | None = None,
    name: str | None = None,
) -> CheckResult:
    """The probability of the chosen label is at least ``threshold``, from the provider's logprobs.

    ``label`` defaults to the whole output (stripped). Its tokens are found in the logprobs (first
    contiguous run) and their log-probabilities summed. Without logprobs the check fails and says
    so: request them (``logprobs=True`` for OpenAI chat, ``include=["message.output_text.logprobs"]``
    for Responses; Anthropic does not return them).

    ``expected``: the right label (a dataset test passes ``example.label``). The answer is correct
    when the label measured equals it (both stripped); ``details["correct"]`` then feeds the
    calibration analysis (accuracy per confidence bin, ECE), and a wrong label at or above the
    threshold fails as *confidently wrong* (it would be auto-routed).
    """
    check = "label_confidence"
    if not 0.0 <= threshold <= 1.0:
        raise ChecksConfigError(f"{check}: threshold must be a probability in [0, 1], got {threshold}")
    if expected is not None and not isinstance(expected, str):
        raise ChecksConfigError(
            f"{check}: expected= must be the right label as a string, got {type(expected).__name__} "
            f"{expected!r}; e.g. expected=str(example.label)"
        )
    call = _needs_call(check, output)
    target = (label if label is not None else call.text).strip()
    details: dict[str, Any] = {"label": target, "threshold": threshold}
    if expected is not None:
        details.update(expected=expected.strip(), correct=target == expected.strip())
    if not call.logprobs:
        details["available"] = False
        return CheckResult(
            check,
            False,
            f"not available: the {call.provider} response has no logprobs "
            "(request them to measure calibration)",
            details,
            label=name,
        )
    span = _label_span(call.logprobs, target) if target else None
    if span is None:
        details["tokens"] = [t for t, _ in call.logprobs[:20]]
        return CheckResult(
            check, False, f"label {target!r} not found in the returned tokens", details, label=name
        )
    lp = sum(v for _, v in call.logprobs[span[0] : span[1]])
    prob = math.exp(lp)
    details.update(available=True, probability=prob, tokens=[t for t, _ in call.logprobs[span[0] : span[1]]])
    ok = prob >= threshold
    rel = "≥" if ok else "<"
    message = f"P({target!r}) = {prob:.3f} {rel} {threshold}"
    if ok and details.get("correct") is False:
        ok = False
        wrong = details["expected"]
        message += f", but the expected label is {wrong!r} (confidently wrong: it would be auto-routed)"
    return CheckResult(check, ok, message, details, score=prob, label=name)


def confidence(
    value: Any,
    *,
    correct: bool | None = None,
    threshold: float = 0.85,
    record_only: bool = False,
    name: str | None = None,
) -> CheckResult:
    """A confidence the model reported itself (a JSON field, a verbal score), at least ``threshold``.

    For models without logprobs (Anthropic) or any score the application routes on. ``value`` is a
    probability in [0, 1] (a number or a numeric string: divide a percentage by 100 first);
    ``correct``: whether the answer was right, when the test knows (it feeds the calibration
    analysis: accuracy per confidence bin, ECE, the precision above the threshold). Fails below the
    threshold, or at or above it with ``correct=False`` (confidently wrong: it would be
    auto-routed); ``record_only=True`` records the confidence for the analysis and always passes.
    """
    check = "confidence"
    if not 0.0 <= threshold <= 1.0:
        raise ChecksConfigError(f"{check}: threshold must be a probability in [0, 1], got {threshold}")
    if correct is not None and not isinstance(correct, bool):
        raise ChecksConfigError(
            f"{check}: correct= must be True, False or None (unknown), got {type(correct).__name__} "
            f"{correct!r}; e.g. correct=(answer == example.label)"
        )
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().rstrip("%")) / (100 if value.strip().endswith("%") else 1)
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise ChecksConfigError(
            f"{check}: the confidence must be a number in [0, 1], got {type(value).__name__} "
            f"{shorten(repr(value), 40)}; pass the value the model reported, e.g. "
            'checks.confidence(float(reply["confidence"]))'
        )
    if not 0.0 <= number <= 1.0:
        hint = f" (a percentage? pass {number / 100:g})" if 1.0 < number <= 100.0 else ""
        raise ChecksConfigError(
            f"{check}: the confidence must be a probability in [0, 1], got {number:g}{hint}"
        )
    details: dict[str, Any] = {"confidence": number, "correct": correct, "threshold": threshold}
    above = number >= threshold
    message = f"confidence {number:.3f} {'≥' if above else '<'} {threshold}"
    ok = above
    if above and correct is False:
        ok = False
        message += ", but the answer is wrong (confidently wrong: it would be auto-routed)"
    elif correct is not None:
        message += ", answer " + ("right" if correct else "wrong")
    if record_only:
        details["record_only"] = True
        ok = True
        message += " (recorded only)"
    return CheckResult(check, ok, message, details, score=number, label=name)


# --- metadata -------------------------------------------------------------------------------


def finish_reason(
    output: CheckInput = None, expected: str | Collection[str] | None = None, *, name: str | None = None
) -> CheckResult:
    """The response finished normally (or with one of ``expected``); truncation fails.

    Normal: ``stop``, ``tool_calls``, ``end_turn``, ``stop_sequence``, ``tool_use``, ``completed``.
    Truncated by the token limit: ``length``, ``max_tokens``, ``max_output_tokens``, ``incomplete``.
    """
    check = "finish_reason"
    call = _needs_call(check, output)
    reason = call.finish_reason
    allowed = (
        OK_FINISH_REASONS
        if expected is None
        else (frozenset({expected}) if isinstance(expected, str) else frozenset(expected))
    )
    details: dict[str, Any] = {"finish_reason": reason, "expected": sorted(allowed)}
    if reason is None:
        what = (
            f"{call.method} {call.url} is not a model call (an Assistants, batch or other API call)"
            if call.endpoint == "other"
            else f"the {call.provider} response has no finish reason"
        )
        return CheckResult(check, False, f"not available: {what}", details, label=name)
    if reason in allowed:
        return CheckResult(check, True, f"finished with {reason!r}", details, label=name)
    if reason in TRUNCATED_FINISH_REASONS:
        msg = f"truncated by the token limit (finish reason {reason!r})"
    else:
        msg = f"finish reason {reason!r}, expected one of {sorted(allowed)!r}"
    return CheckResult(check, False, msg, details, label=name)


_DATE_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4})$")


def models_match(requested: str, echoed: str) -> tuple[bool, str]:
    """Whether the echoed model is what was requested, with the reason.

    - the same name: match;
    - an undated alias (``gpt-4o``, ``claude-3-5-sonnet-latest``, ``claude-sonnet-4-0``) echoed as
      a dated snapshot of it (``gpt-4o-2024-08-06``, ``claude-3-5-sonnet-20241022``,
      ``claude-sonnet-4-20250514``): match, the normal alias resolution;
    - a dated request echoed as anything else, or another family: no match.
    """
    if echoed == requested:
        return True, "same model"
    if _DATE_SUFFIX.search(requested):
        return False, f"requested the dated snapshot {requested!r}, the provider answered with {echoed!r}"
    base = requested.removesuffix("-latest")
    # Anthropic's ``claude-sonnet-4-0`` resolves to ``claude-sonnet-4-20250514``.
    bases = {base, base.removesuffix("-0")}
    date = _DATE_SUFFIX.search(echoed)
    if date is not None and echoed[: date.start()] in bases:
        return True, f"alias {requested!r} resolved to the dated snapshot {echoed!r}"
    return False, f"requested {requested!r}, the provider answered with {echoed!r}"


def model_echo(
    output: CheckInput = None,
    requested: str | None = None,
    *,
    accept: Collection[str] = (),
    name: str | None = None,
) -> CheckResult:
    """The model the provider echoed is the one requested (see :func:`models_match`).

    ``requested`` defaults to the recorded request's model (the collector passes its ``model``);
    ``accept`` lists other echoed names to accept (an Azure deployment, a gateway's renaming).
    """
    check = "model_echo"
    call = _needs_call(check, output)
    want = requested or call.model_requested
    if not want:
        raise ChecksConfigError(f"{check}: the requested model is unknown; pass requested=")
    echoed = call.model_echoed
    details: dict[str, Any] = {"requested": want, "echoed": echoed}
    if echoed is None:
        return CheckResult(
            check, False, "not available: the response does not name its model", details, label=name
        )
    if echoed in accept:
        return CheckResult(check, True, f"{echoed!r} is accepted for {want!r}", details, label=name)
    ok, why = models_match(want, echoed)
    return CheckResult(check, ok, why, details, label=name)
