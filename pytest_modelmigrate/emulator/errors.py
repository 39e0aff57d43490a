"""Error bodies shaped like each provider's: OpenAI ``{"error": {message, type, param, code}}``,
Anthropic ``{"type": "error", "error": {type, message}, "request_id"}``."""

from __future__ import annotations

from typing import Any

__all__ = ["anthropic_error", "openai_error"]

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}
_OPENAI_CODES = {401: "invalid_api_key", 429: "rate_limit_exceeded"}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def openai_error(
    status: int, message: str, type_: str | None = None, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    default_type = _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {
        "error": {
            "message": message,
            "type": type_ or default_type,
            "param": param,
            "code": code if code is not None else _OPENAI_CODES.get(status),
        }
    }


def anthropic_error(
    status: int, message: str, type_: str | None = None, request_id: str = ""
) -> dict[str, Any]:
    default_type = _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {
        "type": "error",
        "error": {"type": type_ or default_type, "message": message},
        "request_id": request_id,
    }
