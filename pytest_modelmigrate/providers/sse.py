"""Server-sent events, as the OpenAI and Anthropic streaming APIs send them.

Pure module: no pytest import. The framing follows the WHATWG "event stream" rules: lines end in
``\\r\\n``, ``\\n`` or ``\\r``; a blank line dispatches the event; ``data`` lines are joined with
``\\n``; one space after the colon is dropped; lines starting with ``:`` are comments; an event
with no data is not dispatched. Input may arrive in chunks split at any byte (even inside a line
terminator or a multi-byte character): :class:`SSEDecoder` gives the same events either way.

Unlike a browser, which silently drops an event cut short by the end of the stream, this module
reports it (:attr:`SSEDecoder.pending`, :attr:`SSEStream.complete`): in a recorded cassette a
stream that stops mid-event means the recording is truncated.

:func:`data_spans` tells where each event's ``data`` values sit in a decoded body, so that the
scrubber can rewrite the events that carry pieces of a key and leave every other byte alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BOM = b"\xef\xbb\xbf"
# A line ends at \r\n, \n or \r (the SSE spec); \r\n is tried first.
_LINE_END = re.compile(rb"\r\n|\n|\r")
_TEXT_LINE_END = re.compile(r"\r\n|\n|\r")


@dataclass(frozen=True)
class SSEEvent:
    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


@dataclass(frozen=True)
class SSEStream:
    events: tuple[SSEEvent, ...]
    # False when the body ended inside an event (no blank line after its last field).
    complete: bool
    # The undispatched text at the end of the body (for error messages), "" when complete.
    trailing: str = ""


class SSEDecoder:
    """Incremental event-stream decoder: ``feed`` bytes in any chunks, then ``close``."""

    def __init__(self) -> None:
        self._buffer = b""
        self._started = False
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None
        self._fields_seen = False
        self._pending_lines: list[str] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        self._buffer += chunk
        if not self._started:
            if len(self._buffer) < len(_BOM) and _BOM.startswith(self._buffer):
                return []  # could still be a byte-order mark
            if self._buffer.startswith(_BOM):
                self._buffer = self._buffer[len(_BOM) :]
            self._started = True
        return self._drain(final=False)

    def close(self) -> list[SSEEvent]:
        """End of input: process a last line without terminator (an event it opens stays pending)."""
        if not self._started:
            if self._buffer.startswith(_BOM):
                self._buffer = self._buffer[len(_BOM) :]
            self._started = True
        return self._drain(final=True)

    @property
    def pending(self) -> bool:
        """True when fields or a partial line were read that no blank line has dispatched yet."""
        return self._fields_seen or bool(self._buffer)

    @property
    def pending_text(self) -> str:
        lines = [*self._pending_lines]
        if self._buffer:
            lines.append(self._buffer.decode("utf-8", errors="replace"))
        return "\n".join(lines)

    def _drain(self, *, final: bool) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        buf = self._buffer
        start = 0
        n = len(buf)
        for match in _LINE_END.finditer(buf):
            end, nxt = match.start(), match.end()
            if nxt == n and buf[end] == 0x0D and not final:
                break  # a lone \r at the end of a chunk: the next chunk may start with \n
            event = self._line(buf[start:end].decode("utf-8", errors="replace"))
            if event is not None:
                events.append(event)
            start = nxt
        self._buffer = buf[start:]
        if final and self._buffer:
            # A last line with no terminator: its field counts, but the event is not dispatched.
            self._line(self._buffer.decode("utf-8", errors="replace"))
            self._buffer = b""
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if line == "":
            return self._dispatch()
        self._pending_lines.append(line)
        if line.startswith(":"):
            return None  # comment
        self._fields_seen = True
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\x00" not in value:
            self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> SSEEvent | None:
        data, event, retry = self._data, self._event, self._retry
        self._data, self._event, self._retry = [], "", None
        self._fields_seen = False
        self._pending_lines = []
        if not data:
            return None
        return SSEEvent(data="\n".join(data), event=event or "message", id=self._id, retry=retry)


def parse_sse(body: str | bytes) -> SSEStream:
    """Decode a whole recorded event-stream body."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    decoder = SSEDecoder()
    events = decoder.feed(raw)
    events += decoder.close()
    return SSEStream(
        events=tuple(events),
        complete=not decoder.pending,
        trailing=decoder.pending_text if decoder.pending else "",
    )


def looks_like_sse(text: str) -> bool:
    """Body sniffing for a response whose content type was not recorded."""
    for line in text.lstrip("\ufeff").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(":"):
            continue
        return stripped.startswith(("data:", "event:", "id:", "retry:"))
    return False


def data_spans(text: str) -> list[tuple[tuple[int, int], ...]]:
    """For each event :func:`parse_sse` dispatches from ``text``, the ``(start, end)`` offsets of
    its ``data`` values in ``text``, in order: ``"\\n".join(text[a:b] for a, b in spans)`` is the
    event's ``data``. The framing is the decoder's (line ends, comments, the space after the colon).
    """
    start = 1 if text.startswith("\ufeff") else 0
    events: list[tuple[tuple[int, int], ...]] = []
    spans: list[tuple[int, int]] = []
    for match in _TEXT_LINE_END.finditer(text, start):
        line_end = match.start()
        line = text[start:line_end]
        if line == "":
            if spans:
                events.append(tuple(spans))
            spans = []
        elif not line.startswith(":"):
            name, sep, value = line.partition(":")
            if name == "data":
                value_start = start + len(name) + len(sep) + (1 if value.startswith(" ") else 0)
                spans.append((value_start, line_end))
        start = match.end()
    return events  # a last event with no blank line after it is not dispatched, as in parse_sse
