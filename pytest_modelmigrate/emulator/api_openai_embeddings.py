"""OpenAI embeddings, ``POST /v1/embeddings``: deterministic vectors, float or base64."""

from __future__ import annotations

from typing import Any

from .embeddings import DEFAULT_DIMENSIONS, embed, encode_base64
from .exchange import Reply, Request, RequestError, optional_int, require_model

__all__ = ["parse", "render"]


def inputs(body: dict[str, Any]) -> list[str]:
    raw = body.get("input")
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(x, str) for x in raw):
        return list(raw)
    raise RequestError("'input' must be a string or a non-empty array of strings", param="input")


def parse(body: dict[str, Any]) -> Request:
    model = require_model(body)
    texts = inputs(body)
    optional_int(body, "dimensions")
    fmt = body.get("encoding_format", "float")
    if fmt not in ("float", "base64"):
        raise RequestError(
            f"Invalid 'encoding_format': {fmt!r} (expected 'float' or 'base64')", param="encoding_format"
        )
    joined = "\n".join(texts)
    return Request(
        api="embeddings", model=model, prompt=joined, last_user=joined, input_text=joined, body=body
    )


def render(call: Request, out: Reply) -> dict[str, Any]:
    dimensions = optional_int(call.body, "dimensions") or DEFAULT_DIMENSIONS
    as_base64 = call.body.get("encoding_format") == "base64"
    data: list[dict[str, Any]] = []
    for index, text in enumerate(inputs(call.body)):
        vector = embed(text, dimensions)
        data.append(
            {
                "object": "embedding",
                "index": index,
                "embedding": encode_base64(vector) if as_base64 else vector,
            }
        )
    return {
        "object": "list",
        "data": data,
        "model": out.model,
        "usage": {"prompt_tokens": out.input_tokens, "total_tokens": out.input_tokens},
    }
