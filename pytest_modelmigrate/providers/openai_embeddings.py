"""OpenAI embeddings (``POST /v1/embeddings``).

Pure module: no pytest import. The openai SDK asks for ``encoding_format="base64"`` unless told
otherwise, so a recorded vector is either a list of floats or base64 of little-endian float32.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import replace
from typing import Any

from pytest_modelmigrate.providers.base import Call, CassetteFormatError
from pytest_modelmigrate.providers.openai_chat import openai_error, usage_from_chat


def decode_vector(value: Any) -> tuple[float, ...]:
    if isinstance(value, list):
        return tuple(float(x) for x in value)
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise CassetteFormatError(f"embedding is neither a list of floats nor base64: {exc}") from exc
        if len(raw) % 4:
            raise CassetteFormatError(f"base64 embedding of {len(raw)} bytes is not a float32 array")
        return struct.unpack(f"<{len(raw) // 4}f", raw)
    raise CassetteFormatError(f"embedding of type {type(value).__name__} is neither a list nor base64")


def read_json(base: Call, data: Any) -> Call:
    body = data if isinstance(data, dict) else {}
    if not isinstance(body.get("data"), list):
        error = openai_error(base.status, data)
        if error is not None:
            return replace(base, error=error, raw=data)
        raise CassetteFormatError("embeddings JSON has no 'data' list")
    items = sorted(
        (item for item in body["data"] if isinstance(item, dict)), key=lambda item: int(item.get("index", 0))
    )
    return replace(
        base,
        model_echoed=body.get("model"),
        usage=usage_from_chat(body.get("usage")),
        embeddings=tuple(decode_vector(item.get("embedding")) for item in items),
        raw=data,
    )
