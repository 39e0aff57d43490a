"""Deterministic embedding vectors: a signed hashed bag of words and character trigrams,
L2-normalised, so texts sharing words score a high cosine similarity and unrelated texts about 0."""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct

__all__ = ["DEFAULT_DIMENSIONS", "embed", "encode_base64"]

DEFAULT_DIMENSIONS = 64
_WORD = re.compile(r"\w+")


def _features(text: str) -> list[tuple[str, float]]:
    words = _WORD.findall(text.lower())
    feats: list[tuple[str, float]] = [(f"w:{w}", 1.0) for w in words]
    for w in words:
        padded = f"#{w}#"
        feats.extend((f"t:{padded[i : i + 3]}", 0.35) for i in range(len(padded) - 2))
    return feats


def embed(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    vector = [0.0] * dimensions
    for feature, weight in _features(text):
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "big") % dimensions
        sign = 1.0 if digest[4] & 1 else -1.0
        vector[index] += sign * weight
    norm = math.sqrt(sum(v * v for v in vector))
    if norm == 0:  # empty text: a fixed unit vector rather than zeros (no NaN cosine)
        vector[0] = 1.0
        return vector
    return [v / norm for v in vector]


def encode_base64(vector: list[float]) -> str:
    """The vector as little-endian float32 bytes in base64, as the API sends ``encoding_format=base64``."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
