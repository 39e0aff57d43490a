"""The emulator's HTTP server: a stdlib ``ThreadingHTTPServer`` in a background thread that answers
with the paths and body shapes of the real OpenAI and Anthropic APIs, so the real SDKs reach it
through ``base_url`` alone (and ``openai.AzureOpenAI`` through ``azure_endpoint``: Azure's
``/openai/deployments/{deployment}/...`` paths are served as the OpenAI ones)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from . import api_anthropic_messages, api_openai_chat, api_openai_embeddings, api_openai_responses
from .engine import Engine
from .errors import anthropic_error, openai_error
from .exchange import Event, Reply, Request, RequestError
from .script import Script, load_script
from .tokens import count_tokens

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["Emulator", "ServedRequest"]

ScriptSource = Script | Mapping[str, Any] | str | os.PathLike[str] | None

_Api = tuple[Callable[[dict[str, Any]], Request], Callable[[Request, Reply], dict[str, Any]]]
_POST_ROUTES: dict[str, _Api] = {
    "/v1/chat/completions": (api_openai_chat.parse, api_openai_chat.render),
    "/v1/responses": (api_openai_responses.parse, api_openai_responses.render),
    "/v1/embeddings": (api_openai_embeddings.parse, api_openai_embeddings.render),
    "/v1/messages": (api_anthropic_messages.parse, api_anthropic_messages.render),
}
_STREAMERS: dict[str, Callable[[Request, Reply], list[Event]]] = {
    "chat": api_openai_chat.events,
    "responses": api_openai_responses.events,
    "messages": api_anthropic_messages.events,
}


# Azure OpenAI: /openai/deployments/{deployment}/chat/completions?api-version=...
_AZURE_DEPLOYMENT = re.compile(r"^/openai/deployments/([^/]+)")
_AZURE_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
    "key for an active subscription and use a correct regional API endpoint for your resource."
)

# The largest body the emulator reads (a provider answers 413 above its own limit).
MAX_BODY_BYTES = 32 * 1024 * 1024

# Top-level fields whose JSON type the real APIs check before anything else: (field, type, noun).
_FIELD_TYPES: tuple[tuple[str, type | tuple[type, ...], str], ...] = (
    ("model", str, "a string"),
    ("messages", list, "an array"),
    ("tools", list, "an array"),
    ("stream", bool, "a boolean"),
    ("stream_options", dict, "an object"),
    ("response_format", dict, "an object"),
    ("text", dict, "an object"),
    ("tool_choice", (str, dict), "a string or an object"),
    ("metadata", dict, "an object"),
)
_JSON_NOUNS = {str: "a string", bool: "a boolean", int: "an integer", float: "a number", list: "an array"}


def _json_noun(value: object) -> str:
    if value is None:
        return "null"
    return _JSON_NOUNS.get(type(value), "an object")


def _wrong_type(name: str, noun: str, value: object) -> RequestError:
    got = _json_noun(value)
    return RequestError(f"Invalid type for '{name}': expected {noun}, but got {got} instead.", param=name)


def check_body_shape(body: dict[str, Any]) -> None:
    """Refuse (``RequestError``, a 400) fields of the wrong JSON type before an API module reads
    them, as the real APIs do: ``Invalid type for 'tools': expected an array, but got an integer
    instead.`` Each tool must be an object, and a function's ``parameters`` an object."""
    for name, kind, noun in _FIELD_TYPES:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise RequestError(
                f"Invalid type for '{name}': expected {noun}, but got {_json_noun(value)} instead.",
                param=name,
            )
    for index, tool in enumerate(body.get("tools") or []):
        where = f"tools[{index}]"
        if not isinstance(tool, dict):
            raise RequestError(
                f"Invalid type for '{where}': expected an object, but got {_json_noun(tool)} instead.",
                param=where,
            )
        function = tool.get("function")
        schema = function.get("parameters") if isinstance(function, dict) else tool.get("input_schema")
        field = "function.parameters" if isinstance(function, dict) else "input_schema"
        if schema is not None and not isinstance(schema, dict):
            raise _wrong_type(f"{where}.{field}", "an object", schema)


@dataclass(frozen=True)
class ServedRequest:
    """One request the emulator answered, for tests that count or inspect calls."""

    method: str
    path: str
    model: str | None
    prompt: str
    status: int
    where: str  # the script rule or default that answered ("auto" when the script said nothing)


def coerce_script(script: ScriptSource) -> Script:
    if script is None:
        return Script()
    if isinstance(script, Script):
        return script
    if isinstance(script, Mapping):
        return Script.from_dict(dict(script))
    if isinstance(script, (str, os.PathLike)):
        return load_script(script)
    raise TypeError(f"script must be None, a path, a dict or a Script, not {type(script).__name__}")


class Emulator:
    """A local stand-in for the OpenAI and Anthropic HTTP APIs, driven by a :class:`Script`.

    >>> with Emulator({"models": {"emu-a": {"default": "hello"}}}, time_scale=0) as emu:
    ...     client = openai.OpenAI(base_url=emu.url + "/v1", api_key="x")  # doctest: +SKIP

    ``time_scale`` multiplies every scripted latency (0 disables the sleeps). ``state_file`` keeps
    the per-(model, prompt) request counters in that JSON file, so a later session, or another
    emulator naming the same file, draws new samples instead of repeating the first ones.
    """

    def __init__(
        self,
        script: ScriptSource = None,
        host: str = "127.0.0.1",
        port: int = 0,
        time_scale: float = 1.0,
        *,
        log: TextIO | None = None,
        state_file: Path | str | None = None,
    ) -> None:
        if time_scale < 0:
            raise ValueError(f"time_scale must be >= 0, got {time_scale}")
        self.script = coerce_script(script)
        self.host = host
        self.port = port
        self.time_scale = time_scale
        self.log = log
        self.state_file = None if state_file is None else Path(state_file)
        self._engine = Engine(self.script, self.state_file)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._served: list[ServedRequest] = []
        self._served_lock = threading.Lock()
        self._reported_state_error: str | None = None

    @property
    def url(self) -> str:
        """The base URL, ``http://HOST:PORT`` with no trailing slash (OpenAI clients add ``/v1``)."""
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def requests(self) -> list[ServedRequest]:
        with self._served_lock:
            return list(self._served)

    def start(self) -> Emulator:
        if self._server is not None:
            return self
        server = _Server((self.host, self.port), _Handler)
        server.emulator = self
        self._server = server
        # A short poll interval keeps stop() quick: shutdown() waits for the next poll.
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.02,), name="modelmigrate-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.close_open_connections()
        if thread is not None:
            thread.join(timeout=5)

    def reset(self) -> None:
        """Forget the per-(model, prompt) request counters (and clear the state file, if any), so
        the next run draws the same sequence of stochastic replies again; also clears :attr:`requests`."""
        self._engine.reset()
        with self._served_lock:
            self._served.clear()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _record(self, served: ServedRequest) -> None:
        with self._served_lock:
            self._served.append(served)
            state_error = self._engine.state_error
            report_state = state_error is not None and state_error != self._reported_state_error
            self._reported_state_error = state_error
        if self.log is not None and report_state:
            print(f"emulator state file: {state_error}", file=self.log, flush=True)
        if self.log is not None:
            model = f" model={served.model}" if served.model else ""
            print(
                f"{served.method} {served.path}{model} -> {served.status} ({served.where})",
                file=self.log,
                flush=True,
            )

    def _sleep(self, latency_ms: float) -> None:
        delay = latency_ms * self.time_scale / 1000
        if delay > 0:
            time.sleep(delay)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: Emulator

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that drops a kept-alive connection is normal; anything else is reported."""
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)

    def close_open_connections(self) -> None:
        """End kept-alive client connections, so no handler thread answers after ``stop()``."""
        with self.sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by the client
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms delayed-ACK stall
    server_version = "modelmigrate-emulator"
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.sockets_lock:
            self.server.open_sockets.add(self.connection)

    def finish(self) -> None:
        with self.server.sockets_lock:
            self.server.open_sockets.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the stdlib's per-request stderr lines; ``Emulator(log=...)`` logs instead."""

    @property
    def emulator(self) -> Emulator:
        return self.server.emulator

    @property
    def route(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/") or "/"

    @property
    def azure(self) -> bool:
        """An Azure OpenAI path: ``/openai/deployments/{deployment}/...``, ``/openai/...``."""
        return self.route.startswith("/openai/")

    @property
    def deployment(self) -> str | None:
        """The Azure deployment named in the path, which decides the model as on Azure."""
        match = _AZURE_DEPLOYMENT.match(self.route)
        return urllib.parse.unquote(match.group(1)) if match else None

    @property
    def api_route(self) -> str:
        """The OpenAI path an Azure path stands for (``/openai/deployments/d/embeddings`` ->
        ``/v1/embeddings``, ``/openai/responses`` -> ``/v1/responses``); other paths as they are."""
        route = self.route
        if not self.azure:
            return route
        match = _AZURE_DEPLOYMENT.match(route)
        rest = route[match.end() :] if match else route.removeprefix("/openai")
        return "/v1" + rest.removeprefix("/v1")

    def azure_unauthorised(self) -> bool:
        """Answer 401 as Azure does to a request with neither ``api-key`` nor a bearer token."""
        if not self.azure or self.headers.get("api-key") or self.headers.get("Authorization"):
            return False
        self.served(None, "", 401, "azure auth")
        self.send_json(
            401,
            openai_error(401, _AZURE_DENIED, code="401"),
            {"x-request-id": f"req_{os.urandom(12).hex()}"},
        )
        return True

    def is_anthropic(self) -> bool:
        return "anthropic-version" in self.headers or self.route.startswith("/v1/messages")

    # -- writing ----------------------------------------------------------------------------------

    def send_json(self, status: int, body: object, extra: Mapping[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def send_events(self, events: list[Event], extra: Mapping[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        try:
            for name, data in events:
                text = data if isinstance(data, str) else json.dumps(data)
                frame = (f"event: {name}\n" if name else "") + f"data: {text}\n\n"
                payload = frame.encode()
                self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading
            self.close_connection = True

    def send_error_body(
        self,
        status: int,
        message: str,
        *,
        type_: str | None = None,
        code: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        request_id = f"req_{os.urandom(12).hex()}"
        extra: dict[str, str] = {}
        if retry_after is not None:
            # Whole seconds for the standard header, exact milliseconds for the SDKs, which read it first.
            extra["retry-after"] = str(math.ceil(retry_after))
            extra["retry-after-ms"] = str(round(retry_after * 1000))
        if self.is_anthropic():
            body = anthropic_error(status, message, type_, request_id)
            self.send_json(status, body, {"request-id": request_id, **extra})
        else:
            self.send_json(
                status,
                openai_error(status, message, type_, code, param),
                {"x-request-id": request_id, **extra},
            )

    def served(self, model: str | None, prompt: str, status: int, where: str) -> None:
        """Record the request; called before the answer is written, so a client that has its
        answer always finds the request in ``Emulator.requests``."""
        self.emulator._record(ServedRequest(self.command, self.route, model, prompt, status, where))

    # -- reading ----------------------------------------------------------------------------------

    def read_body(self) -> dict[str, Any]:
        header = (self.headers.get("Content-Length") or "0").strip()
        if not header.isdigit():
            self.close_connection = True  # the body's end is unknown: nothing more can be read
            raise RequestError(f"Invalid Content-Length header {header!r}: expected a number of bytes")
        length = int(header)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            raise RequestError(
                f"Request body of {length} bytes is too large (at most {MAX_BODY_BYTES} bytes)"
            )
        raw = self.rfile.read(length) if length else b""
        media = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if media and media != "application/json" and not media.endswith("+json"):
            raise RequestError(
                f"Unsupported Content-Type {media!r}: the API expects a JSON body sent as application/json"
            )
        try:
            body = json.loads(raw or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RequestError(f"We could not parse the JSON body of your request ({exc})") from None
        if not isinstance(body, dict):
            raise RequestError("The request body must be a JSON object")
        check_body_shape(body)
        return body

    # -- verbs ------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        if self.azure_unauthorised():
            return
        route = self.api_route
        names = [name for name in self.emulator.script.models if not any(ch in name for ch in "*?[")]
        if route == "/v1/models":
            if self.is_anthropic():
                data = [_anthropic_model(n) for n in names]
                body: dict[str, Any] = {
                    "data": data,
                    "has_more": False,
                    "first_id": names[0] if names else None,
                    "last_id": names[-1] if names else None,
                }
            else:
                body = {"object": "list", "data": [_openai_model(n) for n in names]}
            self.served(None, "", 200, "models")
            self.send_json(200, body)
            return
        if route.startswith("/v1/models/"):
            name = route.removeprefix("/v1/models/")
            if self.emulator.script.model(name) is not None or not self.emulator.script.strict_models:
                self.served(name, "", 200, "models")
                self.send_json(200, _anthropic_model(name) if self.is_anthropic() else _openai_model(name))
                return
        self.not_found()

    def do_POST(self) -> None:
        self._headers_sent = False  # one handler serves every request of a kept-alive connection
        route = self.api_route
        try:
            body = self.read_body()
            if self.azure_unauthorised():
                return
            if self.deployment is not None:  # on Azure the deployment, not the body, picks the model
                body["model"] = self.deployment
            if route == "/v1/messages/count_tokens":
                call = api_anthropic_messages.parse(body, count_only=True)
                tokens = count_tokens(call.input_text, self.emulator.script.token_factor)
                self.served(call.model, call.prompt, 200, "count_tokens")
                self.send_json(200, {"input_tokens": tokens})
                return
            api = _POST_ROUTES.get(route)
            if api is None:
                self.not_found()
                return
            parse, render = api
            call = parse(body)
        except RequestError as exc:
            self.served(None, "", 400, "bad request")
            self.send_error_body(400, exc.message, param=exc.param, code=exc.code)
            return
        except Exception as exc:  # noqa: BLE001 - a body the API modules did not foresee: still a 400
            self.served(None, "", 400, "bad request")
            self.send_error_body(400, f"Invalid request body ({type(exc).__name__}: {exc})")
            return
        try:
            self.answer(call, render)
        except (BrokenPipeError, ConnectionResetError):
            raise
        except Exception as exc:  # noqa: BLE001 - never a dropped connection and a thread traceback
            if self.log_failure(exc):
                self.served(call.model, call.prompt, 500, "emulator error")
                self.send_error_body(500, f"The emulator could not answer ({type(exc).__name__}: {exc})")

    def log_failure(self, exc: BaseException) -> bool:
        """Log an emulator bug; True when nothing was sent yet, so an error body can still go out."""
        if self.emulator.log is not None:
            print(f"emulator error: {type(exc).__name__}: {exc}", file=self.emulator.log, flush=True)
        return not getattr(self, "_headers_sent", False)

    def send_response(self, code: int, message: str | None = None) -> None:
        self._headers_sent = True
        super().send_response(code, message)

    def answer(self, call: Request, render: Callable[[Request, Reply], dict[str, Any]]) -> None:
        try:
            outcome = self.emulator._engine.resolve(call)
        except RequestError as exc:  # e.g. a schema the automatic reply cannot satisfy within bounds
            self.served(call.model, call.prompt, 400, "bad request")
            self.send_error_body(400, exc.message, param=exc.param, code=exc.code)
            return
        self.emulator._sleep(outcome.latency_ms)
        if outcome.error is not None:
            err = outcome.error
            self.served(call.model, call.prompt, err.status, outcome.where)
            self.send_error_body(
                err.status, err.message, type_=err.type, code=err.code, retry_after=err.retry_after
            )
            return
        extra = {"x-modelmigrate-rule": outcome.where}
        if self.is_anthropic():
            extra["request-id"] = f"req_{outcome.ident[:24]}"
        else:
            extra["x-request-id"] = f"req_{outcome.ident[:32]}"
            extra["openai-processing-ms"] = str(round(outcome.latency_ms))
        streamer = _STREAMERS.get(call.api)
        self.served(call.model, call.prompt, 200, outcome.where)
        azure_chat = self.azure and call.api == "chat"
        if call.stream and streamer is not None:
            events = streamer(call, outcome)
            if azure_chat:
                events = _azure_stream(events)
            self.send_events(events, extra)
        else:
            body = render(call, outcome)
            if azure_chat:
                _azure_filters(body)
            self.send_json(200, body, extra)

    def not_found(self) -> None:
        self.served(None, "", 404, "unknown path")
        self.send_error_body(
            404,
            f"Unknown request URL: {self.command} {self.route}. Please check the URL and method.",
            code="unknown_url",
        )

    def do_PUT(self) -> None:
        self.not_found()

    def do_DELETE(self) -> None:
        self.not_found()

    def do_PATCH(self) -> None:
        self.not_found()


def _content_filter_results() -> dict[str, Any]:
    safe = {"filtered": False, "severity": "safe"}
    return {"hate": safe, "self_harm": safe, "sexual": safe, "violence": safe}


def _prompt_filter_results() -> list[dict[str, Any]]:
    return [{"prompt_index": 0, "content_filter_results": _content_filter_results()}]


def _azure_filters(body: dict[str, Any]) -> None:
    """Add Azure's content-filter annotations (all ``safe``) to a chat completion."""
    body["prompt_filter_results"] = _prompt_filter_results()
    for choice in body.get("choices", []):
        choice["content_filter_results"] = _content_filter_results()


def _azure_stream(events: list[Event]) -> list[Event]:
    """Azure's chat stream: first a chunk with empty ``choices`` and the prompt filter results."""
    head = {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": _prompt_filter_results(),
    }
    return [(None, head), *events]


def _openai_model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 1767225600, "owned_by": "modelmigrate-emulator"}


def _anthropic_model(name: str) -> dict[str, Any]:
    return {"type": "model", "id": name, "display_name": name, "created_at": "2026-01-01T00:00:00Z"}
