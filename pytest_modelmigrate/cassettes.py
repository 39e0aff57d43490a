"""Cassette paths and the vcrpy defaults for LLM traffic: matcher, persister, latency, misses.

Pure module: no pytest import. vcrpy is imported lazily (``open_cassette``) so that loading the
plugin in a project that never asks for ``model`` stays cheap.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import functools
import hashlib
import json
import os
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .files import write_atomically
from .gcpause import gc_paused
from .safeyaml import MAX_ALIAS_NODES, MAX_DEPTH, MAX_YAML_CHARS, check_yaml_text
from .scrub import Scrubber, assert_no_live_keys, find_live_keys, refuse_split_keys
from .yamlload import load_plain

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from vcr import VCR

RECORD_MODES = ("none", "once", "new_episodes", "all", "rewrite")
RECORDING_MODES = frozenset({"once", "new_episodes", "all", "rewrite"})
DEFAULT_MATCH_ON = ("method", "scheme", "host", "port", "path", "modelmigrate_query", "modelmigrate_body")
# Query parameters an SDK upgrade adds or drops without changing the answer: anthropic 2.x stopped
# sending ``?beta=true`` on beta messages; Azure's ``api-version`` moves while the body is equal.
VOLATILE_QUERY = frozenset({"beta", "api-version"})
MAX_NAME_LENGTH = 200
_FORBIDDEN = re.compile(r"[<>?%*:|\"'/\\\x00-\x1f]")
# Key under which the recorder keeps the measured latency inside each recorded response.
LATENCY_KEY = "latency_ms"
_CANONICAL_ATTR = "_modelmigrate_canonical_body"
_MATCH_KEY_ATTR = "_modelmigrate_match_key"
# Cassette metadata key: what the plugin keeps beside the interactions (sample outcomes).
METADATA_KEY = "modelmigrate"


class CassetteMiss(BaseException):
    """A request with no recorded response while replaying.

    A ``BaseException`` on purpose: the SDKs retry on ``Exception`` from their transport and then
    raise a bare "Connection error", which would hide the cassette and the way to fix it.
    """


class CassetteReadError(RuntimeError):
    """A cassette file that exists but cannot be read; it is left untouched."""


# -- paths -----------------------------------------------------------------------------------


def cassette_file_name(test_name: str, suffix: str = ".yaml") -> str:
    """A file name for a test (``TestX::test_y[case]`` → ``TestX.test_y[case].yaml``), length-capped."""
    name = _FORBIDDEN.sub("-", test_name.replace("::", "."))
    if len(name) + len(suffix) > MAX_NAME_LENGTH:
        digest = hashlib.sha1(name.encode()).hexdigest()[:12]
        name = f"{name[: MAX_NAME_LENGTH - len(suffix) - len(digest) - 1]}-{digest}"
    return name + suffix


def cassette_path(
    test_file: Path,
    test_name: str,
    model_id: str,
    *,
    folder: str | os.PathLike[str] = "cassettes",
    serializer: str = "yaml",
) -> Path:
    """``<folder>/<module>/<model>/<test>.yaml``; a relative folder sits beside the test module."""
    name = cassette_file_name(test_name, "." + serializer)
    return cassette_folder(test_file, model_id, folder=folder) / name


def cassette_folder(test_file: Path, model_id: str, *, folder: str | os.PathLike[str] = "cassettes") -> Path:
    """``<folder>/<module>/<model>``: where the cassettes of one test module and model live."""
    base = Path(folder)
    if not base.is_absolute():
        base = test_file.parent / base
    return base / test_file.stem / model_id


# -- matching --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MatchIgnore:
    """Request parts left out of matching: query parameter names, and JSON paths in the body
    (``metadata.request_id``; ``*`` stands for any key or list index: ``messages.*.name``)."""

    query: frozenset[str] = VOLATILE_QUERY
    body: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def parse(cls, lines: Sequence[str], where: str = "ini modelmigrate_match_ignore") -> MatchIgnore:
        """``query:NAME`` and ``body:PATH`` lines (added to the volatile defaults)."""
        query, body = set(VOLATILE_QUERY), []
        for line in lines:
            kind, _, value = str(line).strip().partition(":")
            value = value.strip()
            if kind.strip() == "query" and value:
                query.add(value)
            elif kind.strip() == "body" and value and all(value.split(".")):
                body.append(tuple(value.split(".")))
            elif str(line).strip():
                raise ValueError(
                    f"{where}: {str(line).strip()!r} is not 'query:NAME' or 'body:PATH' "
                    "(e.g. query:beta, body:metadata.request_id)"
                )
        return cls(frozenset(query), tuple(body))


_ignored = MatchIgnore()  # this session's, set by open_cassette


def _drop(value: Any, path: tuple[str, ...]) -> None:
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        keys = list(value) if head == "*" else [head] if head in value else []
        for key in keys:
            if rest:
                _drop(value[key], rest)
            else:
                del value[key]
    elif isinstance(value, list) and rest:
        indexes = (
            range(len(value))
            if head == "*"
            else [int(head)]
            if head.isdigit() and int(head) < len(value)
            else []
        )
        for index in indexes:
            _drop(value[index], rest)


def _query(request: Any) -> tuple[tuple[str, str], ...]:
    ignored = _ignored.query
    return tuple((k, v) for k, v in request.query if k not in ignored)


def query_matcher(r1: Any, r2: Any) -> None:
    """vcrpy matcher: the query without the volatile parameters (:data:`VOLATILE_QUERY`)."""
    q1, q2 = _query(r1), _query(r2)
    if q1 != q2:
        raise AssertionError(f"{list(q1)} != {list(q2)}")


def _canonical_body(request: Any) -> bytes:
    cached: bytes | None = getattr(request, _CANONICAL_ATTR, None)
    if cached is not None:
        return cached
    body = request.body
    if body is None:
        canonical = b""
    elif isinstance(body, (dict, list)):  # vcrpy's aiohttp stub keeps a json= argument as it was given
        data = copy.deepcopy(body)
        for path in _ignored.body:
            _drop(data, path)
        try:
            canonical = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        except (TypeError, ValueError):
            canonical = repr(body).encode()
    else:
        raw = body if isinstance(body, bytes) else str(body).encode()
        try:
            data = json.loads(raw)
            for path in _ignored.body:
                _drop(data, path)
            canonical = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        except (ValueError, UnicodeDecodeError):
            canonical = raw
    with contextlib.suppress(AttributeError):  # a request type that refuses attributes: no cache
        setattr(request, _CANONICAL_ATTR, canonical)
    return canonical


def body_matcher(r1: Any, r2: Any) -> None:
    """vcrpy matcher: bodies equal as JSON (key order and spacing ignored), else byte for byte.

    The canonical form is computed once per request object and cached on it; vcrpy's own
    ``body`` matcher re-parses both bodies on every comparison.
    """
    if _canonical_body(r1) != _canonical_body(r2):
        # vcrpy runs every matcher on every recording and drops this text unless nothing matches;
        # the field-by-field explanation is built once, for the closest recording, in a miss.
        raise AssertionError("the request bodies differ")


def _body_difference(b1: bytes, b2: bytes) -> str:
    try:
        j1, j2 = json.loads(b1), json.loads(b2)
    except ValueError:
        return "the request bodies differ"
    if isinstance(j1, dict) and isinstance(j2, dict):
        changed = sorted(k for k in set(j1) | set(j2) if j1.get(k) != j2.get(k))
        return "the JSON request bodies differ in: " + ", ".join(changed)
    return "the JSON request bodies differ"


# -- persistence -----------------------------------------------------------------------------


class AtomicPersister:
    """vcrpy persister: readable errors on load; on save, scrub, scan for keys, temp file + rename."""

    scrubber: Scrubber | None = None  # set per session by the plugin
    parse_cache: Path | None = None  # folder of parsed cassettes (see ParseCache); None: no cache
    # The event streams the last load parsed while checking them, by id() of the response:
    # the cassette that asked for the load takes them (``take_parsed``), so nothing parses twice.
    _parsed: dict[int, tuple[dict[str, Any], Any]] = {}  # noqa: RUF012 - replaced, never mutated

    @classmethod
    def take_parsed(cls) -> dict[int, tuple[dict[str, Any], Any]]:
        parsed, cls._parsed = cls._parsed, {}
        return parsed

    @classmethod
    def load_cassette(cls, cassette_path: str | os.PathLike[str], serializer: Any) -> Any:
        from vcr.persisters.filesystem import CassetteNotFoundError
        from vcr.serialize import deserialize
        from vcr.serializers import yamlserializer

        path = Path(cassette_path)
        if not path.is_file():
            raise CassetteNotFoundError()
        try:
            data = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise CassetteReadError(f"{path}: not UTF-8 text ({exc}); {_FIX}") from None
        if not data.strip():
            raise CassetteNotFoundError()
        if serializer is yamlserializer:
            serializer = _PLAIN_YAML
        if (
            cls.parse_cache is not None
            and len(data) >= ParseCache.MIN_CHARS
            and not getattr(serializer, "__name__", "").endswith("jsonserializer")
        ):
            serializer = ParseCache(cls.parse_cache, path, serializer, cls.scrubber or Scrubber())
        if not (isinstance(serializer, ParseCache) and serializer.holds(data)):
            # alias bombs, deep nesting; a text the cache holds passed this when it was stored
            check_yaml_text(data, path, error=CassetteReadError, fix=_FIX)
        with gc_paused():  # a cassette is thousands of objects that all stay alive
            try:
                requests, responses, *metadata = deserialize(data, serializer)
            except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
                raise CassetteReadError(f"{path}: not a vcrpy cassette ({_describe(exc)}); {_FIX}") from None
            except Exception as exc:  # noqa: BLE001 - yaml's errors have no common public base we can import cheaply
                raise CassetteReadError(f"{path}: cannot be parsed ({_describe(exc)}); {_FIX}") from None
            AtomicPersister._parsed = _check_interactions(path, requests, responses)
        return (requests, responses, *metadata)  # metadata: what this plugin keeps beside them

    @classmethod
    def save_cassette(
        cls, cassette_path: str | os.PathLike[str], cassette_dict: Any, serializer: Any
    ) -> None:
        from vcr.serialize import serialize

        path = Path(cassette_path)
        scrubber = cls.scrubber or Scrubber()
        cassette_dict = _redact_streams(cassette_dict, scrubber, path)
        # known values only: a string that merely looks like a key makes the scan refuse
        data = scrubber.redact_known(serialize(cassette_dict, serializer))
        assert_no_live_keys(data, path=str(path))
        write_atomically(path, data)


# Downloads that libraries make at run time, inside a test: what they are and how to keep them offline.
_KNOWN_DOWNLOADS = (
    (
        "raw.githubusercontent.com",
        "model_prices_and_context_window",
        "litellm downloads its cost map when it is imported; set LITELLM_LOCAL_MODEL_COST_MAP=True "
        "before litellm is imported (in conftest.py, or the CI job's environment) so it reads the "
        "copy it ships",
    ),
    (
        "openaipublic.blob.core.windows.net",
        "",
        "tiktoken downloads its encoding files on first use; set TIKTOKEN_CACHE_DIR to a folder kept "
        "in the repository (filled once with the network) so it reads them from there",
    ),
    (
        "huggingface.co",
        "",
        "huggingface_hub downloads a model or tokenizer; set HF_HUB_OFFLINE=1 with the files in its "
        "cache (or a folder kept in the repository)",
    ),
)


def _not_a_model_call(method: str, uri: str) -> str:
    """What a request that no model API serves is (empty for a model call): a replay miss on it
    is a library's download, a health check or a listing, not a prompt that changed."""
    from urllib.parse import urlsplit

    from .providers.parse import classify

    if classify(method, uri) is not None:
        return ""
    parts = urlsplit(uri)
    host = (parts.hostname or "").lower()
    for known_host, path_part, what in _KNOWN_DOWNLOADS:
        if host == known_host and path_part in parts.path:
            return what
    return (
        f"no model API serves {method.upper()} {parts.path or '/'}. Something in the test (a library, "
        "a health check, a listing) made a request of its own while the cassette was recorded, or "
        "makes one now that it did not make then. Keep it out of the test, or record it with the test "
        "(it replays like a model call)"
    )


def _stream_text(response: Any) -> str | None:
    """The body of a recorded event-stream response, as text (None for anything else)."""
    if not isinstance(response, dict) or not isinstance(response.get("headers"), dict):
        return None
    body = response.get("body")
    string = body.get("string") if isinstance(body, dict) else None
    if not isinstance(string, (str, bytes)) or not _is_event_stream(response):
        return None
    try:
        return string.decode("utf-8") if isinstance(string, bytes) else string
    except UnicodeDecodeError:
        return None


def _redact_streams(cassette_dict: Any, scrubber: Scrubber, path: Path) -> Any:
    """The cassette with known secrets removed from what its event streams spell out across
    chunks; refuses (``SecretInCassetteError``) a stream whose chunks spell a key-like string."""
    responses = list(cassette_dict["responses"])
    changed = False
    for index, response in enumerate(responses):
        text = _stream_text(response)
        if text is None:
            continue
        redacted, found = scrubber.redact_stream(text)
        refuse_split_keys(found, path=str(path), interaction=index)
        if redacted is not text:
            body = response["body"]
            string = redacted.encode() if isinstance(body["string"], bytes) else redacted
            responses[index] = {**response, "body": {**body, "string": string}}
            changed = True
    return {**cassette_dict, "responses": responses} if changed else cassette_dict


class _PlainYaml:
    """vcrpy's YAML serializer, loading through :func:`yamlload.load_plain` (the same result);
    put in its place by ``AtomicPersister.load_cassette`` only."""

    __name__ = "vcr.serializers.yamlserializer"  # the instance passes for it (ParseCache's kind)

    @staticmethod
    def deserialize(text: str) -> Any:
        from vcr.serializers import yamlserializer

        return load_plain(text, yamlserializer._CassetteLoader)

    @staticmethod
    def serialize(cassette_dict: Any) -> str:
        from vcr.serializers import yamlserializer

        return str(yamlserializer.serialize(cassette_dict))


_PLAIN_YAML = _PlainYaml()


class ParseCache:
    """A vcrpy serializer that keeps what it parsed of a cassette, as JSON, for the next run.

    Parsing YAML is most of what replaying a long cassette costs (a 60-interaction cassette of
    400 KB takes 70-150 ms to parse, its JSON 4 ms). Like pytest's byte-code cache, the parsed
    form is kept under the cache dir (``.pytest_cache/d/modelmigrate-cassettes/``), one file per
    cassette path, and used only while the cassette's text is byte for byte what was parsed
    (its SHA-256 is in the entry). Anything it cannot hold as JSON is simply not cached.

    Nor is a cassette that would fail the scan before a write (a string shaped like a live key,
    a known secret, a key spelled out across the chunks of a stream: a file edited by hand or
    written by an older version): the cache never holds what a cassette could not.

    Only cassettes of ``MIN_CHARS`` or more are cached (``AtomicPersister.load_cassette``).
    Measured on the replay benchmark's cassettes (docs/benchmarks.md), every cost grows with
    the size alike: writing an entry (encode, scan, write) costs about twice what one warm run
    saves (1.6-4.2 times, with no trend from 4 KB to 400 KB). Below 32 KB (one to four calls) a
    warm hit saves under 3 ms per cassette while a CI run that keeps no cache pays up to 6 ms
    more for nothing; one-call cassettes are parsed from YAML every time, long sampled ones kept.
    """

    MIN_CHARS = 32 * 1024
    FORMAT = 1
    _BYTES = "\x00bytes"
    _TUPLE = "\x00tuple"

    def __init__(self, folder: Path, cassette: Path, inner: Any, scrubber: Scrubber | None = None) -> None:
        self.inner = inner
        self.scrubber = scrubber or Scrubber()
        name = hashlib.sha256(os.fsencode(os.path.abspath(cassette))).hexdigest()[:32]
        self.entry = folder / f"{name}.json"
        self.kind = getattr(inner, "__name__", type(inner).__qualname__)
        # the last text looked up: (text, its digest, the entry's data or _NO_ENTRY)
        self._looked_up: tuple[str, str, Any] | None = None

    def _digest(self, text: str) -> str:
        from vcr import __version__ as vcr_version

        # the safety limits too: an entry skips the check its text passed (check_yaml_text)
        limits = f"{MAX_YAML_CHARS},{MAX_DEPTH},{MAX_ALIAS_NODES}"
        head = f"{self.FORMAT}\0{vcr_version}\0{self.kind}\0{limits}\0".encode()
        return hashlib.sha256(head + text.encode("utf-8", "surrogatepass")).hexdigest()

    def _look_up(self, text: str) -> tuple[str, str, Any]:
        looked_up = self._looked_up
        if looked_up is not None and looked_up[0] is text:
            return looked_up
        digest, data = self._digest(text), _NO_ENTRY
        try:
            with open(self.entry, encoding="utf-8") as handle:
                if os.fstat(handle.fileno()).st_size <= 16 * len(text) + 65536:
                    stored = json.load(handle, object_hook=self._decode)
                    if isinstance(stored, dict) and stored.get("digest") == digest and "data" in stored:
                        data = stored["data"]
                # else: larger than any JSON of the text (\uXXXX escapes) could be: not from it
        except (OSError, ValueError, TypeError, KeyError, RecursionError):
            pass  # no entry, or a broken (or hostile) write
        self._looked_up = (text, digest, data)
        return self._looked_up

    def holds(self, text: str) -> bool:
        """Whether the cache has the parsed form of exactly ``text`` (read now, kept for
        :meth:`deserialize`). Only a text that passed ``check_yaml_text`` is ever stored."""
        return self._look_up(text)[2] is not _NO_ENTRY

    def deserialize(self, text: str) -> Any:
        _, digest, data = self._look_up(text)
        self._looked_up = None
        if data is _NO_ENTRY:  # no entry, or one from another text, version or limits
            data = self.inner.deserialize(text)
            self._store(digest, data)
        return data

    def serialize(self, cassette_dict: Any) -> str:
        return str(self.inner.serialize(cassette_dict))

    def _store(self, digest: str, data: Any) -> None:
        try:
            text = json.dumps({"digest": digest, "data": self._encode(data)}, separators=(",", ":"))
        except (TypeError, ValueError, RecursionError):
            return  # custom objects (a serializer with custom tags): parse every time
        if not self._passes_scan(text, data):
            with contextlib.suppress(OSError):
                self.entry.unlink(missing_ok=True)  # nor keep what an earlier text of it held
            return
        tmp = self.entry.with_name(f".{self.entry.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, self.entry)
        except OSError:  # a read-only, full or missing cache only costs speed
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)

    def _passes_scan(self, text: str, data: Any) -> bool:
        """Whether the cache entry ``text`` passes the scan a cassette passes before it is written."""
        if find_live_keys(text) or self.scrubber.redact_known(text) is not text:
            return False
        interactions = data.get("interactions") if isinstance(data, dict) else None
        for interaction in interactions if isinstance(interactions, list) else ():
            response = interaction.get("response") if isinstance(interaction, dict) else None
            stream = _stream_text(response)
            if stream is not None:
                redacted, found = self.scrubber.redact_stream(stream)
                if found or redacted is not stream:
                    return False
        return True

    @classmethod
    def _encode(cls, value: Any) -> Any:
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise TypeError("non-string key")
            return {k: cls._encode(v) for k, v in value.items()}
        if isinstance(value, list):
            return [cls._encode(v) for v in value]
        if isinstance(value, tuple):
            return {cls._TUPLE: [cls._encode(v) for v in value]}
        if isinstance(value, bytes):
            return {cls._BYTES: base64.b64encode(value).decode("ascii")}
        if value is None or isinstance(value, (str, bool, int, float)):
            return value
        raise TypeError(f"cannot cache {type(value).__name__}")

    @classmethod
    def _decode(cls, obj: dict[str, Any]) -> Any:
        if len(obj) == 1:
            if cls._BYTES in obj:
                return base64.b64decode(obj[cls._BYTES])
            if cls._TUPLE in obj:
                return tuple(obj[cls._TUPLE])
        return obj


_NO_ENTRY = object()  # ParseCache: the cache has nothing for a text

_FIX = (
    "it was left as it is. Fix the file (git checkout it), or delete it and record again "
    "with --record-mode=once"
)


def _check_interactions(
    path: Path, requests: list[Any], responses: list[Any]
) -> dict[int, tuple[dict[str, Any], Any]]:
    """Refuse, naming the interaction, what vcrpy would only trip over while replaying.

    A response without ``status``/``headers``/``body`` makes vcrpy raise a bare ``KeyError``
    inside the SDK's transport; an event stream cut short (a truncated or hand-edited file)
    would replay as a shorter answer and let the test pass on half a reply. Returns the
    streams it parsed to tell (as ``Call`` objects, by ``id`` of the response), for reuse.
    """
    parsed: dict[int, tuple[dict[str, Any], Any]] = {}
    for index, (request, response) in enumerate(zip(requests, responses, strict=True)):
        where = f"{path}: interaction {index}"
        if not isinstance(response, dict):
            raise CassetteReadError(f"{where}: the response is not a mapping; {_FIX}")
        status = response.get("status")
        code = status.get("code") if isinstance(status, dict) else None
        problems = []
        if isinstance(code, bool) or not isinstance(code, int):
            problems.append("status.code (an integer)")
        if not isinstance(response.get("headers"), dict):
            problems.append("headers (a mapping)")
        body = response.get("body")
        if not isinstance(body, dict) or "string" not in body:
            problems.append("body.string")
        if problems:
            raise CassetteReadError(
                f"{where}: the response lacks {', '.join(problems)} (truncated or edited by hand?); {_FIX}"
            )
        if _is_event_stream(response):
            parsed[id(response)] = (response, _check_stream(where, request, response))
    return parsed


def _is_event_stream(response: dict[str, Any]) -> bool:
    for name, value in response["headers"].items():
        if str(name).lower() == "content-type":
            values = value if isinstance(value, list) else [value]
            return any("text/event-stream" in str(v).lower() for v in values)
    return False


def _check_stream(where: str, request: Any, response: dict[str, Any]) -> Any:
    from .providers.base import CassetteFormatError
    from .providers.parse import parse_interaction

    try:
        return parse_interaction(request._to_dict(), response)
    except CassetteFormatError as exc:
        reason = str(exc).split("): ", 1)[-1]
        raise CassetteReadError(f"{where}: {reason}; {_FIX}") from None


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def read_sample_outcomes(path: Path) -> list[str]:
    """The sample outcomes a run recorded in a cassette's metadata ([] when none or no file)."""
    if not path.is_file():
        return []
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        text = path.read_text(encoding="utf-8")
        check_yaml_text(text, path, error=CassetteReadError, fix=_FIX)
        data = yaml.load(text, Loader=loader)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CassetteReadError(f"{path}: cannot be parsed ({_describe(exc)}); {_FIX}") from None
    meta = data.get("metadata") if isinstance(data, dict) else None
    samples = (meta or {}).get(METADATA_KEY, {}).get("samples") if isinstance(meta, dict) else None
    return [str(s) for s in samples] if isinstance(samples, list) else []


# -- the cassette ----------------------------------------------------------------------------


# Statuses a provider answers when it cannot serve the request now (rate limit, overload,
# timeout, conflict): retried by the SDKs, and never kept in a cassette unless asked for.
TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})
_STATUS_NAMES = {408: "timeout", 409: "conflict", 425: "too early", 429: "rate limit", 529: "overloaded"}


def is_transient_status(code: int) -> bool:
    return code in TRANSIENT_STATUSES or code >= 500


def describe_status(code: int) -> str:
    name = _STATUS_NAMES.get(code) or ("server error" if code >= 500 else "error")
    return f"{code} ({name})"


class EpisodeMismatch(CassetteReadError):
    """A cassette whose sample metadata and interactions disagree (recorded samples were copies)."""


@dataclass
class CassetteSession:
    """What one (test, model) did with its cassette: the interactions it used, in order.

    The cassette is a list of *episodes*, one per sample: sample ``k`` replays from episode
    ``k`` only, and the interactions a sample records form its own episode, so a cassette's
    episode count and its sample outcomes always agree (``metadata["episodes"]``).
    """

    path: Path
    record_mode: str
    used: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)
    recorded: int = 0
    played: int = 0
    misses: list[str] = field(default_factory=list)
    # streams parsed while the file was checked on load, by id() of the response (the metrics reuse them)
    preparsed: dict[int, tuple[dict[str, Any], Any]] = field(default_factory=dict, repr=False)
    metadata: dict[str, Any] = field(default_factory=dict)  # this run's sample outcomes ("samples")
    discard: bool = False  # set when a recording must not be written (interrupted, errored)
    sample: int = 0  # the sample running now: it replays from, and records into, episode ``sample``
    samples_wanted: int = 1  # how many samples this run takes (for the "has 1 of 3 samples" miss)
    episodes: list[int] = field(default_factory=list)  # interactions per episode, as loaded
    stored_samples: list[str] = field(default_factory=list)  # the sample outcomes the file lists
    record_errors: bool = False  # keep transient provider errors (429, 5xx) in the cassette
    topup_hint: str = ""  # the command that records only the missing samples
    # transient provider errors dropped while recording: (match key, description); a later
    # success for the same request (the SDK's retry) takes its entry out
    provider_errors: list[tuple[Any, str]] = field(default_factory=list)
    retried: int = 0  # transient errors the SDK retried past (rate-limit waits)
    # when each request sent to the network while recording left, by ``id`` of the request; one
    # still here when the test is over got no response (a timeout or a connection error)
    in_flight: dict[int, tuple[float, int]] = field(default_factory=dict, repr=False)  # (sent, sample)
    before_send: Callable[[Any], None] | None = field(default=None, repr=False)  # before a real request
    # --record-concurrency: samples drawn at once, each in its own thread, before the test's
    # samples run in order. A draw is recorded into its sample's episode but not used: the
    # sample that runs later plays it (``drawn``: positions in the cassette not played yet).
    drawing: bool = False
    drawn: set[int] = field(default_factory=set, repr=False)
    _local: threading.local = field(default_factory=threading.local, repr=False)

    def current_sample(self) -> int:
        """The sample this thread draws (``--record-concurrency``), else :attr:`sample`."""
        drawn: int | None = getattr(self._local, "sample", None)
        return self.sample if drawn is None else drawn

    @contextmanager
    def draw(self, sample: int) -> Iterator[None]:
        """In this thread, record into the episode of ``sample``; what the thread's calls
        returned is in :meth:`view` (the test's checks read it)."""
        self._local.sample = sample
        self._local.used = []
        try:
            yield
        finally:
            self._local.sample = None
            self._local.used = None

    def view(self) -> list[tuple[Any, dict[str, Any]]] | None:
        """The interactions of the draw running in this thread (None outside a draw)."""
        used: list[tuple[Any, dict[str, Any]]] | None = getattr(self._local, "used", None)
        return used

    def end_draws(self) -> None:
        """After the concurrent draws: what went wrong in one is met again (and recorded anew,
        or reported) when its sample runs, so neither errors nor lost requests are kept."""
        self.drawing = False
        self.provider_errors.clear()
        self.in_flight.clear()

    def episode_miss(self) -> bool:
        """Whether the request missed because this sample has no episode in the file yet."""
        return bool(self.episodes) and self.current_sample() >= len(self.episodes)

    def not_recorded(self) -> str | None:
        """Why this recording must not be written (a provider error the test did not get past)."""
        if self.provider_errors:
            return f"not recorded: the provider answered {self.provider_errors[-1][1]}"
        if self.in_flight:
            return "not recorded: the provider did not answer (timeout or connection error)"
        return None


@functools.cache
def _cassette_class() -> type:
    """The vcrpy Cassette subclass every (test, model) uses (built once per process); the
    session it reports to, its miss hint and scrubber are given to each instance."""
    from vcr.cassette import Cassette
    from vcr.request import Request

    # vcrpy deep-copies each request before filtering it (see _fast_request_copy)
    if "__deepcopy__" not in Request.__dict__:
        Request.__deepcopy__ = _fast_request_copy

    class RecordingCassette(Cassette):  # type: ignore[misc]
        """Adds the latency of each new recording, tracks what the test used, explains misses."""

        _tags: list[int]  # the episode (sample) of each interaction in ``data``
        # the write order of each interaction in ``data``: calls in flight together share a
        # block (sorted by request within it, so concurrent calls do not churn the file); a
        # call made alone has a block of its own, in the order it was made
        _blocks: list[int]
        _block: int = 0
        _request_blocks: dict[int, int]
        _metadata: dict[str, Any]
        _before_record_request: Callable[[Any], Any]
        _session: CassetteSession
        _miss_hint: str
        _scrubber: Scrubber
        _loading = False
        _index: dict[tuple[Any, ...], list[int]] | None = None
        _indexed = 0

        def __init__(
            self, *args: Any, session: CassetteSession, miss_hint: str, scrubber: Scrubber, **kwargs: Any
        ) -> None:
            super().__init__(*args, **kwargs)
            self._session, self._miss_hint, self._scrubber = session, miss_hint, scrubber
            self._tags = []
            self._blocks = []
            self._request_blocks = {}
            # vcrpy filters (deep-copies, then scrubs) each request three times per call, once
            # more what it filtered already (can_play_response_for passes its filtered copy to
            # __contains__); filtering is idempotent, so do it once per request.
            # The last request and its filtered copy are one tuple, swapped whole: samples drawn
            # in threads (--record-concurrency) never see another thread's half.
            filter_request = self._before_record_request
            last: list[tuple[Any, Any]] = [(None, None)]

            def filtered_once(request: Any) -> Any:
                seen, filtered = last[0]
                if request is None or (request is not seen and request is not filtered):
                    filtered = filter_request(request)
                    last[0] = (request, filtered)
                return filtered

            self._before_record_request = filtered_once
            self._lock = threading.RLock()  # samples drawn at once share the cassette

        def _load(self) -> None:
            # Interactions read from the file were scrubbed and filtered when they were recorded:
            # don't deep-copy and scrub each of them again (vcrpy loads through append()).
            if self._persister is AtomicPersister and not os.path.isfile(self._path):
                return  # nothing recorded yet (vcrpy would find that out through two exceptions)
            self._loading = True
            AtomicPersister.take_parsed()
            try:
                super()._load()
            finally:
                self._loading = False
                self._session.preparsed = AtomicPersister.take_parsed()
            meta = self._metadata.get(METADATA_KEY)
            try:
                episodes, samples = _episodes(
                    self._session.path, len(self.data), meta, self._miss_hint, self._session.samples_wanted
                )
            except EpisodeMismatch:
                if self.record_mode != "all":
                    raise
                # rewrite/all replace the file and never replay from it: its bad metadata goes too
                episodes, samples = [len(self.data)] if self.data else [], []
            self._session.episodes, self._session.stored_samples = episodes, samples
            self._tags = [index for index, size in enumerate(episodes) for _ in range(size)]
            self._blocks = list(range(len(self.data)))
            self._block = len(self.data)

        def _responses(self, request: Any) -> Any:
            """Matching recordings in order; with our default matchers, a dict look-up.

            vcrpy runs every matcher against every recording, several times per request; the
            default matchers are all equalities, so one key per request finds the same ones.
            """
            tags, sample = self._tags, self._session.current_sample()
            if tuple(self._match_on) != _default_matchers():
                for position, response in super()._responses(request):
                    if (tags[position] if position < len(tags) else 0) == sample:
                        yield position, response
                return
            if self._index is None or self._indexed != len(self.data):
                index: dict[tuple[Any, ...], list[int]] = {}
                for position, (stored, _) in enumerate(self.data):
                    index.setdefault(_match_key(stored), []).append(position)
                self._index, self._indexed = index, len(self.data)
            filtered = self._before_record_request(request)
            if not filtered:
                return
            for position in self._index.get(_match_key(filtered), ()):
                if (tags[position] if position < len(tags) else 0) == sample:  # this sample's episode
                    yield position, self.data[position][1]

        def _drawn_position(self, request: Any) -> int | None:
            """The first draw of this sample for ``request`` not played yet (see ``drawn``)."""
            drawn = self._session.drawn
            for position, _ in self._responses(request):
                if position in drawn and self.play_counts[position] == 0:
                    return int(position)
            return None

        def can_play_response_for(self, request: Any) -> bool:
            session = self._session
            with self._lock:
                if session.drawing:
                    playable = False  # a draw is a new sample: it never replays, not even itself
                elif session.drawn and self._drawn_position(request) is not None:
                    return True  # the sample plays what was drawn for it
                else:
                    playable = bool(super().can_play_response_for(request))
                if playable:
                    return True
                filtered = self.filter_request(request)
                if self.write_protected and filtered:
                    message = self._miss_message(request)
                    session.misses.append(message)
                    raise CassetteMiss(message)
                sample = session.current_sample()
            if session.before_send is not None and filtered:
                session.before_send(request)  # the requests-per-minute limit, while recording
            with self._lock:
                if not any(s == sample for _, s in session.in_flight.values()):
                    self._block += 1  # nothing else of this sample in flight: a new block
                self._request_blocks[id(request)] = self._block
                session.in_flight[id(request)] = (time.perf_counter(), sample)
            return False

        def play_response(self, request: Any) -> Any:
            session = self._session
            with self._lock:
                position = self._drawn_position(request) if session.drawn and not session.drawing else None
                if position is not None:
                    self.play_counts[position] += 1
                    session.drawn.discard(position)
                    response = self.data[position][1]
                else:
                    response = super().play_response(request)
                played_code = _status_code(response)
                if played_code is not None and is_transient_status(played_code):
                    # a recorded 429/5xx replays without the backoff it cost (the SDKs read retry-after-ms)
                    headers = {
                        k: v for k, v in response["headers"].items() if str(k).lower() != "retry-after-ms"
                    }
                    response = {**response, "headers": {**headers, "retry-after-ms": ["1"]}}
                session.used.append((request, response))
                session.played += 1
            return response

        def append(self, request: Any, response: dict[str, Any]) -> None:
            if self._loading:
                self.data.append((request, response))
                self.dirty = True
                return
            with self._lock:
                self._append(request, response)

        def _append(self, request: Any, response: dict[str, Any]) -> None:
            session = self._session
            sent = session.in_flight.pop(id(request), None)
            start, sample = sent if sent is not None else (None, session.current_sample())
            code = _status_code(response)
            if (
                start is not None
                and code is not None
                and not session.record_errors
                and is_transient_status(code)
            ):
                # the provider could not serve it now: the SDK retries (or the test sees an error);
                # neither the error nor the cassette it is part of is kept unless that succeeds
                filtered = self._before_record_request(request)
                if filtered:
                    key = (sample, _match_key(filtered))  # a retry is within its sample
                    session.provider_errors.append((key, describe_status(code)))
                return
            if start is not None:
                response = dict(response)
                response[LATENCY_KEY] = round((time.perf_counter() - start) * 1000.0, 1)
            before = len(self.data)
            super().append(request, response)
            if start is not None and len(self.data) > before:
                self._tags.extend([sample] * (len(self.data) - len(self._tags)))
                block = self._request_blocks.pop(id(request), self._block)
                self._blocks.extend([block] * (len(self.data) - len(self._blocks)))
                session.recorded += 1
                view = session.view()
                if session.drawing and view is not None:
                    # drawn now, played when its sample runs; until then only its draw sees it
                    session.drawn.add(len(self.data) - 1)
                    view.append(self.data[-1])
                else:
                    # a new draw is never served again, not even to the same request later in the sample
                    self.play_counts[len(self.data) - 1] += 1
                    session.used.append(self.data[-1])
                if session.provider_errors:
                    key = (sample, _match_key(self.data[-1][0]))
                    kept = [e for e in session.provider_errors if e[0] != key]
                    session.retried += len(session.provider_errors) - len(kept)
                    session.provider_errors = kept

        def _save(self, force: bool = False) -> None:
            """Write the episodes in sample order with their metadata, or nothing.

            ``rewrite`` (and ``all``) keep only what this run recorded; the other modes add this
            run's new episodes to those in the file. Nothing is written when the recording is
            discarded, in replay, or when nothing changed.
            """
            if self._session.discard or self.record_mode == "none":
                return
            fresh = self.record_mode == "all"
            loaded = self._loaded_count
            tags = self._tags
            unused = self._session.drawn  # drawn for a sample that never asked for it again
            keep = [i for i in range(len(self.data)) if (i >= loaded or not fresh) and i not in unused]
            if self.drop_unused_requests and not fresh:
                keep = [i for i in keep if i >= loaded or self.play_counts[i] > 0]
            if fresh and len(self.data) == loaded:
                return  # rewrite of a test that made no call: the old file stays
            # episodes in sample order; within one, requests in a stable order (calls made
            # concurrently, asyncio.gather, arrive in any order: the file should not churn).
            # Equal requests keep the order they were answered in, which is the order they replay.
            blocks = self._blocks

            def order(i: int) -> tuple[int, int, tuple[str, str, bytes]]:
                block = blocks[i] if i < len(blocks) else i
                return (tags[i] if i < len(tags) else 0, block, _order_key(self.data[i][0]))

            keep.sort(key=order)
            ran = [str(x) for x in self._session.metadata.get("samples", [])]
            count = max(
                [len(ran), *((tags[i] if i < len(tags) else 0) + 1 for i in keep)]
                + ([] if fresh else [len(self._session.episodes)])
            )
            episodes = [0] * count
            for i in keep:
                episodes[tags[i] if i < len(tags) else 0] += 1
            outcomes = ran if fresh else ran + self._session.stored_samples[len(ran) :]
            old_meta = self._metadata.get(METADATA_KEY)
            old_meta = old_meta if isinstance(old_meta, dict) else {}
            meta: dict[str, Any] = {k: v for k, v in old_meta.items() if k not in ("samples", "episodes")}
            if outcomes and len(outcomes) == len(episodes):
                meta["samples"] = outcomes
            if meta.get("samples") or len(episodes) > 1:
                meta["episodes"] = episodes
            changed = len(self.data) > loaded or len(keep) < len(self.data) or meta != old_meta
            if not (changed or force):
                return
            metadata = {k: v for k, v in self._metadata.items() if k != METADATA_KEY}
            if meta:
                metadata[METADATA_KEY] = meta
            self._metadata = metadata
            self._persist(
                {
                    "requests": [self.data[i][0] for i in keep],
                    "responses": [self.data[i][1] for i in keep],
                }
            )
            self.dirty = False

        def _miss_message(self, request: Any) -> str:
            """Why nothing matched, scrubbed: it is shown in the terminal, JUnit XML and reports."""
            session, scrubber, miss_hint = self._session, self._scrubber, self._miss_hint
            sample = session.current_sample()
            filtered = self._before_record_request(request)
            uri = filtered.uri if filtered is not None else scrubber.scrub_uri(request.uri)
            lines = [
                f"No recorded response for {request.method} {uri}",
                f"  cassette: {session.path}" + ("" if session.path.exists() else " (missing)"),
                f"  record mode: {session.record_mode} (replay only: nothing was sent to the network)",
            ]
            not_a_model = _not_a_model_call(request.method, request.uri)
            if not_a_model:
                lines.append(f"  this is not a model call: {not_a_model}")
            if session.episode_miss():
                have = len(session.episodes)
                lines[0] += f" in sample {sample + 1}"
                lines.append(
                    f"  the cassette has {have} of {max(session.samples_wanted, sample + 1)} "
                    f"samples: sample {sample + 1} was never recorded"
                )
                lines.append(f"  to record only the missing samples: {session.topup_hint or miss_hint}")
                return scrubber.scrub_text("\n".join(lines))
            if self.data:
                best = self.find_requests_with_most_matches(request)
                if best:
                    stored, _, failures = best[0]
                    explained = [
                        (name, _body_difference(_canonical_body(filtered), _canonical_body(stored)))
                        if name == "body"
                        else (name, msg)
                        for name, msg in failures
                    ]
                    reasons = "; ".join(f"{name}: {msg}".strip().rstrip(":") for name, msg in explained)
                    if reasons:
                        lines.append(f"  closest recording differs by {reasons}")
                        lines.append("  (the prompt or the request changed since it was recorded?)")
                        if any(name in ("query", "body") for name, _ in explained):
                            lines.append(
                                "  a part that does not change the answer (an SDK-added flag, a "
                                "request id) can be left out of matching: ini "
                                "modelmigrate_match_ignore = query:NAME or body:PATH"
                            )
                    else:
                        lines.append(
                            f"  the same request is recorded, but not for sample {sample + 1} "
                            "(or it was already answered once in it): the test makes this call "
                            "more often than it did when it was recorded"
                        )
                else:
                    lines.append(f"  the cassette holds {len(self.data)} other request(s), none alike")
            lines.append(f"  to record it: {miss_hint}")
            return scrubber.scrub_text("\n".join(lines))

    return RecordingCassette


def _status_code(response: Any) -> int | None:
    status = response.get("status") if isinstance(response, dict) else None
    code = status.get("code") if isinstance(status, dict) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def _episodes(path: Path, count: int, meta: Any, hint: str, wanted: int = 1) -> tuple[list[int], list[str]]:
    """The interactions per episode (sample) of a loaded cassette, and its sample outcomes.

    Refuses (:class:`EpisodeMismatch`) a file whose metadata and interactions disagree: replaying
    it would serve one sample's answer to another. A file with no metadata is one episode, or,
    asked for ``wanted`` samples and holding a multiple of that many interactions, ``wanted``
    equal episodes (a cassette recorded before episodes were kept).
    """
    meta = meta if isinstance(meta, dict) else {}
    raw_samples = meta.get("samples")
    samples = [str(s) for s in raw_samples] if isinstance(raw_samples, list) else []
    fix = f"it was left as it is. Record it again: {hint}" if hint else _FIX
    episodes = meta.get("episodes")
    if episodes is not None:
        valid = isinstance(episodes, list) and all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in episodes
        )
        if not valid or sum(episodes) != count or (samples and len(samples) != len(episodes)):
            listed = (
                f"{len(episodes)} episode(s) of {sum(episodes)} interaction(s)" if valid else "bad episodes"
            )
            raise EpisodeMismatch(
                f"{path}: its metadata lists {listed} for {len(samples) or 'no'} sample outcome(s), "
                f"but the file holds {count} interaction(s) (edited by hand, or merged from two "
                f"recordings?); {fix}"
            )
        return list(episodes), samples
    if samples:
        if count < len(samples) or count % len(samples):
            raise EpisodeMismatch(
                f"{path}: its metadata lists {len(samples)} sample outcome(s) but the file holds "
                f"{count} interaction(s), which cannot be {len(samples)} samples of the same calls "
                "(an earlier pytest-modelmigrate answered topped-up samples with copies of the "
                f"episode it had just recorded); {fix}"
            )
        return [count // len(samples)] * len(samples), samples
    if wanted > 1 and count >= wanted and count % wanted == 0:
        return [count // wanted] * wanted, []
    return ([count] if count else []), []


class _ActiveCassette:
    """What the patches of a :class:`VcrSession` serve: the cassette open now.

    vcrpy's patchers are built around one cassette object, which they ask at each request
    (``can_play_response_for``, ``play_response``, ``append``); this one passes every question
    on to the cassette of the (test, model) that is running, so the patchers are built once.
    """

    def __init__(self, skip_patchers: tuple[str, ...], custom_patches: tuple[Any, ...]) -> None:
        self.skip_patchers = skip_patchers
        self.custom_patches = custom_patches
        self.current: Any = None

    @property
    def _path(self) -> str:  # vcrpy names its connection subclasses after it
        return str(self.current._path) if self.current is not None else ""

    def __getattr__(self, name: str) -> Any:
        current = self.__dict__.get("current")
        if current is None:
            raise AttributeError(
                f"no cassette is open (vcrpy asked for {name!r}): an HTTP connection opened inside "
                "a (test, model) was used after the test ended; open the client inside the test"
            )
        return getattr(current, name)


_MISSING = object()


def _raw_attribute(target: Any, name: str) -> tuple[bool, Any]:
    """Whether ``target`` holds ``name`` itself, and the raw value found (no descriptor bound)."""
    own = getattr(target, "__dict__", None)
    if own is not None and name in own:
        return True, own[name]
    if isinstance(target, type):
        for klass in target.__mro__:
            if name in vars(klass):
                return klass is target, vars(klass)[name]
        return False, _MISSING
    return False, getattr(target, name, _MISSING)


class _Patches:
    """vcrpy's patchers for one set of options, built once and put in place around each cassette.

    ``mock.patch.object`` objects are turned into plain (target, attribute, replacement)
    triples, set and restored like ``mock`` does (a held attribute is put back, an inherited
    one deleted), in the order vcrpy enters them; vcrpy's connection removers run as context
    managers where they stood. A few replacements wrap what they replace as it was when they
    were built (urllib3's ``_get_conn``), so they are reused only while every patched attribute
    holds what it held the first time; :meth:`enter` says when it does not (then build anew).
    """

    def __init__(self, skip_patchers: tuple[str, ...], custom_patches: tuple[Any, ...]) -> None:
        from unittest import mock

        from vcr.patch import CassettePatcherBuilder

        self.cassette = _ActiveCassette(skip_patchers, custom_patches)
        self.steps: list[tuple[Any, str, Any] | Any] = []
        for patcher in CassettePatcherBuilder(self.cassette).build():
            if isinstance(patcher, mock._patch) and not patcher.additional_patchers:
                self.steps.append((patcher.getter(), patcher.attribute, patcher.new))
            else:
                self.steps.append(patcher)  # a ConnectionRemover (or anything else): a context manager
        self.seen: list[Any] | None = None  # what each patched attribute held when first entered

    def enter(self, cassette: Any) -> Any | None:
        """Put the patches in place for ``cassette``; returns what to give :meth:`exit`, or
        ``None`` (nothing changed) when the patched attributes are no longer what they were."""
        saved: list[tuple[Any, str, bool, Any]] = []
        seen: list[Any] = []
        entered: list[Any] = []
        previous = self.cassette.current
        self.cassette.current = cassette
        try:
            for step in self.steps:
                if isinstance(step, tuple):
                    target, name, new = step
                    local, original = _raw_attribute(target, name)
                    if self.seen is not None and original is not self.seen[len(seen)]:
                        raise _Stale
                    seen.append(original)
                    saved.append((target, name, local, original))
                    setattr(target, name, new)
                else:
                    step.__enter__()
                    entered.append(step)
        except BaseException as exc:
            self._undo(saved, entered)
            self.cassette.current = previous
            if isinstance(exc, _Stale):
                return None
            raise
        if self.seen is None:
            self.seen = seen
        return (saved, entered, previous)

    def exit(self, token: Any) -> None:
        saved, entered, previous = token
        try:
            self._undo(saved, entered)
        finally:
            self.cassette.current = previous

    @staticmethod
    def _undo(saved: list[tuple[Any, str, bool, Any]], entered: list[Any]) -> None:
        errors: list[BaseException] = []
        for remover in reversed(entered):
            try:
                remover.__exit__(None, None, None)
            except BaseException as exc:  # noqa: BLE001 - restore every attribute, then raise
                errors.append(exc)
            pools = getattr(remover, "_connection_pool_to_connections", None)
            if isinstance(pools, dict):
                pools.clear()  # closed now; the next cassette starts with none
        for target, name, local, original in reversed(saved):
            if local and original is not _MISSING:
                setattr(target, name, original)
            else:
                with contextlib.suppress(AttributeError):
                    delattr(target, name)
                if original is not _MISSING and not hasattr(target, name):
                    setattr(target, name, original)
        if errors:
            raise errors[0]


class _Stale(Exception):
    """A patched attribute no longer holds what it held when the patchers were built."""


class VcrSession:
    """vcrpy, set up once per pytest session: one VCR (with the user's
    ``pytest_recording_configure``), one Cassette subclass, and vcrpy's patchers built once
    per set of options and put in place around each cassette.

    vcrpy's own ``use_cassette`` builds all of it for every cassette (a VCR, a merged config,
    a Cassette subclass, 37 patchers and 8 connection classes: most of what replaying a test
    costs when it makes one call or none). Between two (test, model)s nothing is patched, as
    with vcrpy: a session fixture's or a plain test's requests reach the real library.
    """

    def __init__(self, configure: Callable[[VCR], None] | None = None) -> None:
        self._configure = configure
        self._vcr: VCR | None = None
        self._patches: dict[Any, _Patches] = {}

    @property
    def vcr(self) -> VCR:
        if self._vcr is None:
            from vcr import VCR

            vcr = VCR(
                record_mode="once",
                match_on=DEFAULT_MATCH_ON,
                decode_compressed_response=True,
                serializer="yaml",
            )
            vcr.register_matcher("modelmigrate_body", body_matcher)
            vcr.register_matcher("modelmigrate_query", query_matcher)
            vcr.register_persister(AtomicPersister)
            if self._configure is not None:
                self._configure(vcr)
            self._vcr = vcr
        return self._vcr

    def patches(self, skip_patchers: Sequence[str], custom_patches: Sequence[Any]) -> tuple[Any, _Patches]:
        skip, custom = tuple(skip_patchers), tuple(custom_patches)
        try:
            key: Any = (skip, custom)
            hash(key)
        except TypeError:  # custom patches holding something unhashable: by identity
            key = (skip, tuple(map(id, custom)))
        patches = self._patches.get(key)
        if patches is None:
            patches = self._patches[key] = _Patches(skip, custom)
        return key, patches

    @contextmanager
    def patched(self, cassette: Any) -> Iterator[None]:
        """vcrpy's patches in place, serving ``cassette``, for the duration of the block."""
        key, patches = self.patches(cassette.skip_patchers, cassette.custom_patches)
        token = patches.enter(cassette)
        if token is None:  # patched by something else since (a user's own cassette): build anew
            patches = self._patches[key] = _Patches(key[0], tuple(cassette.custom_patches))
            token = patches.enter(cassette)
            if token is None:  # pragma: no cover - a fresh build sees the attributes it was built on
                raise RuntimeError("vcrpy's patchers could not be put in place")
        try:
            yield
        finally:
            patches.exit(token)


_NON_CASSETTE_ARGUMENTS = ("path_transformer", "func_path_generator", "record_on_exception")


@contextmanager
def open_cassette(
    path: Path,
    *,
    record_mode: str,
    scrubber: Scrubber,
    user_config: Mapping[str, Any] | None = None,
    miss_hint: str = "",
    configure: Callable[[VCR], None] | None = None,
    parse_cache: Path | None = None,
    aliases: Mapping[str, str] | None = None,
    samples: int = 1,
    topup_hint: str = "",
    record_errors: bool = False,
    match_ignore: MatchIgnore | None = None,
    before_send: Callable[[Any], None] | None = None,
    vcr_session: VcrSession | None = None,
) -> Iterator[CassetteSession]:
    """Activate a cassette for one (test, model); yields the session that tracks its use.

    ``record_mode`` is one of :data:`RECORD_MODES`. ``rewrite`` records everything anew and
    replaces the file only when the test is over (never deleted first). ``user_config`` is the
    user's ``vcr_config`` (and ``vcr`` mark kwargs): it overrides our defaults, except that our
    scrubbing hooks always run before the user's own. ``parse_cache`` is a folder where the
    parsed form of the cassette is kept for the next run (see :class:`ParseCache`).
    ``aliases`` maps the ``host:port`` a local server really listens on to the one its
    requests are recorded and matched as (an emulator per xdist worker, one fixed port).
    ``samples``: how many samples the test takes (episodes of the cassette); ``topup_hint``:
    the command that records only missing samples; ``record_errors``: keep transient provider
    errors (429, 5xx) in the cassette instead of refusing to write it. ``match_ignore``: request
    parts matching leaves out (default: the volatile query parameters). ``before_send`` is
    called with each request about to reach the network (a rate limit). ``vcr_session``: the
    session's vcrpy set-up (see :class:`VcrSession`); without one, ``configure`` is called
    with a VCR made for this cassette alone.
    """
    if record_mode not in RECORD_MODES:
        raise ValueError(f"unknown record mode {record_mode!r}; use one of {', '.join(RECORD_MODES)}")
    session = CassetteSession(
        path=path,
        record_mode=record_mode,
        samples_wanted=samples,
        topup_hint=topup_hint,
        record_errors=record_errors,
        before_send=before_send,
    )
    options: dict[str, Any] = dict(user_config or {})
    options.pop("record_mode", None)
    for key in ("cassette_library_dir", "path_transformer", "func_path_generator", "path"):
        options.pop(key, None)

    vcrs = vcr_session if vcr_session is not None else VcrSession(configure)
    global _ignored
    _ignored = match_ignore or MatchIgnore()
    AtomicPersister.scrubber = scrubber
    AtomicPersister.parse_cache = parse_cache

    first = scrubber.request
    if aliases:
        first = functools.partial(_aliased, dict(aliases), scrubber.request)
    options["before_record_request"] = _chain(first, options.get("before_record_request"))
    options["before_record_response"] = _chain(scrubber.response, options.get("before_record_response"))
    absent = _absent_patchers()
    if absent:
        options["skip_patchers"] = tuple(dict.fromkeys([*options.get("skip_patchers", ()), *absent]))
    # both keep only the new recording
    options["record_mode"] = "all" if record_mode == "rewrite" else record_mode
    config = vcrs.vcr.get_merged_config(path=os.fspath(path), **options)
    transformer = config.get("path_transformer")
    for name in _NON_CASSETTE_ARGUMENTS:
        config.pop(name, None)
    if transformer:
        config["path"] = transformer(config["path"])
    with contextlib.ExitStack() as locked:
        if record_mode != "none":
            # another process recording this cassette: wait for it, then read what it wrote
            locked.enter_context(cassette_lock(path))
        cassette = _cassette_class()(session=session, miss_hint=miss_hint, scrubber=scrubber, **config)
        cassette._load()
        with vcrs.patched(cassette):
            # the patches come off when the block ends, even when the save below raises (a
            # refused key, a full disk): later requests must not reach a cassette not theirs
            try:
                yield session
            except BaseException:
                session.discard = True
                cassette.dirty = False
                raise
            if session.discard:
                cassette.dirty = False
            cassette._save()


LOCK_TIMEOUT = 300.0  # seconds a recording waits for another process recording the same cassette


class CassetteLocked(CassetteReadError):
    """Another process held a cassette's lock for longer than :data:`LOCK_TIMEOUT`."""


@contextmanager
def cassette_lock(path: Path, timeout: float | None = None) -> Iterator[None]:
    """Hold the recording lock of ``path`` across processes (pytest-xdist workers, two
    terminals, sharded jobs on one machine), so two recordings of one cassette never both read
    the old file and each write their own episodes over the other's.

    The lock is a file in the temporary directory named after the cassette's absolute path (so
    nothing is written beside the cassettes). Where ``fcntl`` is missing (Windows) there is no
    lock.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    import tempfile

    wait = LOCK_TIMEOUT if timeout is None else timeout
    folder = Path(tempfile.gettempdir()) / "modelmigrate-locks"
    folder.mkdir(exist_ok=True)
    name = hashlib.sha256(os.fsencode(os.path.abspath(path))).hexdigest()[:32]
    with open(folder / f"{name}.lock", "a+") as handle:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    raise CassetteLocked(
                        f"{path}: another process has been recording this cassette for over "
                        f"{wait:.0f} s; nothing was recorded. Record one test and model in one "
                        "process at a time (or wait for the other run), then run again"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# vcrpy's patcher groups and the module each one imports (see vcr.patch.CassettePatcherBuilder)
_PATCHER_MODULES = {
    "requests": "requests",
    "boto3": "botocore",
    "urllib3": "urllib3",
    "httplib2": "httplib2",
    "tornado": "tornado",
    "aiohttp": "aiohttp",
    "httpx": "httpx",
    "httpx2": "httpx2",
}


@functools.cache
def _absent_patchers() -> tuple[str, ...]:
    """vcrpy's patcher groups for HTTP libraries that are not installed (asked once per process).

    vcrpy builds its patchers anew for every cassette and tries to import each library it
    supports; an import that fails is not cached by Python, so each missing library costs a
    search of ``sys.path`` per test. Skipping their groups patches exactly the same things.
    """
    import importlib.util

    from vcr import patch

    known = getattr(patch, "PATCHER_NAMES", None)  # vcrpy releases without skip_patchers
    if not known:
        return ()
    absent = []
    for group, module in _PATCHER_MODULES.items():
        if group not in known:
            continue
        try:
            missing = importlib.util.find_spec(module) is None
        except (ImportError, ValueError):
            missing = False
        if missing:
            absent.append(group)
    return tuple(absent)


def _aliased(aliases: Mapping[str, str], then: Callable[[Any], Any], request: Any) -> Any:
    """``request`` as if sent to the address its server is recorded as, then ``then``."""
    parts = request.uri.split("/", 3)  # scheme, "", host:port, rest
    if len(parts) > 2 and parts[2] in aliases:
        if request.headers.get("host") == parts[2]:
            request.headers["host"] = aliases[parts[2]]
        parts[2] = aliases[parts[2]]
        request.uri = "/".join(parts)
    return then(request)


def _chain(first: Callable[[Any], Any], user: Any) -> list[Callable[[Any], Any]]:
    hooks: list[Callable[[Any], Any]] = [first]
    if user is None:
        return hooks
    if callable(user):
        hooks.append(user)
    else:
        hooks.extend(user)
    return hooks


# vcrpy names a matcher by its __name__ in "closest recording differs by ..." explanations.
body_matcher.__name__ = "body"
query_matcher.__name__ = "query"


def _default_matchers() -> tuple[Any, ...]:
    """The matcher functions DEFAULT_MATCH_ON resolves to (vcrpy's own, then ours)."""
    from vcr import matchers

    return (
        matchers.method,
        matchers.scheme,
        matchers.host,
        matchers.port,
        matchers.path,
        query_matcher,
        body_matcher,
    )


def _order_key(request: Any) -> tuple[str, str, bytes]:
    return (str(request.method), str(request.uri), _canonical_body(request))


def _match_key(request: Any) -> tuple[Any, ...]:
    """What the default matchers compare, as one hashable key (see vcr.matchers); kept on the
    request beside its canonical body (a request is looked up four times per call)."""
    cached: tuple[Any, ...] | None = getattr(request, _MATCH_KEY_ATTR, None)
    if cached is not None:
        return cached
    key = (
        request.method,
        request.scheme,
        request.host,
        request.port,
        request.path or "/",
        _query(request),
        _canonical_body(request),
    )
    with contextlib.suppress(AttributeError):
        setattr(request, _MATCH_KEY_ATTR, key)
    return key


def _fast_request_copy(request: Any, memo: dict[int, Any] | None = None) -> Any:
    """``copy.deepcopy`` of a vcrpy ``Request``: the same result in about a third of the time.

    vcrpy deep-copies every request before its filters run (``before_record_request``); the
    generic algorithm walks the header mapping and the parsed URI field by field. Strings,
    bytes and the parsed URI (a named tuple of strings) cannot change, so they are shared, as
    ``deepcopy`` shares a plain tuple of strings; anything else is deep-copied as before. What
    the matchers cached on the request (its canonical body, its match key) is left behind: the
    filters change the copy's URL and body.
    """
    Request, HeadersDict, ParseResult = _request_types()
    memo = {} if memo is None else memo
    state = request.__dict__
    headers = state.get("_headers")
    if type(request) is not Request or type(headers) is not HeadersDict or len(headers.__dict__) != 1:
        rebuilt = request.__reduce_ex__(4)  # what deepcopy does for an object without __deepcopy__
        generic = copy._reconstruct(request, memo, *rebuilt)  # type: ignore[attr-defined]
        for name in _CACHED_ATTRS:
            getattr(generic, "__dict__", {}).pop(name, None)
        return generic
    new = object.__new__(Request)
    memo[id(request)] = new
    copied = new.__dict__
    for name, value in state.items():
        kind = type(value)
        if name in _CACHED_ATTRS:
            continue
        if kind in _SHARED or (kind is ParseResult and all(type(part) is str for part in value)):
            copied[name] = value
        elif value is headers:
            fresh = memo.get(id(headers))
            if fresh is None:  # (deepcopy keeps one copy of an object met twice: the memo)
                fresh = memo[id(headers)] = object.__new__(HeadersDict)
                store = headers._store
                fresh._store = memo[id(store)] = {
                    lower: (key, item if type(item) in _SHARED else copy.deepcopy(item, memo))
                    for lower, (key, item) in store.items()
                }
            copied[name] = fresh
        else:
            copied[name] = copy.deepcopy(value, memo)
    return new


@functools.cache
def _request_types() -> tuple[Any, Any, Any]:
    """vcrpy's request and header classes and the parsed-URI class (imported once)."""
    from urllib.parse import ParseResult

    from vcr.request import HeadersDict, Request

    return Request, HeadersDict, ParseResult


_SHARED = frozenset({str, bytes, bool, int, float, type(None)})
_CACHED_ATTRS = frozenset({_CANONICAL_ATTR, _MATCH_KEY_ATTR})
