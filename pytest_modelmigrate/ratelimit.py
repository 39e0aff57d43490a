"""Requests per minute while recording: spacing the calls a run sends to each provider.

Pure module: no pytest import. ``RateLimiter.wait(key)`` blocks until the next request to
``key`` (a provider, ``openai`` or ``anthropic``, or a host name) may leave, so that at most
``rpm`` requests per minute leave this process; under pytest-xdist each of the ``workers``
processes takes its share (``rpm / workers``). It spaces requests evenly (one every
``60 / rpm`` seconds), the simplest schedule that never bursts past a provider's limit.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = ["RateLimiter", "parse_rpm", "provider_of"]


def provider_of(host: str | None, path: str | None) -> str:
    """``anthropic`` for an Anthropic Messages request (by host, or by path on a local server),
    else ``openai`` (every OpenAI-compatible API)."""
    host = (host or "").lower()
    if host.endswith("anthropic.com"):
        return "anthropic"
    if host.endswith("openai.com") or host.endswith("openai.azure.com"):
        return "openai"
    tail = (path or "").rstrip("/")
    return "anthropic" if tail.endswith("/v1/messages") or tail == "/messages" else "openai"


def parse_rpm(lines: Sequence[str], where: str = "ini modelmigrate_record_rpm") -> dict[str, float]:
    """``openai=500`` / ``anthropic: 50`` / ``api.example.com=60`` lines (or one comma list)."""
    limits: dict[str, float] = {}
    for line in [part for text in lines for part in str(text).split(",")]:
        text = line.strip()
        if not text:
            continue
        name, sep, value = text.replace(":", "=", 1).partition("=")
        try:
            rpm = float(value)
        except ValueError:
            rpm = -1.0
        if not sep or not name.strip() or not rpm > 0 or rpm != rpm or rpm == float("inf"):
            raise ValueError(
                f"{where}: {text!r} is not PROVIDER=REQUESTS_PER_MINUTE with a positive number "
                "(e.g. openai=500, anthropic=50, or a host: api.example.com=60)"
            )
        limits[name.strip().lower()] = rpm
    return limits


@dataclass
class RateLimiter:
    rpm: Mapping[str, float]
    workers: int = 1
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    waited: float = 0.0  # seconds spent waiting, in total
    _next: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def interval(self, key: str) -> float | None:
        rpm = self.rpm.get(key)
        return None if rpm is None else 60.0 * max(self.workers, 1) / rpm

    def wait(self, *keys: str) -> float:
        """Block until a request under the first limited key of ``keys`` may leave; the wait."""
        key = next((k for k in keys if k in self.rpm), None)
        if key is None:
            return 0.0
        gap = self.interval(key)
        assert gap is not None
        with self._lock:
            now = self.clock()
            at = max(self._next.get(key, now), now)
            self._next[key] = at + gap
        delay = at - now
        if delay > 0:
            self.sleep(delay)
            self.waited += delay
        return delay
