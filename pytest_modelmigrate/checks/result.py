"""The outcome of one check, the errors a misconfigured check raises, and input resolution.

Pure module: no pytest import. Every check takes its output as plain text, an SDK response
object, a :class:`~pytest_modelmigrate.providers.base.Call`, an object carrying one (a
``PromptResponse``), a wrapper library's result (LangChain, litellm, pydantic-ai, instructor: see
:mod:`~pytest_modelmigrate.checks.wrappers`), or nothing (the collector then reads the test's last
recorded call).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_modelmigrate.providers.base import Call

__all__ = [
    "CheckInput",
    "CheckResult",
    "CheckUnavailable",
    "ChecksConfigError",
    "ResolvedOutput",
    "json_safe",
    "resolve_output",
    "shorten",
]

from pytest_modelmigrate.errors import ChecksConfigError, CheckUnavailable

# str | Call | an SDK response object | an object with a ``.call`` (PromptResponse) | None.
CheckInput = Any


def shorten(text: str, limit: int = 80) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split()) if "\n" in text else text
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def json_safe(value: Any) -> Any:
    """A JSON-serializable copy of ``value`` (non-finite floats and unknown objects become strings)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value  # pragma: no cover - json-serializable but of an exotic type


@dataclass
class CheckResult:
    """One named check outcome. Truthy when passed, so ``assert bullets(text, 3)`` works.

    ``check`` is the stable kind (``"bullets"``); ``name`` is what reports show: the kind, or the
    user's label when one was given with ``name=``. ``value`` carries a parsed result (the JSON
    value for the JSON checks) and is not part of :meth:`to_dict`.
    """

    check: str
    passed: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    score: float | None = None
    label: str | None = None
    value: Any = None

    @property
    def name(self) -> str:
        return self.label or self.check

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        status = "passed" if self.passed else "FAILED"
        score = f" (score {self.score:.3f})" if self.score is not None else ""
        return f"<CheckResult {self.name} {status}{score}: {self.message}>"

    __str__ = __repr__

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: ``{"name", "passed", "message", "details", "score"}``.

        When a label overrides the name, ``details["check"]`` keeps the stable kind.
        """
        details = json_safe(self.details)
        if self.label and self.label != self.check:
            details = {"check": self.check, **details}
        return {
            "name": self.name,
            "passed": bool(self.passed),
            "message": self.message,
            "details": details,
            "score": None if self.score is None or not math.isfinite(self.score) else float(self.score),
        }


@dataclass(frozen=True)
class ResolvedOutput:
    """The text a check reads, and the recorded call when there is one."""

    text: str
    call: Call | None
    source: str  # "text", "call", "sdk:<type name>", "json" (an already-parsed value)
    parsed: Any = None  # for "json": the dict/list the user passed


def _call_type() -> type[Call]:
    from pytest_modelmigrate.providers.base import Call

    return Call


def _convert_sdk_object(obj: Any, check: str) -> Call:
    from pytest_modelmigrate.providers.parse import call_from_response_object

    try:
        return call_from_response_object(obj)
    except (TypeError, ValueError) as exc:
        raise ChecksConfigError(
            f"{check}: cannot read a {type(obj).__name__} as a model response: {exc}"
        ) from exc


def resolve_output(output: CheckInput, check: str, *, allow_parsed: bool = False) -> ResolvedOutput:
    """Turn any accepted input into text plus the call (``None`` output is the collector's job)."""
    call_cls = _call_type()
    if output is None:
        raise ChecksConfigError(
            f"{check}: no output given; pass text, an SDK response or a Call "
            "(the `checks` fixture reads the test's last recorded call instead)"
        )
    if isinstance(output, str):
        return ResolvedOutput(text=output, call=None, source="text")
    if isinstance(output, bytes):
        return ResolvedOutput(text=output.decode("utf-8", "replace"), call=None, source="text")
    from pytest_modelmigrate.checks.wrappers import answer_text, read_wrapper

    if isinstance(output, call_cls):
        return ResolvedOutput(text=answer_text(output), call=output, source="call")
    inner = getattr(output, "call", None)
    if isinstance(inner, call_cls):
        return ResolvedOutput(text=answer_text(inner), call=inner, source="call")
    if isinstance(output, (dict, list)):
        if allow_parsed:
            return ResolvedOutput(text=json.dumps(output), call=None, source="json", parsed=output)
        raise ChecksConfigError(
            f"{check}: got a {type(output).__name__}; pass the model's text, an SDK response or a Call"
        )
    try:
        read = read_wrapper(output)
    except (TypeError, ValueError) as exc:
        raise ChecksConfigError(
            f"{check}: cannot read a {type(output).__name__} as a model response: {exc}"
        ) from exc
    if read is not None:
        return ResolvedOutput(text=read.text, call=read.call, source=read.source)
    call = _convert_sdk_object(output, check)
    return ResolvedOutput(text=call.text, call=call, source=f"sdk:{type(output).__name__}")
