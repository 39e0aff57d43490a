"""Structural and format checks: JSON (strict, lenient, schema), list counts, limits, text matches.

Pure module: no pytest import. Each function returns a :class:`CheckResult`; the JSON checks put
the parsed value on ``result.value``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pytest_modelmigrate.checks.result import (
    CheckInput,
    CheckResult,
    ChecksConfigError,
    resolve_output,
    shorten,
)
from pytest_modelmigrate.jsontext import FENCE_RE, extract_json, strict_loads

__all__ = [
    "bullets",
    "contains",
    "extract_json",
    "json_lenient",
    "json_schema",
    "json_strict",
    "max_chars",
    "max_lines",
    "max_words",
    "min_words",
    "not_contains",
    "numbered",
    "one_of",
    "regex",
]

_BULLET_RE = re.compile(r"^([ \t]*)[-*•+‣◦▪]\s+\S")
_NUMBERED_RE = re.compile(r"^([ \t]*)(?:\d{1,3}|[a-zA-Z])[.)]\s+\S")


# --- JSON -----------------------------------------------------------------------------------


def json_strict(output: CheckInput = None, *, name: str | None = None) -> CheckResult:
    """The whole output is exactly one JSON value (surrounding whitespace allowed).

    Code fences, commentary before or after, ``NaN``/``Infinity`` and Python-style quoting fail,
    and the message quotes the extra text. ``result.value`` is the parsed value when it passes.
    """
    resolved = resolve_output(output, "json_strict")
    text = resolved.text
    stripped = text.strip()
    if not stripped:
        return CheckResult("json_strict", False, "output is empty, expected one JSON value", label=name)
    try:
        value = strict_loads(stripped)
    except ValueError as exc:
        return _explain_strict_failure(text, exc, name)
    return CheckResult(
        "json_strict", True, f"one JSON {_kind(value)}", {"type": _kind(value)}, label=name, value=value
    )


def _explain_strict_failure(text: str, exc: ValueError, name: str | None) -> CheckResult:
    details: dict[str, Any] = {"error": str(exc)}
    fence = FENCE_RE.search(text)
    found = extract_json(text)
    if fence is not None and found is not None and found[1] == "fence":
        before, after = text[: fence.start()].strip(), text[fence.end() :].strip()
        details.update(wrapper="code fence", text_before=before, text_after=after)
        extra = "".join(f"; text {w}: {shorten(t)!r}" for w, t in (("before", before), ("after", after)) if t)
        msg = f"JSON is wrapped in a ```{fence.group(1)} code fence{extra}"
    elif found is not None:
        value, _, start, end = found
        before, after = text[:start].strip(), text[end:].strip()
        details.update(wrapper="prose", text_before=before, text_after=after)
        parts = [f"{w}: {shorten(t)!r}" for w, t in (("before", before), ("after", after)) if t]
        msg = f"JSON {_kind(value)} has extra text around it ({'; '.join(parts)})"
    else:
        msg = f"not valid JSON: {exc} (near {shorten(_near(text, exc), 40)!r})"
    return CheckResult("json_strict", False, msg, details, label=name)


def _near(text: str, exc: ValueError) -> str:
    pos = getattr(exc, "pos", None)
    if isinstance(pos, int):
        return text.strip()[max(0, pos - 15) : pos + 25]
    return text.strip()[:40]


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), "null" if value is None else "number"
    )


def json_lenient(output: CheckInput = None, *, name: str | None = None) -> CheckResult:
    """The output contains a JSON object or array: the whole text, a code fence, or in prose.

    ``result.value`` is the first such value; ``details["found_in"]`` says where it was.
    """
    resolved = resolve_output(output, "json_lenient")
    found = extract_json(resolved.text)
    if found is None:
        return CheckResult(
            "json_lenient",
            False,
            f"no JSON value found in the output ({shorten(resolved.text)!r})",
            label=name,
        )
    value, where, start, end = found
    return CheckResult(
        "json_lenient",
        True,
        f"JSON {_kind(value)} found ({where})",
        {"found_in": where, "start": start, "end": end, "type": _kind(value)},
        label=name,
        value=value,
    )


def _is_pydantic_model(schema: Any) -> bool:
    return isinstance(schema, type) and callable(getattr(schema, "model_validate", None))


def _json_path(path: Iterable[Any]) -> str:
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


# Validators of the schemas seen, by the SHA-256 of their canonical JSON: checking a schema
# costs about 20 times validating a small value against it, and a test checks the same schema
# on every sample and every model. Bounded, least recently used first out.
_VALIDATORS: OrderedDict[bytes, Any] = OrderedDict()
_VALIDATORS_MAX = 256
_VALIDATORS_LOCK = threading.Lock()


def _canonical(value: Any) -> bool:
    """Whether ``value`` is plain JSON that its dump gives back exactly (no tuple, int key, NaN)."""
    kind = type(value)
    if kind is dict:
        return all(type(k) is str and _canonical(v) for k, v in value.items())
    if kind is list:
        return all(_canonical(v) for v in value)
    if kind is float:
        return math.isfinite(value)
    return kind in (str, int, bool) or value is None


def _schema_validator(schema: Mapping[str, Any]) -> Any:
    """A jsonschema validator for ``schema``, checked once per distinct schema.

    The cache holds a copy made from the canonical dump, so editing the caller's dict afterwards
    changes the key, never a cached validator. A schema that is not plain JSON (tuples, non-string
    keys, a Mapping other than dict inside) is checked on every call, as before. An invalid schema
    is never cached: every call raises the same :class:`ChecksConfigError`.
    """
    plain = dict(schema)
    key: bytes | None = None
    if _canonical(plain):
        # Keys in their own order: a validator's messages quote its schema, so two schemas that
        # differ only in key order each get a validator of their own.
        text = json.dumps(plain, separators=(",", ":"), allow_nan=False)
        key = hashlib.sha256(text.encode()).digest()
        with _VALIDATORS_LOCK:
            found = _VALIDATORS.get(key)
            if found is not None:
                _VALIDATORS.move_to_end(key)
                return found
        plain = json.loads(text)  # a deep copy of its own
    import jsonschema

    cls = jsonschema.validators.validator_for(plain)
    try:
        cls.check_schema(plain)
    except jsonschema.SchemaError as exc:
        where = _json_path(exc.path)
        raise ChecksConfigError(f"json_schema: invalid schema at {where}: {exc.message}") from exc
    validator = cls(plain, format_checker=cls.FORMAT_CHECKER)
    if key is not None:
        with _VALIDATORS_LOCK:
            _VALIDATORS[key] = validator
            while len(_VALIDATORS) > _VALIDATORS_MAX:
                _VALIDATORS.popitem(last=False)
    return validator


def json_schema(
    output: CheckInput = None,
    schema: Mapping[str, Any] | type | None = None,
    *,
    lenient: bool = False,
    name: str | None = None,
) -> CheckResult:
    """The output's JSON validates against ``schema``: a JSON Schema dict or a pydantic model class.

    The output is parsed strictly (one JSON value) unless ``lenient=True``; an already-parsed
    ``dict``/``list`` is validated as is. Every error is listed with its JSON path
    (``$.items[0].qty``). ``result.value`` is the parsed value (the model instance for pydantic).
    """
    check = "json_schema"
    if schema is None:
        raise ChecksConfigError(f"{check}: no schema given")
    validator: Any = None
    if not _is_pydantic_model(schema):
        if not isinstance(schema, Mapping):
            raise ChecksConfigError(
                f"{check}: schema must be a JSON Schema dict or a pydantic model class, "
                f"got {type(schema).__name__}"
            )
        validator = _schema_validator(schema)

    resolved = resolve_output(output, check, allow_parsed=True)
    if resolved.source == "json":
        value = resolved.parsed
    else:
        parse = (json_lenient if lenient else json_strict)(resolved.call or resolved.text)
        if not parse:
            return CheckResult(check, False, f"cannot validate: {parse.message}", parse.details, label=name)
        value = parse.value

    if validator is None:
        return _validate_pydantic(value, schema, name)
    errors = sorted(validator.iter_errors(value), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    listed = [
        {"path": _json_path(e.absolute_path), "message": e.message, "validator": str(e.validator)}
        for e in errors
    ]
    if listed:
        lines = "; ".join(f"{e['path']}: {e['message']}" for e in listed[:10])
        more = f" (+{len(listed) - 10} more)" if len(listed) > 10 else ""
        return CheckResult(
            check,
            False,
            f"{len(listed)} schema error(s): {lines}{more}",
            {"errors": listed, "validator": "jsonschema"},
            label=name,
            value=value,
        )
    return CheckResult(
        check, True, "valid against the schema", {"validator": "jsonschema"}, label=name, value=value
    )


def _validate_pydantic(value: Any, model: Any, name: str | None) -> CheckResult:
    try:
        instance = model.model_validate(value)
    except ValueError as exc:  # pydantic.ValidationError subclasses ValueError
        raw_errors: Any = getattr(exc, "errors", None)
        items = raw_errors() if callable(raw_errors) else []
        listed = [{"path": _json_path(e.get("loc", ())), "message": str(e.get("msg", ""))} for e in items]
        lines = "; ".join(f"{e['path']}: {e['message']}" for e in listed[:10]) or str(exc)
        return CheckResult(
            "json_schema",
            False,
            f"{len(listed)} validation error(s) for {model.__name__}: {lines}",
            {"errors": listed, "validator": f"pydantic:{model.__name__}"},
            label=name,
            value=value,
        )
    return CheckResult(
        "json_schema",
        True,
        f"valid {model.__name__}",
        {"validator": f"pydantic:{model.__name__}"},
        label=name,
        value=instance,
    )


# --- lists ----------------------------------------------------------------------------------


def _outside_fences(text: str) -> list[str]:
    return FENCE_RE.sub("", text).splitlines()


def _list_items(text: str, pattern: re.Pattern[str], nested: bool) -> list[str]:
    matches = [
        (m.group(1).expandtabs(4), line.strip())
        for line in _outside_fences(text)
        if (m := pattern.match(line))
    ]
    if not matches or nested:
        return [item for _, item in matches]
    top = min(len(indent) for indent, _ in matches)
    return [item for indent, item in matches if len(indent) == top]


def _count_check(
    check: str,
    what: str,
    items: list[str],
    exactly: int | None,
    at_least: int | None,
    at_most: int | None,
    name: str | None,
) -> CheckResult:
    if exactly is None and at_least is None and at_most is None:
        raise ChecksConfigError(f"{check}: give exactly=, at_least= or at_most=")
    n = len(items)
    details: dict[str, Any] = {
        "count": n,
        "items": [shorten(i, 60) for i in items],
        "exactly": exactly,
        "at_least": at_least,
        "at_most": at_most,
    }
    if exactly is not None and n != exactly:
        return CheckResult(
            check, False, f"expected exactly {exactly} {what}, found {n}", details, score=float(n), label=name
        )
    if at_least is not None and n < at_least:
        return CheckResult(
            check,
            False,
            f"expected at least {at_least} {what}, found {n}",
            details,
            score=float(n),
            label=name,
        )
    if at_most is not None and n > at_most:
        return CheckResult(
            check, False, f"expected at most {at_most} {what}, found {n}", details, score=float(n), label=name
        )
    return CheckResult(check, True, f"{n} {what}", details, score=float(n), label=name)


def bullets(
    output: CheckInput = None,
    exactly: int | None = None,
    *,
    at_least: int | None = None,
    at_most: int | None = None,
    nested: bool = False,
    name: str | None = None,
) -> CheckResult:
    """Count of bullet points (``-``, ``*``, ``•``, ``+`` lines; code fences ignored).

    Only the outermost level counts unless ``nested=True``.
    """
    text = resolve_output(output, "bullets").text
    return _count_check(
        "bullets", "bullet points", _list_items(text, _BULLET_RE, nested), exactly, at_least, at_most, name
    )


def numbered(
    output: CheckInput = None,
    exactly: int | None = None,
    *,
    at_least: int | None = None,
    at_most: int | None = None,
    nested: bool = False,
    name: str | None = None,
) -> CheckResult:
    """Count of numbered items (``1.``, ``2)``, ``a.``; code fences ignored), outermost level."""
    text = resolve_output(output, "numbered").text
    return _count_check(
        "numbered",
        "numbered items",
        _list_items(text, _NUMBERED_RE, nested),
        exactly,
        at_least,
        at_most,
        name,
    )


# --- limits ---------------------------------------------------------------------------------


def _limit(check: str, unit: str, n: int, limit: int | None, upper: bool, name: str | None) -> CheckResult:
    if limit is None or limit < 0:
        raise ChecksConfigError(f"{check}: give a non-negative limit")
    ok = n <= limit if upper else n >= limit
    rel = "≤" if upper else "≥"
    msg = f"{n} {unit} ({rel} {limit})" if ok else f"{n} {unit}, expected {rel} {limit}"
    return CheckResult(check, ok, msg, {"count": n, "limit": limit}, score=float(n), label=name)


def _words(text: str) -> int:
    return len(text.split())


def max_words(output: CheckInput = None, limit: int | None = None, *, name: str | None = None) -> CheckResult:
    """At most ``limit`` words (whitespace-separated)."""
    return _limit("max_words", "words", _words(resolve_output(output, "max_words").text), limit, True, name)


def min_words(output: CheckInput = None, limit: int | None = None, *, name: str | None = None) -> CheckResult:
    """At least ``limit`` words (whitespace-separated)."""
    return _limit("min_words", "words", _words(resolve_output(output, "min_words").text), limit, False, name)


def max_lines(
    output: CheckInput = None, limit: int | None = None, *, skip_blank: bool = True, name: str | None = None
) -> CheckResult:
    """At most ``limit`` lines (blank lines not counted unless ``skip_blank=False``)."""
    lines = resolve_output(output, "max_lines").text.strip().splitlines()
    n = len([ln for ln in lines if ln.strip()]) if skip_blank else len(lines)
    return _limit("max_lines", "lines", n, limit, True, name)


def max_chars(output: CheckInput = None, limit: int | None = None, *, name: str | None = None) -> CheckResult:
    """At most ``limit`` characters (surrounding whitespace not counted)."""
    return _limit(
        "max_chars", "characters", len(resolve_output(output, "max_chars").text.strip()), limit, True, name
    )


# --- text matches ---------------------------------------------------------------------------


def regex(
    output: CheckInput = None,
    pattern: str | re.Pattern[str] | None = None,
    *,
    flags: int = 0,
    full: bool = False,
    name: str | None = None,
) -> CheckResult:
    """``pattern`` is found in the output (``re.search``), or matches all of it with ``full=True``."""
    if pattern is None:
        raise ChecksConfigError("regex: no pattern given")
    try:
        compiled = re.compile(pattern, flags) if isinstance(pattern, str) else pattern
    except re.error as exc:
        raise ChecksConfigError(f"regex: invalid pattern {pattern!r}: {exc}") from exc
    text = resolve_output(output, "regex").text
    match = compiled.fullmatch(text.strip()) if full else compiled.search(text)
    details: dict[str, Any] = {"pattern": compiled.pattern, "full": full}
    if match is None:
        how = "does not fully match" if full else "not found in"
        return CheckResult(
            "regex", False, f"/{compiled.pattern}/ {how} {shorten(text)!r}", details, label=name
        )
    details["match"] = match.group(0)
    return CheckResult(
        "regex",
        True,
        f"/{compiled.pattern}/ matched {shorten(match.group(0))!r}",
        details,
        label=name,
        value=match,
    )


def _needles(check: str, needles: str | Sequence[str] | None) -> list[str]:
    if needles is None or (not isinstance(needles, str) and not needles):
        raise ChecksConfigError(f"{check}: nothing to look for")
    return [needles] if isinstance(needles, str) else list(needles)


def _context(text: str, index: int, length: int) -> str:
    return text[max(0, index - 20) : index + length + 20].replace("\n", " ")


def contains(
    output: CheckInput = None,
    needles: str | Sequence[str] | None = None,
    *,
    case_sensitive: bool = True,
    name: str | None = None,
) -> CheckResult:
    """Every one of ``needles`` (a string or a list) occurs in the output."""
    items = _needles("contains", needles)
    text = resolve_output(output, "contains").text
    hay = text if case_sensitive else text.lower()
    missing = [n for n in items if (n if case_sensitive else n.lower()) not in hay]
    details = {"needles": items, "missing": missing, "case_sensitive": case_sensitive}
    if missing:
        return CheckResult(
            "contains", False, f"missing {missing!r} in {shorten(text)!r}", details, label=name
        )
    return CheckResult("contains", True, f"contains {items!r}", details, label=name)


def not_contains(
    output: CheckInput = None,
    needles: str | Sequence[str] | None = None,
    *,
    case_sensitive: bool = False,
    name: str | None = None,
) -> CheckResult:
    """None of ``needles`` occurs in the output (case-insensitive by default)."""
    items = _needles("not_contains", needles)
    text = resolve_output(output, "not_contains").text
    hay = text if case_sensitive else text.lower()
    found = []
    for n in items:
        idx = hay.find(n if case_sensitive else n.lower())
        if idx >= 0:
            found.append({"needle": n, "context": _context(text, idx, len(n))})
    details = {"needles": items, "found": found, "case_sensitive": case_sensitive}
    if found:
        shown = "; ".join(f"{f['needle']!r} in '…{f['context']}…'" for f in found)
        return CheckResult("not_contains", False, f"found {shown}", details, label=name)
    return CheckResult("not_contains", True, f"none of {items!r}", details, label=name)


def _normalize_label(label: str) -> str:
    return label.strip().strip("\"'`*.").strip().lower()


def one_of(
    output: CheckInput = None,
    labels: Sequence[str] | None = None,
    *,
    case_sensitive: bool = True,
    name: str | None = None,
) -> CheckResult:
    """The output (surrounding whitespace stripped) is exactly one of ``labels``.

    A near miss (other case, quotes, a trailing full stop) still fails, and the message names the
    label it nearly was: that is how a shifted label format shows up.
    """
    if not labels or isinstance(labels, str):
        raise ChecksConfigError("one_of: give the label set as a list of strings")
    text = resolve_output(output, "one_of").text.strip()
    allowed = list(labels)
    matched = text in allowed if case_sensitive else text.lower() in {lb.lower() for lb in allowed}
    details: dict[str, Any] = {"value": text, "labels": allowed}
    if matched:
        return CheckResult("one_of", True, f"{text!r} is in the label set", details, label=name, value=text)
    near = [lb for lb in allowed if _normalize_label(lb) == _normalize_label(text)]
    if not near:
        near = difflib.get_close_matches(text, allowed, n=1, cutoff=0.75)
    hint = f"; nearest label {near[0]!r}" if near else ""
    if near:
        details["nearest"] = near[0]
    return CheckResult(
        "one_of", False, f"{shorten(text)!r} is not one of {allowed!r}{hint}", details, label=name, value=text
    )
