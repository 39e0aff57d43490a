"""Turn recorded vcrpy interactions (and SDK response objects) into :class:`Call` values.

Pure module: no pytest import. Entry points:

- :func:`parse_interaction`: one (request, response) pair as a cassette stores it;
- :func:`read_cassette` / :func:`load_calls`: a cassette file;
- :func:`call_from_response_object`: an openai / anthropic SDK response object.

Dispatch is on the host and the request path (``POST .../chat/completions``, ``.../responses``,
``.../messages``, ``.../embeddings``), so recordings against a proxy, Azure or a local emulator
read the same as against the real hosts, but a path suffix alone never decides:

- on an OpenAI host (``api.openai.com``, ``*.openai.azure.com``) ``.../messages`` is never the
  Anthropic API, on ``api.anthropic.com`` only ``/v1/messages`` is;
- a path under an OpenAI Assistants resource (``/v1/threads/{id}/messages``,
  ``/v1/threads/{id}/runs``, ``/v1/assistants``, ``/v1/vector_stores``) or under another
  resource's id (``/v1/messages/batches``, ``/v1/responses/{id}/...``) is not a model call.

Anything else is a ``Call(provider="unknown", endpoint="other")`` whose body is never read.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pytest_modelmigrate.providers import anthropic_messages, openai_chat, openai_embeddings, openai_responses
from pytest_modelmigrate.providers.base import Call, CassetteFormatError, ProviderError
from pytest_modelmigrate.providers.sse import looks_like_sse, parse_sse

__all__ = ["call_from_response_object", "classify", "load_calls", "parse_interaction", "read_cassette"]

_Reader = Callable[[Call, Any], Call]
_StreamReader = Callable[[Call, list[Any]], Call]

# path suffix -> (provider, endpoint, JSON reader, stream reader)
_ENDPOINTS: dict[str, tuple[str, str, _Reader, _StreamReader | None]] = {
    "/chat/completions": ("openai", "chat.completions", openai_chat.read_json, openai_chat.read_stream),
    "/responses": ("openai", "responses", openai_responses.read_json, openai_responses.read_stream),
    "/messages": ("anthropic", "messages", anthropic_messages.read_json, anthropic_messages.read_stream),
    "/embeddings": ("openai", "embeddings", openai_embeddings.read_json, None),
}

_MISSING = object()

_OPENAI_HOSTS = ("api.openai.com",)
_OPENAI_HOST_SUFFIXES = (".openai.azure.com", ".openai.com")
_ANTHROPIC_HOSTS = ("api.anthropic.com",)
# Path segments of OpenAI resources whose bodies are not model calls (Assistants API and kin).
_RESOURCE_SEGMENTS = frozenset({"threads", "assistants", "vector_stores", "batches", "files", "runs"})


def _host_provider(host: str) -> str | None:
    host = host.lower()
    if host in _OPENAI_HOSTS or host.endswith(_OPENAI_HOST_SUFFIXES):
        return "openai"
    if host in _ANTHROPIC_HOSTS:
        return "anthropic"
    return None


def classify(method: str, url: str) -> tuple[str, str, _Reader, _StreamReader | None] | None:
    """(provider, endpoint, reader, stream reader) of a request, or None when it is no model call.

    The endpoint is the path's last one or two segments; what comes before them must be an API
    prefix (``/v1``, ``/openai/deployments/NAME``, a proxy's mount point), never a resource
    (``/v1/threads/ID``), and the host, where it is a provider's, must serve that API.
    """
    if method.upper() != "POST":
        return None
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    for suffix, spec in _ENDPOINTS.items():
        if not path.endswith(suffix):
            continue
        prefix = [seg for seg in path[: -len(suffix)].split("/") if seg]
        if _RESOURCE_SEGMENTS.intersection(seg.lower() for seg in prefix):
            return None
        host = _host_provider(parts.hostname or "")
        if host == "anthropic":
            # Anthropic serves its messages API at /v1/messages, and an OpenAI-compatible
            # chat completions endpoint (read as OpenAI chat, which is its shape).
            if spec[1] == "messages" and prefix != ["v1"]:
                return None
            if spec[1] not in ("messages", "chat.completions"):
                return None
        elif host == "openai" and spec[0] != "openai":
            return None
        return spec
    return None


def _headers(message: Mapping[str, Any]) -> dict[str, str]:
    """Lower-cased header names; vcrpy stores each value as a list of strings."""
    raw = message.get("headers")
    headers: dict[str, str] = {}
    if not isinstance(raw, Mapping):
        return headers
    for name, value in raw.items():
        if isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value)
        headers[str(name).lower()] = str(value)
    return headers


def _decompress(data: bytes, encoding_header: str) -> bytes:
    encodings = [e.strip().lower() for e in encoding_header.split(",") if e.strip()]
    for encoding in reversed(encodings):  # applied in order listed, so undone in reverse
        if encoding in ("identity", ""):
            continue
        if encoding in ("gzip", "x-gzip"):
            if not data.startswith(b"\x1f\x8b"):
                continue  # already decoded (e.g. recorded with decode_compressed_response)
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError, zlib.error) as exc:
                raise CassetteFormatError(f"gzip body cannot be decompressed: {exc}") from exc
        elif encoding == "deflate":
            try:
                data = zlib.decompress(data)
            except zlib.error:
                try:
                    data = zlib.decompress(data, -zlib.MAX_WBITS)  # raw deflate, as some servers send
                except zlib.error as exc:
                    raise CassetteFormatError(f"deflate body cannot be decompressed: {exc}") from exc
        else:
            raise CassetteFormatError(f"content-encoding {encoding!r} is not supported")
    return data


def _body(message: Mapping[str, Any], *, is_response: bool) -> tuple[Any, str | None]:
    """(parsed JSON or _MISSING, body text or None) of a request or response dict.

    pydantic-ai's cassettes replace ``body`` with ``parsed_body`` (the JSON already parsed).
    """
    if "parsed_body" in message:
        return message["parsed_body"], None
    body = message.get("body")
    if is_response and isinstance(body, Mapping):
        body = body.get("string")
    if body is None:
        return _MISSING, None
    if isinstance(body, str):
        return _MISSING, body
    if isinstance(body, (bytes, bytearray)):
        data = _decompress(bytes(body), _headers(message).get("content-encoding", ""))
        try:
            return _MISSING, data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CassetteFormatError(f"body is not UTF-8 text: {exc}") from exc
    raise CassetteFormatError(f"body of type {type(body).__name__} is neither text nor bytes")


def _request_json(request: Mapping[str, Any]) -> Any:
    try:
        parsed, text = _body(request, is_response=False)
    except CassetteFormatError:
        return None  # the request body is context only; an unreadable one loses model_requested
    if parsed is not _MISSING:
        return parsed
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _status(response: Mapping[str, Any]) -> int:
    status = response.get("status")
    code = status.get("code") if isinstance(status, Mapping) else status
    if isinstance(code, bool) or not isinstance(code, int):
        raise CassetteFormatError(f"response has no integer status code (got {status!r})")
    return code


def _error_from_body(
    status: int, message: str, parsed: Any, text: str | None, provider: str = "openai"
) -> ProviderError:
    """The error of a 4xx/5xx body, read the way the endpoint's provider writes it."""
    if parsed is _MISSING and text is not None:
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = _MISSING
    if parsed is not _MISSING:
        read = anthropic_messages.anthropic_error if provider == "anthropic" else openai_chat.openai_error
        error = read(status, parsed)
        if error is not None:
            return error
    snippet = (text or (json.dumps(parsed) if parsed is not _MISSING else "")).strip()[:500]
    return ProviderError(status=status, type=None, message=snippet or message)


def _stream_payloads(text: str) -> tuple[list[Any], bool]:
    stream = parse_sse(text)
    if not stream.complete:
        raise CassetteFormatError(
            "event stream truncated mid-event (no blank line after the last event): "
            f"{stream.trailing[-200:]!r}"
        )
    payloads: list[Any] = []
    saw_done = False
    for number, event in enumerate(stream.events):
        if event.data.strip() == "[DONE]":
            saw_done = True
            continue
        try:
            payloads.append(json.loads(event.data))
        except ValueError as exc:
            raise CassetteFormatError(
                f"event {number} ({event.event}) data is not JSON: {exc}: {event.data[:200]!r}"
            ) from exc
    return payloads, saw_done


def _read(
    base: Call, response: Mapping[str, Any], reader: _Reader, stream_reader: _StreamReader | None
) -> Call:
    parsed, text = _body(response, is_response=True)
    if base.status >= 400:
        status_message = response.get("status")
        message = str(status_message.get("message", "")) if isinstance(status_message, Mapping) else ""
        return replace(
            base,
            error=_error_from_body(base.status, message, parsed, text, base.provider),
            raw=parsed_or(parsed),
        )
    if parsed is not _MISSING:
        return reader(base, parsed)
    if text is None:
        raise CassetteFormatError(f"{base.status} response has no body")
    content_type = _headers(response).get("content-type", "").lower()
    if "text/event-stream" in content_type or looks_like_sse(text):
        if stream_reader is None:
            raise CassetteFormatError(f"{base.endpoint} responses are not streamed, got an event stream")
        payloads, saw_done = _stream_payloads(text)
        if base.endpoint == "chat.completions" and not openai_chat.stream_finished(payloads, saw_done):
            raise CassetteFormatError("chat completion stream ended before [DONE] or a finish_reason")
        return stream_reader(replace(base, streaming=True), payloads)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CassetteFormatError(f"{base.status} response body is not JSON ({exc}): {text[:200]!r}") from exc
    return reader(base, data)


def parsed_or(parsed: Any) -> Any:
    return None if parsed is _MISSING else parsed


def parse_interaction(
    request: Mapping[str, Any], response: Mapping[str, Any], *, source: str = "<memory>", index: int = 0
) -> Call:
    """Read one recorded interaction (the dicts of a vcrpy cassette after YAML/JSON load)."""
    method = str(request.get("method") or "").upper()
    url = str(request.get("uri") or request.get("url") or "")
    where = f"{source}: interaction {index} ({method} {url})"
    try:
        status = _status(response)
    except CassetteFormatError as exc:
        raise CassetteFormatError(f"{where}: {exc}") from exc
    latency = response.get("latency_ms")
    latency_ms = (
        float(latency) if isinstance(latency, (int, float)) and not isinstance(latency, bool) else None
    )
    target = classify(method, url)
    if target is None:
        content_type = _headers(response).get("content-type", "").lower()
        return Call(
            provider="unknown",
            endpoint="other",
            method=method,
            url=url,
            status=status,
            streaming="text/event-stream" in content_type,
            latency_ms=latency_ms,
        )
    provider, endpoint, reader, stream_reader = target
    request_json = _request_json(request)
    model = request_json.get("model") if isinstance(request_json, dict) else None
    base = Call(
        provider=provider,
        endpoint=endpoint,
        method=method,
        url=url,
        status=status,
        streaming=False,
        model_requested=model if isinstance(model, str) else None,
        latency_ms=latency_ms,
        request_json=request_json,
    )
    try:
        return _read(base, response, reader, stream_reader)
    except CassetteFormatError as exc:
        raise CassetteFormatError(f"{where}: {exc}") from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # A body of the right kind but an unexpected shape: say where, do not guess.
        raise CassetteFormatError(f"{where}: unexpected {endpoint} response shape: {exc!r}") from exc


def _check_shape(path: Path, data: Any) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    if not isinstance(data, dict) or not isinstance(data.get("interactions"), list):
        got = type(data).__name__ if not isinstance(data, dict) else f"keys {sorted(map(str, data))}"
        raise CassetteFormatError(
            f"{path}: not a vcrpy cassette: expected a mapping with an 'interactions' list, got {got}"
        )
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for index, interaction in enumerate(data["interactions"]):
        request = interaction.get("request") if isinstance(interaction, dict) else None
        response = interaction.get("response") if isinstance(interaction, dict) else None
        if not isinstance(request, dict) or not isinstance(response, dict):
            raise CassetteFormatError(f"{path}: interaction {index} lacks a 'request' or 'response' mapping")
        missing = [key for key in ("method", "uri") if key not in request]
        if "status" not in response:
            missing.append("response status")
        if missing:
            raise CassetteFormatError(f"{path}: interaction {index} lacks {', '.join(missing)} (truncated?)")
        pairs.append((request, response))
    return pairs


def read_cassette(path: str | Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Load a cassette with vcrpy's own deserializer (JSON for ``*.json``, else YAML)."""
    import yaml  # imported here: reading a cassette is not what importing the plugin should cost
    from vcr.serializers import jsonserializer, yamlserializer

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CassetteFormatError(f"{path}: not a text cassette (not UTF-8): {exc}") from exc
    if path.suffix.lower() == ".json":
        try:
            data = jsonserializer.deserialize(text)
        except ValueError as exc:
            raise CassetteFormatError(f"{path}: not a JSON cassette (truncated?): {exc}") from exc
    else:
        try:
            data = yamlserializer.deserialize(text)
        except yaml.YAMLError as exc:
            raise CassetteFormatError(f"{path}: not a YAML cassette (truncated?): {exc}") from exc
    return _check_shape(path, data)


def load_calls(path: str | Path) -> list[Call]:
    """Every interaction of a cassette, read."""
    return [
        parse_interaction(request, response, source=str(path), index=index)
        for index, (request, response) in enumerate(read_cassette(path))
    ]


def _dump(obj: Any) -> dict[str, Any]:
    model_dump = getattr(obj, "model_dump", None)
    if callable(model_dump):
        data = model_dump(mode="json", warnings=False)
    else:
        to_dict = getattr(obj, "to_dict", None)
        if not callable(to_dict):
            raise TypeError(
                f"call_from_response_object expects an openai or anthropic SDK response object "
                f"(with model_dump() or to_dict()), got {type(obj).__name__}"
            )
        data = to_dict()
    if not isinstance(data, dict):
        raise TypeError(f"{type(obj).__name__}.model_dump() did not return a mapping")
    return data


def call_from_response_object(obj: Any, *, streaming: bool = False) -> Call:
    """Read an SDK response object: openai ``ChatCompletion`` / ``ParsedChatCompletion`` (also
    the final completion of a chat stream), openai ``Response`` (Responses API), openai
    ``CreateEmbeddingResponse``, anthropic ``Message`` (also ``get_final_message()``).

    ``streaming`` says whether the object is the accumulated result of a stream (the object
    itself cannot tell). An object the SDK built from a 200 whose body is an error object (every
    field ``None`` but ``error``) reads as a call with that ``error``.
    """
    data = _dump(obj)
    kind = data.get("object")
    reader: _Reader
    if kind == "chat.completion":
        provider, endpoint, reader = "openai", "chat.completions", openai_chat.read_json
    elif kind == "response":
        provider, endpoint, reader = "openai", "responses", openai_responses.read_json
    elif kind == "list" and all(
        isinstance(d, dict) and d.get("object") == "embedding" for d in data.get("data", [])
    ):
        provider, endpoint, reader = "openai", "embeddings", openai_embeddings.read_json
    elif data.get("type") == "message" and data.get("role") == "assistant":
        provider, endpoint, reader = "anthropic", "messages", anthropic_messages.read_json
    elif data.get("error"):
        # A 200 whose body is an error object: the SDK builds its response type without checking.
        return _error_object(obj, data, streaming)
    else:
        raise TypeError(
            f"{type(obj).__name__} is not a chat completion, Responses API response, embeddings "
            f"list or Anthropic message (object={kind!r}, type={data.get('type')!r})"
        )
    base = Call(provider=provider, endpoint=endpoint, method="", url="", status=200, streaming=streaming)
    return reader(base, data)


def _error_object(obj: Any, data: dict[str, Any], streaming: bool) -> Call:
    module = type(obj).__module__
    if module.startswith("anthropic"):
        provider, endpoint = "anthropic", "messages"
    elif ".responses" in module:
        provider, endpoint = "openai", "responses"
    elif "embedding" in module:
        provider, endpoint = "openai", "embeddings"
    else:
        provider, endpoint = "openai", "chat.completions"
    read = anthropic_messages.anthropic_error if provider == "anthropic" else openai_chat.openai_error
    error = read(200, data) or ProviderError(status=200, type=None, message=str(data.get("error")))
    return Call(
        provider=provider,
        endpoint=endpoint,
        method="",
        url="",
        status=200,
        streaming=streaming,
        error=error,
        raw=data,
    )
