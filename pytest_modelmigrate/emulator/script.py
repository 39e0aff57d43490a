"""The emulator's script: per model, rules that say how to answer a prompt.

A script is a YAML or JSON file (or the same structure as a dict). It is validated once, when it
is loaded, and every mistake is reported as a :class:`ScriptError` naming the file and the key,
e.g. ``script.yaml: models.emu-new.rules[2]: unknown key 'repyl' (expected one of ...)``.
The format is documented in ``docs/emulator.md``.

This module is pure: it parses the script and draws replies; the HTTP side lives in ``server.py``.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import json
import math
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "Alternative",
    "Draw",
    "ErrorSpec",
    "ModelScript",
    "ReasoningSpec",
    "ReplySpec",
    "Responder",
    "Rule",
    "Script",
    "ScriptError",
    "ToolCallSpec",
    "load_script",
]


class ScriptError(ValueError):
    """An emulator script that cannot be used; the message names the file and the key."""


# The keys a reply may carry, with a one-line meaning (used in error messages and the docs).
REPLY_KEYS: dict[str, str] = {
    "reply": "the answer text",
    "json": "a value sent as JSON text",
    "refuse": "a refusal message",
    "tool_call": "one tool call {name, arguments}",
    "tool_calls": "a list of tool calls",
    "error": "a provider error {status, type, message, code, retry_after}",
    "wrap_json": "fraction of draws that wrap the text in commentary and a ```json fence",
    "confidence": "probability reported for every token when logprobs are requested",
    "latency_ms": "how long the server waits before answering",
    "input_tokens": "prompt token count to report",
    "output_tokens": "completion token count to report",
}
RESPONDER_KEYS = ("choices", "sequence")
RULE_KEYS = ("match", *RESPONDER_KEYS, *REPLY_KEYS)
ALTERNATIVE_KEYS = ("weight", *REPLY_KEYS)
MAX_LATENCY_MS = 3_600_000  # a scripted latency above an hour (or .inf) is a mistake

MODEL_KEYS = ("rules", "default", "latency_ms", "token_factor", "echo_model", "fingerprint", "reasoning")
REASONING_KEYS = ("text", "tokens")
TOP_KEYS = ("version", "seed", "latency_ms", "token_factor", "strict_models", "default", "models")
TOOL_CALL_KEYS = ("name", "arguments")
ERROR_KEYS = ("status", "type", "message", "code", "retry_after")


@dataclass(frozen=True)
class ToolCallSpec:
    """A scripted tool call; ``arguments`` is JSON text (possibly malformed on purpose)."""

    name: str
    arguments: str


@dataclass(frozen=True)
class ErrorSpec:
    """A scripted provider error; ``type`` None means the provider's usual type for ``status``.
    ``retry_after`` (seconds) is sent as the ``retry-after`` and ``retry-after-ms`` headers."""

    status: int
    message: str
    type: str | None = None
    code: str | None = None
    retry_after: float | None = None


@dataclass(frozen=True)
class ReplySpec:
    """One answer as the script states it. A spec with no text, refusal, tool call or error is
    the built-in automatic reply (see ``autoreply.py``)."""

    text: str | None = None
    refusal: str | None = None
    tool_calls: tuple[ToolCallSpec, ...] = ()
    error: ErrorSpec | None = None
    wrap_json: float = 0.0
    confidence: float | None = None
    latency_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None

    @property
    def is_auto(self) -> bool:
        return self.text is None and self.refusal is None and not self.tool_calls and self.error is None


@dataclass(frozen=True)
class Alternative:
    weight: float
    reply: ReplySpec


@dataclass(frozen=True)
class Responder:
    """What a rule or a default yields: weighted alternatives (a single reply is one alternative of
    weight 1), or, when ``sequence`` is true, the alternatives in request order (the last repeats)."""

    alternatives: tuple[Alternative, ...]
    sequence: bool = False


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str] | None
    responder: Responder
    where: str  # e.g. "models.emu-new.rules[2]", for reports


@dataclass(frozen=True)
class ReasoningSpec:
    """A model's ``reasoning:`` setting. ``enabled`` False (``reasoning: false``) makes the model
    refuse reasoning parameters; ``text`` is the thinking text (None: a sentence about the prompt);
    ``tokens`` the reasoning tokens to report at medium effort (None: the text's token count)."""

    enabled: bool = True
    text: str | None = None
    tokens: int | None = None


@dataclass(frozen=True)
class ModelScript:
    name: str
    rules: tuple[Rule, ...] = ()
    default: Responder | None = None
    latency_ms: float | None = None
    token_factor: float | None = None
    echo_model: str | None = None
    fingerprint: str | None = None  # the system_fingerprint to send; None: derived from the name
    reasoning: ReasoningSpec | None = None  # None: not declared


@dataclass(frozen=True)
class Draw:
    """The reply picked for one request, and where it came from."""

    reply: ReplySpec
    wrapped: bool  # the draw fell inside ``wrap_json``
    where: str  # the rule or default that answered, or "auto"
    latency_ms: float
    token_factor: float
    echo_model: str | None
    fingerprint: str | None = None
    reasoning: ReasoningSpec | None = None


_AUTO = ReplySpec()


@dataclass(frozen=True)
class Script:
    """A validated script. ``Script()`` is the empty script: every model gets the automatic reply."""

    models: Mapping[str, ModelScript] = field(default_factory=dict)
    default: Responder | None = None
    seed: int = 0
    latency_ms: float = 0.0
    token_factor: float = 1.0
    strict_models: bool = False
    source: str = "<script>"

    @classmethod
    def from_dict(cls, data: object, source: str = "<dict>") -> Script:
        return _Parser(source).script(data)

    def model(self, name: str) -> ModelScript | None:
        """The model section for ``name``: an exact key, else the first glob key (``emu-gpt-*``)."""
        found = self.models.get(name)
        if found is not None:
            return found
        for key, section in self.models.items():
            if any(ch in key for ch in "*?[") and fnmatch.fnmatchcase(name, key):
                return section
        return None

    def knows(self, name: str) -> bool:
        return not self.strict_models or self.model(name) is not None

    def draw(self, model: str, prompt: str, counter: int) -> Draw:
        """Pick the reply for the ``counter``-th request (from 0) of ``prompt`` to ``model``.

        Rules are tried in order and the first whose regex matches (``re.search``) answers; then
        the model's default; then the script's default; then the automatic reply. Weighted
        alternatives are drawn from a PRNG seeded with (seed, model, prompt, counter), so the k-th
        sample of a prompt is the same on every run and repeated samples vary.
        """
        section = self.model(model)
        responder: Responder | None = None
        where = "auto"
        if section is not None:
            for rule in section.rules:
                if rule.pattern is None or rule.pattern.search(prompt):
                    responder, where = rule.responder, rule.where
                    break
            if responder is None and section.default is not None:
                responder, where = section.default, f"models.{section.name}.default"
        if responder is None and self.default is not None:
            responder, where = self.default, "default"
        rng = random.Random(_seed_bytes(self.seed, model, prompt, counter))
        reply = _AUTO if responder is None else _pick(responder, rng, counter)
        wrapped = reply.wrap_json > 0 and rng.random() < reply.wrap_json
        latency = reply.latency_ms
        if latency is None:
            latency = section.latency_ms if section and section.latency_ms is not None else self.latency_ms
        factor = section.token_factor if section and section.token_factor is not None else self.token_factor
        return Draw(
            reply=reply,
            wrapped=wrapped,
            where=where,
            latency_ms=latency,
            token_factor=factor,
            echo_model=section.echo_model if section else None,
            fingerprint=section.fingerprint if section else None,
            reasoning=section.reasoning if section else None,
        )


def _seed_bytes(seed: int, model: str, prompt: str, counter: int) -> int:
    digest = hashlib.sha256(f"{seed}\x00{model}\x00{prompt}\x00{counter}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _pick(responder: Responder, rng: random.Random, counter: int) -> ReplySpec:
    alts = responder.alternatives
    if responder.sequence:
        return alts[min(counter, len(alts) - 1)].reply
    if len(alts) == 1:
        rng.random()  # keep the stream aligned whether or not there is a choice to make
        return alts[0].reply
    total = sum(a.weight for a in alts)
    point = rng.random() * total
    for alt in alts:
        point -= alt.weight
        if point < 0:
            return alt.reply
    return alts[-1].reply


def load_script(path: str | os.PathLike[str]) -> Script:
    """Read and validate a YAML (``.yaml``/``.yml``) or JSON script file.

    Raises :class:`ScriptError` for a missing file, bad YAML/JSON, or an invalid key or value.
    """
    source = os.fspath(path)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScriptError(f"{source}: script file not found") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ScriptError(f"{source}: cannot read the script: {exc}") from None
    return parse_script_text(text, source)


def parse_script_text(text: str, source: str = "<text>") -> Script:
    """Validate a script given as YAML or JSON text (JSON is valid YAML, except for odd corners,
    so ``.json`` sources are read with the JSON parser for exact error positions)."""
    data: object
    if source.endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScriptError(
                f"{source}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
            raise ScriptError(f"{source}: invalid YAML{where}: {exc.problem or exc}") from None
        except yaml.YAMLError as exc:
            raise ScriptError(f"{source}: invalid YAML: {exc}") from None
    if data is None:
        data = {}
    return Script.from_dict(data, source)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> ScriptError:
        prefix = f"{self.source}: {where}: " if where else f"{self.source}: "
        return ScriptError(prefix + message)

    def mapping(self, value: object, where: str, allowed: Sequence[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping, got {_kind(value)}")
        for key in value:
            if not isinstance(key, str):
                raise self.fail(where, f"keys must be strings, got {key!r}")
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise self.fail(where, f"unknown key '{key}' ({hint}expected one of {', '.join(allowed)})")
        return value

    def number(self, value: object, where: str, *, low: float, high: float = math.inf) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise self.fail(where, f"expected a number, got {_kind(value)}")
        if not low <= value <= high:
            bound = f"between {low:g} and {high:g}" if high != math.inf else f">= {low:g}"
            raise self.fail(where, f"must be {bound}, got {value!r}")
        return float(value)

    def latency(self, value: object, where: str) -> float:
        """A latency in milliseconds: finite and at most an hour (``.inf`` would stall every request)."""
        number = self.number(value, where, low=0)
        if number > MAX_LATENCY_MS:
            raise self.fail(where, f"must be at most {MAX_LATENCY_MS} ms (an hour), got {value!r}")
        return number

    def integer(self, value: object, where: str, *, low: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"expected an integer, got {_kind(value)}")
        if value < low:
            raise self.fail(where, f"must be >= {low}, got {value}")
        return value

    def string(self, value: object, where: str) -> str:
        if not isinstance(value, str):
            raise self.fail(where, f"expected a string, got {_kind(value)}")
        return value

    def script(self, data: object) -> Script:
        top = self.mapping(data, "", TOP_KEYS)
        if "version" in top and top["version"] != 1:
            raise self.fail(
                "version", f"unsupported version {top['version']!r} (this emulator reads version 1)"
            )
        models_raw = top.get("models", {})
        if models_raw is None:
            models_raw = {}
        if not isinstance(models_raw, dict):
            raise self.fail(
                "models", f"expected a mapping of model name to settings, got {_kind(models_raw)}"
            )
        models: dict[str, ModelScript] = {}
        for name, section in models_raw.items():
            if not isinstance(name, str) or not name:
                raise self.fail("models", f"model names must be non-empty strings, got {name!r}")
            models[name] = self.model(name, section)
        return Script(
            models=models,
            default=self.responder(top["default"], "default") if "default" in top else None,
            seed=self.integer(top.get("seed", 0), "seed"),
            latency_ms=self.latency(top.get("latency_ms", 0), "latency_ms"),
            token_factor=self.number(top.get("token_factor", 1), "token_factor", low=0.01, high=100),
            strict_models=self.boolean(top.get("strict_models", False), "strict_models"),
            source=self.source,
        )

    def boolean(self, value: object, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, f"expected true or false, got {_kind(value)}")
        return value

    def model(self, name: str, data: object) -> ModelScript:
        where = f"models.{name}"
        section = self.mapping({} if data is None else data, where, MODEL_KEYS)
        rules_raw = section.get("rules", [])
        if rules_raw is None:
            rules_raw = []
        if not isinstance(rules_raw, list):
            raise self.fail(f"{where}.rules", f"expected a list of rules, got {_kind(rules_raw)}")
        rules = tuple(self.rule(raw, f"{where}.rules[{i}]") for i, raw in enumerate(rules_raw))
        echo = section.get("echo_model")
        return ModelScript(
            name=name,
            rules=rules,
            default=self.responder(section["default"], f"{where}.default") if "default" in section else None,
            latency_ms=(
                self.latency(section["latency_ms"], f"{where}.latency_ms")
                if "latency_ms" in section
                else None
            ),
            token_factor=(
                self.number(section["token_factor"], f"{where}.token_factor", low=0.01, high=100)
                if "token_factor" in section
                else None
            ),
            echo_model=None if echo is None else self.string(echo, f"{where}.echo_model"),
            fingerprint=(
                self.fingerprint(section["fingerprint"], f"{where}.fingerprint")
                if section.get("fingerprint") is not None
                else None
            ),
            reasoning=(
                self.reasoning(section["reasoning"], f"{where}.reasoning")
                if section.get("reasoning") is not None
                else None
            ),
        )

    def fingerprint(self, value: object, where: str) -> str:
        text = self.string(value, where)
        if not text or any(ch.isspace() or not ch.isprintable() for ch in text):
            raise self.fail(
                where, f"expected a non-empty string without spaces (e.g. fp_abc123), got {text!r}"
            )
        return text

    def reasoning(self, value: object, where: str) -> ReasoningSpec:
        if isinstance(value, bool):  # `reasoning: true` / `reasoning: false`
            return ReasoningSpec(enabled=value)
        if isinstance(value, str):  # shorthand: `reasoning: "the thinking text"`
            return ReasoningSpec(text=value)
        if not isinstance(value, dict):
            raise self.fail(
                where,
                f"expected true, false, the thinking text or a mapping {{text, tokens}}, got {_kind(value)}",
            )
        raw = self.mapping(value, where, REASONING_KEYS)
        text, tokens = raw.get("text"), raw.get("tokens")
        return ReasoningSpec(
            text=None if text is None else self.string(text, f"{where}.text"),
            tokens=None if tokens is None else self.integer(tokens, f"{where}.tokens", low=1),
        )

    def rule(self, data: object, where: str) -> Rule:
        raw = self.mapping(data, where, RULE_KEYS)
        pattern: re.Pattern[str] | None = None
        if "match" in raw:
            text = self.string(raw["match"], f"{where}.match")
            try:
                pattern = re.compile(text)
            except re.error as exc:
                raise self.fail(f"{where}.match", f"invalid regular expression {text!r}: {exc}") from None
        body = {k: v for k, v in raw.items() if k != "match"}
        return Rule(pattern=pattern, responder=self.responder(body, where, allowed=RULE_KEYS), where=where)

    def responder(self, data: object, where: str, allowed: Sequence[str] | None = None) -> Responder:
        if isinstance(data, str):  # shorthand: `default: "some text"`
            return Responder((Alternative(1.0, ReplySpec(text=data)),))
        raw = self.mapping(data, where, allowed or (*RESPONDER_KEYS, *REPLY_KEYS))
        present = [k for k in RESPONDER_KEYS if k in raw]
        if len(present) == 2:
            raise self.fail(where, "use either 'choices' or 'sequence', not both")
        if not present:
            return Responder((Alternative(1.0, self.reply(raw, where)),))
        key = present[0]
        extra = [k for k in raw if k != key]
        if extra:
            raise self.fail(where, f"'{key}' cannot be combined with {', '.join(repr(k) for k in extra)}")
        items = raw[key]
        if not isinstance(items, list) or not items:
            raise self.fail(f"{where}.{key}", f"expected a non-empty list, got {_kind(items)}")
        alts: list[Alternative] = []
        for i, item in enumerate(items):
            item_where = f"{where}.{key}[{i}]"
            if isinstance(item, str):
                alts.append(Alternative(1.0, ReplySpec(text=item)))
                continue
            item_map = self.mapping(
                item, item_where, ALTERNATIVE_KEYS if key == "choices" else tuple(REPLY_KEYS)
            )
            weight = 1.0
            if "weight" in item_map:
                weight = self.number(item_map["weight"], f"{item_where}.weight", low=0)
            reply_raw = {k: v for k, v in item_map.items() if k != "weight"}
            alts.append(Alternative(weight, self.reply(reply_raw, item_where)))
        if key == "choices" and sum(a.weight for a in alts) <= 0:
            raise self.fail(f"{where}.choices", "the weights must not all be zero")
        return Responder(tuple(alts), sequence=key == "sequence")

    def reply(self, raw: dict[str, Any], where: str) -> ReplySpec:
        kinds = [k for k in ("reply", "json", "refuse", "error") if k in raw]
        if "reply" in kinds and "json" in kinds:
            raise self.fail(where, "use either 'reply' or 'json', not both")
        if "refuse" in raw and len(kinds) > 1:
            raise self.fail(where, "'refuse' cannot be combined with 'reply', 'json' or 'error'")
        if "error" in raw and len(kinds) > 1:
            raise self.fail(where, "'error' cannot be combined with 'reply', 'json' or 'refuse'")
        if "tool_call" in raw and "tool_calls" in raw:
            raise self.fail(where, "use either 'tool_call' or 'tool_calls', not both")
        text: str | None = None
        if "reply" in raw:
            text = self.string(raw["reply"], f"{where}.reply")
        elif "json" in raw:
            try:
                text = json.dumps(raw["json"], ensure_ascii=False)
            except (TypeError, ValueError) as exc:
                raise self.fail(f"{where}.json", f"cannot be written as JSON: {exc}") from None
        calls: list[ToolCallSpec] = []
        if "tool_call" in raw:
            calls.append(self.tool_call(raw["tool_call"], f"{where}.tool_call"))
        if "tool_calls" in raw:
            items = raw["tool_calls"]
            if not isinstance(items, list) or not items:
                raise self.fail(f"{where}.tool_calls", f"expected a non-empty list, got {_kind(items)}")
            calls.extend(self.tool_call(item, f"{where}.tool_calls[{i}]") for i, item in enumerate(items))
        confidence = raw.get("confidence")
        latency = raw.get("latency_ms")
        in_tok, out_tok = raw.get("input_tokens"), raw.get("output_tokens")
        return ReplySpec(
            text=text,
            refusal=self.string(raw["refuse"], f"{where}.refuse") if "refuse" in raw else None,
            tool_calls=tuple(calls),
            error=self.error(raw["error"], f"{where}.error") if "error" in raw else None,
            wrap_json=self.number(raw.get("wrap_json", 0), f"{where}.wrap_json", low=0, high=1),
            confidence=(
                None
                if confidence is None
                else self.number(confidence, f"{where}.confidence", low=1e-6, high=1)
            ),
            latency_ms=None if latency is None else self.latency(latency, f"{where}.latency_ms"),
            input_tokens=None if in_tok is None else self.integer(in_tok, f"{where}.input_tokens"),
            output_tokens=None if out_tok is None else self.integer(out_tok, f"{where}.output_tokens"),
        )

    def tool_call(self, data: object, where: str) -> ToolCallSpec:
        raw = self.mapping(data, where, TOOL_CALL_KEYS)
        if "name" not in raw:
            raise self.fail(where, "missing key 'name'")
        args = raw.get("arguments", {})
        if isinstance(args, str):
            arguments = args  # kept verbatim: a script may send malformed arguments on purpose
        elif isinstance(args, dict):
            arguments = json.dumps(args, ensure_ascii=False)
        else:
            raise self.fail(f"{where}.arguments", f"expected a mapping or JSON text, got {_kind(args)}")
        return ToolCallSpec(name=self.string(raw["name"], f"{where}.name"), arguments=arguments)

    def error(self, data: object, where: str) -> ErrorSpec:
        if isinstance(data, int) and not isinstance(data, bool):  # shorthand: `error: 429`
            data = {"status": data}
        raw = self.mapping(data, where, ERROR_KEYS)
        if "status" not in raw:
            raise self.fail(where, "missing key 'status'")
        status = self.integer(raw["status"], f"{where}.status")
        if not 400 <= status <= 599:
            raise self.fail(f"{where}.status", f"must be an HTTP error status (400-599), got {status}")
        message = raw.get("message", f"Emulated error {status}")
        err_type, code, retry_after = raw.get("type"), raw.get("code"), raw.get("retry_after")
        return ErrorSpec(
            status=status,
            message=self.string(message, f"{where}.message"),
            type=None if err_type is None else self.string(err_type, f"{where}.type"),
            code=None if code is None else self.string(code, f"{where}.code"),
            retry_after=(
                None
                if retry_after is None
                else self.number(retry_after, f"{where}.retry_after", low=0, high=86400)
            ),
        )


def _kind(value: object) -> str:
    if value is None:
        return "nothing (null)"
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number"}
    name = names.get(type(value), type(value).__name__)
    return f"{name} {value!r}" if isinstance(value, (str, int, float)) else name
