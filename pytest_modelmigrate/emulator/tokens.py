"""Deterministic stand-ins for a tokenizer: pieces, counts, truncation and log-probabilities.

A piece is a word or one punctuation mark with the whitespace before it (``" refund"``, ``"."``),
so joining the pieces gives the text back. A count is ``ceil(pieces * factor)``.
"""

from __future__ import annotations

import math
import re

__all__ = ["count_tokens", "logprob_entries", "split_pieces", "truncate"]

_PIECE = re.compile(r"\s*(?:\w+|[^\w\s])|\s+")


def split_pieces(text: str) -> list[str]:
    return _PIECE.findall(text)


def count_tokens(text: str, factor: float = 1.0) -> int:
    pieces = len(split_pieces(text))
    return math.ceil(pieces * factor - 1e-9) if pieces else 0


def truncate(text: str, max_tokens: int | None, factor: float = 1.0) -> tuple[str, bool]:
    """The text cut to ``max_tokens`` (reported) tokens, and whether it was cut."""
    if max_tokens is None:
        return text, False
    pieces = split_pieces(text)
    keep = max(0, math.floor(max_tokens / factor + 1e-9))
    if len(pieces) <= keep:
        return text, False
    return "".join(pieces[:keep]), True


def logprob_entries(pieces: list[str], confidence: float, top: int) -> list[dict[str, object]]:
    """OpenAI-shaped ``{token, logprob, bytes, top_logprobs}`` entries: every piece gets
    probability ``confidence``; the alternatives share what is left, each half the previous."""
    chosen = math.log(confidence)
    entries: list[dict[str, object]] = []
    for piece in pieces:
        tops: list[dict[str, object]] = []
        if top > 0:
            tops.append({"token": piece, "logprob": chosen, "bytes": list(piece.encode())})
            rest = max(1.0 - confidence, 1e-9)
            for i in range(1, top):
                alt = f"{piece}{'_' * i}" if piece.strip() else f"{piece}<{i}>"
                share = rest * 0.5**i
                tops.append({"token": alt, "logprob": math.log(share), "bytes": list(alt.encode())})
        entries.append(
            {"token": piece, "logprob": chosen, "bytes": list(piece.encode()), "top_logprobs": tops}
        )
    return entries
