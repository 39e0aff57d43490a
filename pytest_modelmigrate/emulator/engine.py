"""Turns a parsed :class:`~.exchange.Request` into an :class:`~.exchange.Reply` using the script, and
keeps the per-(model, prompt) request counters that make stochastic draws reproducible.

The counters live in memory, or, with ``state_file``, in a small JSON file shared by every emulator
that names it (later sessions, pytest-xdist workers): each draw reads, increments and rewrites its
counter under an exclusive ``flock`` on ``<state_file>.lock``, so no two draws get the same counter.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import autoreply
from .exchange import Reply, ReplyToolCall, Request, RequestError, sign_thinking
from .script import ErrorSpec, ReasoningSpec, Script
from .tokens import count_tokens, truncate

if TYPE_CHECKING:
    from collections.abc import Iterator

if sys.platform != "win32":
    import fcntl

__all__ = ["EFFORT_FACTORS", "STATE_FORMAT", "STATE_VERSION", "Engine", "default_fingerprint", "state_key"]

# How an OpenAI reasoning effort scales a reasoning model's reasoning tokens (medium: as scripted).
EFFORT_FACTORS = {"none": 0.0, "minimal": 0.25, "low": 0.5, "medium": 1.0, "high": 2.0, "xhigh": 4.0}

# Tokens the chat format adds around each message and to prime the reply (roughly OpenAI's figures).
_PER_MESSAGE = 3
_PRIMING = 3

# The state file: {"format": STATE_FORMAT, "version": STATE_VERSION, "counters": {state_key: int}}.
STATE_FORMAT = "modelmigrate-emulator-state"
STATE_VERSION = 1

# One lock per state file for every engine of this process (all there is where flock is missing).
_PATH_LOCKS: dict[str, threading.Lock] = {}
_PATH_LOCKS_GUARD = threading.Lock()


def state_key(model: str, prompt: str) -> str:
    """The key of the (model, prompt) counter in a state file: sha256 hex of ``model\0prompt``."""
    return hashlib.sha256(f"{model}\x00{prompt}".encode()).hexdigest()


def default_fingerprint(model: str) -> str:
    """The ``system_fingerprint`` of a model the script gives none: ``fp_`` and 10 hex digits of
    sha256(model), the same in every run and session."""
    return "fp_" + hashlib.sha256(model.encode()).hexdigest()[:10]


def _signature(ident: str, thinking: str) -> str:
    """A deterministic stand-in for the opaque signature of an Anthropic thinking block."""
    return sign_thinking(ident, thinking)


def _thinking_text(call: Request, spec: ReasoningSpec | None) -> str:
    if spec is not None and spec.text is not None:
        return spec.text
    return autoreply.thinking_sentence(call)


def _reasoning(call: Request, spec: ReasoningSpec | None, factor: float) -> tuple[str | None, int]:
    """(thinking text, reasoning tokens) for ``call`` to a model whose script says ``spec``.

    Anthropic: a thinking block whenever thinking is enabled, at most ``budget_tokens`` long.
    OpenAI: only for a model the script marks ``reasoning``; the tokens scale with the effort.
    A model marked ``reasoning: false`` refuses the reasoning parameters with a 400.
    """
    if spec is not None and not spec.enabled:
        if call.thinking:
            raise RequestError(f"'{call.model}' does not support thinking.", param="thinking")
        if call.reasoning_effort is not None:
            param = "reasoning_effort" if call.api == "chat" else "reasoning.effort"
            raise RequestError(
                f"Unsupported parameter: '{param}' is not supported with this model.",
                param=param,
                code="unsupported_parameter",
            )
        return None, 0
    if spec is not None and call.api == "chat":
        _check_reasoning_chat(call)
    if call.api == "messages":
        if not call.thinking:
            return None, 0
        text = _thinking_text(call, spec)
        tokens = spec.tokens if spec is not None and spec.tokens is not None else count_tokens(text, factor)
        if call.thinking_omitted:  # the thinking is billed but not shown
            text = ""
        limit = call.thinking_budget if call.thinking_budget is not None else (call.max_tokens or 2) - 1
        if tokens > limit:
            text, _ = truncate(text, limit, factor)
            tokens = limit
        return text, max(tokens, 1)
    if spec is None or call.api not in ("chat", "responses"):
        return None, 0
    effort = EFFORT_FACTORS[call.reasoning_effort or "medium"]
    if effort == 0:
        return None, 0
    text = _thinking_text(call, spec)
    base = spec.tokens if spec.tokens is not None else count_tokens(text, factor)
    return text, max(1, math.ceil(base * effort))


def _check_reasoning_chat(call: Request) -> None:
    """A reasoning model's chat completions refuse ``max_tokens`` and a non-default ``temperature``
    (400 ``unsupported_parameter`` / ``unsupported_value``), as OpenAI's reasoning models do."""
    if call.body.get("max_tokens") is not None:
        raise RequestError(
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            param="max_tokens",
            code="unsupported_parameter",
        )
    temperature = call.body.get("temperature")
    if temperature is not None and temperature != 1 and call.reasoning_effort != "none":
        raise RequestError(
            f"Unsupported value: 'temperature' does not support {temperature} with this model. "
            "Only the default (1) value is supported.",
            param="temperature",
            code="unsupported_value",
        )


def _path_lock(path: Path) -> threading.Lock:
    key = os.path.abspath(path)
    with _PATH_LOCKS_GUARD:
        return _PATH_LOCKS.setdefault(key, threading.Lock())


class _StateFile:
    """The counters of one state file; every method raises ``OSError`` when the file cannot be used."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self._process_lock = _path_lock(path)
        self.lock_error: str | None = None  # why the last flock failed (then only threads were held off)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold this file against every thread of this process and, with flock, every other process."""
        with self._process_lock:
            self.lock_error = None
            if sys.platform == "win32":
                yield
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except OSError as exc:  # a file system without flock: go on with the thread lock
                    self.lock_error = (
                        f"cannot lock {self.lock_path}: {exc} (other processes are not kept out)"
                    )
                yield
            finally:
                os.close(fd)  # closing the descriptor releases the flock

    def read(self) -> dict[str, int]:
        """The counters; a missing file, or one that is not a state file, holds none."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            data: Any = json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, absurdly nested
            return {}
        if (
            not isinstance(data, dict)
            or data.get("format") != STATE_FORMAT
            or data.get("version") != STATE_VERSION
            or not isinstance(data.get("counters"), dict)
        ):
            return {}
        return {
            key: value
            for key, value in data["counters"].items()
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0
        }

    def write(self, counters: dict[str, int]) -> None:
        """Replace the file atomically (a temporary file in the same folder, then ``os.replace``)."""
        data = {"format": STATE_FORMAT, "version": STATE_VERSION, "counters": counters}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=1, sort_keys=True)
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def take(self, key: str) -> int:
        """Read, increment and write the counter ``key``; return its value before the increment."""
        with self.locked():
            counters = self.read()
            counter = counters.get(key, 0)
            counters[key] = counter + 1
            self.write(counters)
        return counter

    def clear(self) -> None:
        with self.locked():
            self.write({})


class Engine:
    """Resolves requests against ``script``.

    ``state_file``: keep the request counters in this JSON file instead of in memory, so a later
    session (or another process naming the same file) continues where the earlier ones stopped and
    draws new samples. A missing or corrupt file starts from zero (it is rewritten on the next draw);
    when the file cannot be read or written the engine carries on with its in-memory counters and
    keeps the error in :attr:`state_error`; it never fails a request over the file.
    """

    def __init__(self, script: Script, state_file: Path | None = None) -> None:
        self.script = script
        self.state_file = None if state_file is None else Path(state_file)
        self.state_error: str | None = None  # what went wrong with the state file last time, or None
        self._state = None if self.state_file is None else _StateFile(self.state_file)
        self._lock = threading.Lock()
        self._counters: Counter[tuple[str, str]] = Counter()

    def reset(self) -> None:
        """Start every counter from zero again, the state file's too."""
        with self._lock:
            self._counters.clear()
            if self._state is not None:
                try:
                    self._state.clear()
                except OSError as exc:
                    self.state_error = f"{self._state.path}: {exc} (counting in memory)"
                else:
                    self.state_error = self._state.lock_error

    def _next(self, model: str, prompt: str) -> int:
        with self._lock:
            counter = self._counters[(model, prompt)]
            if self._state is not None:
                try:
                    counter = self._state.take(state_key(model, prompt))
                except OSError as exc:  # carry on in memory, from this engine's last counter
                    self.state_error = f"{self._state.path}: {exc} (counting in memory)"
                else:
                    self.state_error = self._state.lock_error
            self._counters[(model, prompt)] = counter + 1
        return counter

    def resolve(self, call: Request) -> Reply:
        counter = self._next(call.model, call.prompt)
        ident = hashlib.sha256(
            f"{call.api}\x00{call.model}\x00{call.prompt}\x00{counter}".encode()
        ).hexdigest()
        if not self.script.knows(call.model):
            return Reply(
                model=call.model,
                ident=ident,
                error=ErrorSpec(
                    status=404,
                    message=f"The model `{call.model}` does not exist or you do not have access to it.",
                    code="model_not_found",
                ),
                where="strict_models",
            )
        draw = self.script.draw(call.model, call.prompt, counter)
        spec = draw.reply
        echo = draw.echo_model or call.model
        factor = draw.token_factor
        if spec.error is not None:
            return Reply(
                model=echo, ident=ident, error=spec.error, latency_ms=draw.latency_ms, where=draw.where
            )

        text, refusal = spec.text, spec.refusal
        calls: list[tuple[str, str]] = [(c.name, c.arguments) for c in spec.tool_calls]
        where, wrapped = draw.where, draw.wrapped
        # The plugin's LLM judge gets a verdict unless its model's rules or default answer it: the
        # script's top-level default is written for the application's prompts, not for a judge.
        verdict = autoreply.judge_verdict(call) if spec.is_auto or where == "default" else None
        if verdict is not None:
            text, refusal, calls, where, wrapped = verdict, None, [], "judge", False
        elif spec.is_auto:
            forced = autoreply.auto_tool_call(call)
            if forced is not None:
                calls = [forced]
            else:
                text = autoreply.auto_text(call)
        elif refusal is None and not calls:  # a scripted text answer: honour a forced tool, a schema
            forced_call = autoreply.forced_tool_call(call, text)
            if forced_call is not None:
                calls, text = [forced_call], None
            elif text is not None:
                text = autoreply.as_schema_text(call, text)
        if text is not None and wrapped:
            text = f"Here is the JSON:\n```json\n{text}\n```"

        thinking, reasoning_tokens = _reasoning(call, draw.reasoning, factor)
        limit = call.max_tokens
        if limit is not None and reasoning_tokens:  # reasoning spends the same token allowance
            reasoning_tokens = min(reasoning_tokens, limit)
            limit -= reasoning_tokens
        truncated = False
        if text is not None:
            text, truncated = truncate(text, limit, factor)
        elif refusal is not None:
            refusal, truncated = truncate(refusal, limit, factor)

        input_tokens = spec.input_tokens
        if input_tokens is None:
            input_tokens = count_tokens(call.input_text, factor)
            if call.api != "embeddings":
                input_tokens += _PER_MESSAGE * call.messages + _PRIMING
        output_tokens = spec.output_tokens
        if output_tokens is None:
            produced = (text or "") + (refusal or "") + "".join(name + args for name, args in calls)
            output_tokens = count_tokens(produced, factor)
        output_tokens += reasoning_tokens
        tool_calls = tuple(
            ReplyToolCall(
                id=hashlib.sha256(f"{ident}:{i}".encode()).hexdigest()[:24], name=name, arguments=args
            )
            for i, (name, args) in enumerate(calls)
        )
        return Reply(
            model=echo,
            ident=ident,
            text=text,
            refusal=refusal,
            tool_calls=tool_calls,
            truncated=truncated,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            confidence=spec.confidence if spec.confidence is not None else 0.9,
            token_factor=factor,
            latency_ms=draw.latency_ms,
            where=where,
            fingerprint=draw.fingerprint or default_fingerprint(echo),
            thinking=thinking,
            reasoning_tokens=reasoning_tokens,
            signature=_signature(ident, thinking) if thinking is not None else "",
        )
