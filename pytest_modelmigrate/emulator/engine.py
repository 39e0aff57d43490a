"""Turns a parsed :class:`~.exchange.Request` into an :class:`~.exchange.Reply` using the script, and
keeps the per-(model, prompt) request counters that make stochastic draws reproducible."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter

from . import autoreply
from .exchange import Reply, ReplyToolCall, Request
from .script import ErrorSpec, Script
from .tokens import count_tokens, truncate

__all__ = ["Engine"]

# Tokens the chat format adds around each message and to prime the reply (roughly OpenAI's figures).
_PER_MESSAGE = 3
_PRIMING = 3


class Engine:
    def __init__(self, script: Script) -> None:
        self.script = script
        self._lock = threading.Lock()
        self._counters: Counter[tuple[str, str]] = Counter()

    def reset(self) -> None:
        with self._lock:
            self._counters.clear()

    def _next(self, model: str, prompt: str) -> int:
        with self._lock:
            counter = self._counters[(model, prompt)]
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
        if spec.is_auto:
            forced = autoreply.auto_tool_call(call)
            if forced is not None:
                calls = [forced]
            else:
                text = autoreply.auto_text(call)
        if text is not None and draw.wrapped:
            text = f"Here is the JSON:\n```json\n{text}\n```"

        truncated = False
        if text is not None:
            text, truncated = truncate(text, call.max_tokens, factor)
        elif refusal is not None:
            refusal, truncated = truncate(refusal, call.max_tokens, factor)

        input_tokens = spec.input_tokens
        if input_tokens is None:
            input_tokens = count_tokens(call.input_text, factor)
            if call.api != "embeddings":
                input_tokens += _PER_MESSAGE * call.messages + _PRIMING
        output_tokens = spec.output_tokens
        if output_tokens is None:
            produced = (text or "") + (refusal or "") + "".join(name + args for name, args in calls)
            output_tokens = count_tokens(produced, factor)
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
            where=draw.where,
        )
