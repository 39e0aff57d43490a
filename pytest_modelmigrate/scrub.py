"""Finding and removing secrets from recorded traffic and from what the plugin shows.

Pure module: no pytest import. Two uses, two rules:

- **Cassettes** (the vcrpy hooks :meth:`Scrubber.request` and :meth:`Scrubber.response`, and
  :meth:`Scrubber.redact_known` on the whole file before it is written): credential headers and
  query parameters are dropped, and the *known* secrets (the values of the key variables) are
  replaced by ``<redacted>``, also URL-encoded, in form bodies, inside gzip request bodies and
  spelled out across the chunks of an event stream (:meth:`Scrubber.redact_stream`). A string
  that only *looks* like a key is left for :func:`assert_no_live_keys`, which refuses the write.
  What is matched on replay (URL, body) therefore changes only with the environment, as before.
- **What people read** (reports, snapshots, failure text): :meth:`Scrubber.scrub_text` also masks
  every string shaped like a live key (:data:`LIVE_KEY_PATTERNS`) and OpenAI account ids, which
  matters on replay in CI, where no key variable is set and so no value is known.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

from .jsontext import node_count

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

REDACTED = "<redacted>"
_REDACTED_QUOTED = quote(REDACTED, safe="")

# Request headers that carry credentials or account identifiers (AWS signatures travel in
# Authorization: AWS4-HMAC-SHA256 Credential=..., dropped with it).
REQUEST_HEADERS = (
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "cookie",
    "openai-organization",
    "openai-project",
    "x-goog-api-key",
    "ocp-apim-subscription-key",  # Azure API Management
    "helicone-auth",
    "cf-aig-authorization",  # Cloudflare AI Gateway
    "x-portkey-api-key",
    "x-portkey-virtual-key",
    "x-amz-security-token",
)
# Response headers that identify the account or set session state.
RESPONSE_HEADERS = (
    "set-cookie",
    "openai-organization",
    "openai-project",
    "anthropic-organization-id",
    "cf-ray",
)
QUERY_PARAMETERS = (
    "api_key",
    "api-key",
    "apikey",
    "key",
    "subscription-key",
    "access_token",
    "token",
    "x-amz-security-token",
    "x-amz-credential",
    "x-amz-signature",
)
# Environment variables whose values are secrets wherever they show up.
KNOWN_KEY_VARIABLES = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_KEY",
    "OPENROUTER_API_KEY",
    "GROQ_API_KEY",
    "MISTRAL_API_KEY",
    "TOGETHER_API_KEY",
    "FIREWORKS_API_KEY",
    "DEEPSEEK_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "XAI_API_KEY",
    "CO_API_KEY",
    "COHERE_API_KEY",
    "HF_TOKEN",
)
# Any variable named like a credential is treated as one too.
_SECRET_VARIABLE = re.compile(r"(API_KEY|APIKEY|ACCESS_TOKEN|SECRET|_TOKEN)$", re.IGNORECASE)
# A name ending in _KEY (AZURE_OPENAI_KEY, AWS_SECRET_ACCESS_KEY) holds a key more often than not,
# but also a sort key, a key file's path or a key id: only a value that looks like a key counts
# (16+ key characters, letters and digits both, not a path).
_KEY_VARIABLE = re.compile(r"_KEY$", re.IGNORECASE)
_KEY_LIKE_VALUE = re.compile(r"(?![/.~])(?=[^0-9]*[0-9])(?=[^A-Za-z]*[A-Za-z])[A-Za-z0-9+/=_.\-]{16,}")
_MIN_SECRET_LENGTH = 8
_PREFIX_LENGTH = 14  # a secret's prefix this long, found anywhere, is treated as the secret
_PREFIX_MIN_SECRET = 24

# What a live key looks like, for the last scan before a cassette is written.
LIVE_KEY_PATTERNS = (
    re.compile(r"(?<![A-Za-z0-9_-])sk-ant-[A-Za-z0-9_-]{20,}"),
    re.compile(r"(?<![A-Za-z0-9_-])sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{24,}"),
    re.compile(r"Bearer [A-Za-z0-9_.=-]{24,}"),
    re.compile(r"(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}"),
    re.compile(r"(?<![A-Za-z0-9_-])hf_[A-Za-z0-9]{30,}"),
)
# OpenAI organization and project ids (a 429 body names them): redacted in response bodies.
ACCOUNT_ID_PATTERNS = (
    re.compile(r"(?<![A-Za-z0-9_-])org-[A-Za-z0-9]{20,}"),
    re.compile(r"(?<![A-Za-z0-9_-])proj_[A-Za-z0-9]{20,}"),
)
_ACCOUNT_IDS = re.compile("|".join(p.pattern for p in ACCOUNT_ID_PATTERNS))
_ACCOUNT_IDS_BYTES = re.compile(_ACCOUNT_IDS.pattern.encode())
# Everything scrub_text masks beyond the known values, as one pattern (one search per string).
_SHOWN = re.compile("|".join(p.pattern for p in (*LIVE_KEY_PATTERNS, *ACCOUNT_ID_PATTERNS)))
# Every match of _SHOWN starts with one of these (a cheap test before the search).
_SHOWN_PREFIXES = ("sk-", "Bearer ", "AIza", "hf_", "org-", "proj_")
_FORM = "application/x-www-form-urlencoded"
_WHOLE_TEXT = 2_000  # nodes of a JSON-like value searched as one text by Scrubber.scrub_data


class SecretInCassetteError(RuntimeError):
    """A cassette about to be written still holds something that looks like a live key."""


# The key a replay session gives the SDKs when none is set (``replay.placeholder_keys``): no secret,
# and never redacted (its pieces would match the plugin's own name in cassettes and reports).
PLACEHOLDER_KEY = "modelmigrate-replay-no-key"


def secret_values_from_env(
    environ: Mapping[str, str] | None = None, extra_variables: Iterable[str] = ()
) -> list[str]:
    """Values of credential-like environment variables, longest first (so substrings go last)."""
    environ = os.environ if environ is None else environ
    names = set(KNOWN_KEY_VARIABLES) | set(extra_variables)
    values = {
        value
        for name, value in environ.items()
        if len(value) >= _MIN_SECRET_LENGTH
        and value != PLACEHOLDER_KEY
        and (
            name in names
            or _SECRET_VARIABLE.search(name)
            or (_KEY_VARIABLE.search(name) and _KEY_LIKE_VALUE.fullmatch(value))
        )
    }
    return sorted(values, key=len, reverse=True)


@dataclass
class Scrubber:
    """Removes credentials from requests and responses; one per session."""

    request_headers: frozenset[str] = frozenset(REQUEST_HEADERS)
    response_headers: frozenset[str] = frozenset(RESPONSE_HEADERS)
    query_parameters: frozenset[str] = frozenset(QUERY_PARAMETERS)
    secret_values: list[str] = field(default_factory=list)

    @classmethod
    def from_settings(
        cls,
        *,
        extra_request_headers: Iterable[str] = (),
        extra_response_headers: Iterable[str] = (),
        extra_query_parameters: Iterable[str] = (),
        extra_variables: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> Scrubber:
        return cls(
            request_headers=frozenset(h.lower() for h in (*REQUEST_HEADERS, *extra_request_headers)),
            response_headers=frozenset(h.lower() for h in (*RESPONSE_HEADERS, *extra_response_headers)),
            query_parameters=frozenset(q.lower() for q in (*QUERY_PARAMETERS, *extra_query_parameters)),
            secret_values=secret_values_from_env(environ, extra_variables),
        )

    # -- text ---------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        # Each secret as sent in a URL or a form (percent-encoded) too, longest first.
        forms: dict[str, str] = dict.fromkeys(self.secret_values, REDACTED)
        for value in self.secret_values:
            for encoded in (quote(value, safe=""), quote(value), quote_plus(value)):
                forms.setdefault(encoded, _REDACTED_QUOTED)
        self._forms = sorted(forms.items(), key=lambda item: len(item[0]), reverse=True)
        self._forms_bytes = [(f.encode(), r.encode()) for f, r in self._forms]
        # A key may come back cut short (a model quoting the start of the prompt): a long enough
        # prefix of a secret, and whatever key characters follow it, is removed as well.
        self._partial = [
            re.compile(re.escape(value[:_PREFIX_LENGTH]) + r"[A-Za-z0-9_.\-]*")
            for value in self.secret_values
            if len(value) >= _PREFIX_MIN_SECRET
        ]
        self._partial_bytes = [re.compile(p.pattern.encode()) for p in self._partial]
        # Whether a search of a value's JSON text finds every secret its strings hold: true
        # unless a secret has a character JSON escapes (a quote, a backslash, a control one).
        self._json_searchable = not any(
            any(c in '"\\' or ord(c) < 0x20 for c in form) for form, _ in self._forms
        )

    def redact_known(self, text: str) -> str:
        """``text`` without the known secrets (the very same object when there were none).

        What cassettes get: a string that only looks like a key is left for the last scan.
        """
        if not self._forms:
            return text
        original = text
        for form, replacement in self._forms:
            if form in text:
                text = text.replace(form, replacement)
        for pattern in self._partial:
            text = pattern.sub(REDACTED, text)
        return original if text == original else text

    def redact_known_bytes(self, data: bytes) -> bytes:
        for form, replacement in self._forms_bytes:
            if form in data:
                data = data.replace(form, replacement)
        for pattern in self._partial_bytes:
            data = pattern.sub(REDACTED.encode(), data)
        return data

    def scrub_text(self, text: str) -> str:
        """``text`` as the plugin may show it (reports, snapshots, failure text): the known secrets,
        any string shaped like a live key and OpenAI account ids replaced by ``<redacted>``.
        The very same object when there was nothing to remove."""
        scrubbed = self.redact_known(text)
        if any(prefix in scrubbed for prefix in _SHOWN_PREFIXES):  # most text holds none: skip the search
            scrubbed = _SHOWN.sub(REDACTED, scrubbed)
        return text if scrubbed == text else scrubbed

    def scrub_data(self, value: Any) -> Any:
        """JSON-like ``value`` (dicts, lists, strings, numbers) with secrets removed from every
        string, keys included: for reports and other records built from test output.

        Containers are copied only where something was removed (tuples become lists); the rest
        is returned as it is, so a large run is not held twice. A value with nothing to remove (a
        CI replay: no keys set, none in the answers) costs a ``json.dumps`` and a search of its
        text, in pieces of about :data:`_WHOLE_TEXT` nodes (:meth:`_holds_nothing`), not a walk
        of every string.
        """
        if isinstance(value, (dict, list)) and self._json_searchable:
            try:
                if self._holds_nothing(value):
                    return value
            except (TypeError, ValueError, RecursionError):
                pass  # not plain JSON: walk it
        return self._scrub_data(value)

    def _holds_nothing(self, value: Any) -> bool:
        """Whether :meth:`scrub_text` finds nothing in the JSON text of ``value``'s strings.

        A value of up to :data:`_WHOLE_TEXT` nodes is searched as one text; a larger one in
        pieces of about that many nodes (its keys, then its items, a run of small ones at a
        time), so a large run is never held a second time as one text. Each string is wholly
        inside one piece, so the pieces find what the whole text would. Raises
        ``TypeError``/``ValueError``/``RecursionError`` when ``value`` is not plain JSON.
        """
        if not isinstance(value, (dict, list)) or node_count(value, _WHOLE_TEXT) <= _WHOLE_TEXT:
            return self._text_holds_nothing(value)
        children: list[Any] = [*value, *value.values()] if isinstance(value, dict) else value
        batch: list[Any] = []
        size = 0
        for child in children:
            nodes = node_count(child, _WHOLE_TEXT)
            if nodes > _WHOLE_TEXT:
                if not self._holds_nothing(child):
                    return False
                continue
            if size + nodes > _WHOLE_TEXT:
                if not self._text_holds_nothing(batch):
                    return False
                batch, size = [], 0
            batch.append(child)
            size += nodes
        return not batch or self._text_holds_nothing(batch)

    def _text_holds_nothing(self, value: Any) -> bool:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return self.scrub_text(text) is text

    def _scrub_data(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, dict):
            items = [(self._scrub_data(k), self._scrub_data(v)) for k, v in value.items()]
            if all(k is k0 and v is v0 for (k, v), (k0, v0) in zip(items, value.items(), strict=True)):
                return value
            return dict(items)
        if isinstance(value, list):
            scrubbed = [self._scrub_data(v) for v in value]
            return value if all(a is b for a, b in zip(scrubbed, value, strict=True)) else scrubbed
        if isinstance(value, tuple):
            return [self._scrub_data(v) for v in value]
        return value

    def scrub_object(self, value: Any, _seen: set[int] | None = None) -> Any:
        """``value`` with :meth:`scrub_text` applied to every string it holds, for objects that
        others hold and render later (pytest's failure representations): strings, lists, dicts
        and dataclass instances are changed in place, tuples rebuilt; anything else is left."""
        if isinstance(value, str):
            return self.scrub_text(value)
        if not isinstance(value, (list, tuple, dict)) and not (
            dataclasses.is_dataclass(value) and not isinstance(value, type)
        ):
            return value
        seen = set() if _seen is None else _seen
        if id(value) in seen:
            return value
        seen.add(id(value))
        if isinstance(value, list):
            for index, item in enumerate(value):
                new = self.scrub_object(item, seen)
                if new is not item:
                    value[index] = new
        elif isinstance(value, tuple):
            items = [self.scrub_object(item, seen) for item in value]
            if any(a is not b for a, b in zip(items, value, strict=True)):
                return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
        elif isinstance(value, dict):
            for key, item in list(value.items()):
                new = self.scrub_object(item, seen)
                if new is not item:
                    value[key] = new
        else:
            for f in dataclasses.fields(value):
                item = getattr(value, f.name, None)
                new = self.scrub_object(item, seen)
                if new is not item:
                    setattr(value, f.name, new)
        return value

    def scrub_uri(self, uri: str) -> str:
        """The URI without credential query parameters and known secrets (for cassettes)."""
        parts = urlsplit(uri)
        if parts.query:
            pairs = parse_qsl(parts.query, keep_blank_values=True)
            kept = [(k, v) for k, v in pairs if k.lower() not in self.query_parameters]
            if len(kept) != len(pairs):
                parts = parts._replace(query=urlencode(kept))
        return self.redact_known(urlunsplit(parts))

    def redact_body(self, body: Any) -> Any:
        if isinstance(body, str):
            return self.redact_known(body)
        if isinstance(body, bytes):
            return self.redact_known_bytes(body)
        return body

    def _redact_form(self, data: bytes) -> bytes:
        """A form body with credential fields and known secrets redacted, however encoded."""
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            return data
        pairs = parse_qsl(text, keep_blank_values=True)
        redacted = [
            (k, REDACTED if k.lower() in self.query_parameters else self.redact_known(v)) for k, v in pairs
        ]
        return data if redacted == pairs else urlencode(redacted).encode("ascii")

    # -- vcrpy hooks ----------------------------------------------------------------------------
    def request(self, request: Any) -> Any:
        """``before_record_request``: vcrpy passes a deep copy of the request, so mutate it.

        The same filter runs on the live request before it is matched on replay, so whatever it
        does to the URL and the body must depend only on them (and the key variables).
        """
        content_type = encoding = ""
        for name in list(request.headers):
            lowered = name.lower()
            if lowered in self.request_headers:
                del request.headers[name]
                continue
            value = request.headers[name]
            if isinstance(value, str):
                request.headers[name] = self.redact_known(value)
                if lowered == "content-type":
                    content_type = value.lower()
                elif lowered == "content-encoding":
                    encoding = value.strip().lower()
        request.uri = self.scrub_uri(request.uri)
        body = request.body
        if isinstance(body, str):
            body = body.encode("utf-8")
        if isinstance(body, bytes):
            decoded = _decompress_request(body, encoding)
            if decoded is not None:
                # kept decompressed: readable by the last scan, matched without gzip's timestamp
                body = decoded
                for name in [n for n in request.headers if n.lower() == "content-encoding"]:
                    del request.headers[name]
            if content_type.startswith(_FORM):
                body = self._redact_form(body)
            request.body = self.redact_known_bytes(body)
        return request

    def response(self, response: dict[str, Any]) -> dict[str, Any]:
        """``before_record_response``: vcrpy passes a deep copy of the response dict."""
        headers = response.get("headers") or {}
        for name in list(headers):
            if name.lower() in self.response_headers:
                del headers[name]
            else:
                values = headers[name]
                if isinstance(values, list):
                    headers[name] = [self.redact_known(v) if isinstance(v, str) else v for v in values]
        body = response.get("body")
        if isinstance(body, dict) and "string" in body:
            string = self.redact_body(body["string"])
            if isinstance(string, str):
                string = _ACCOUNT_IDS.sub(REDACTED, string)
            elif isinstance(string, bytes):
                string = _ACCOUNT_IDS_BYTES.sub(REDACTED.encode(), string)
            body["string"] = string
        return response

    # -- event streams --------------------------------------------------------------------------
    def redact_stream(self, text: str) -> tuple[str, list[str]]:
        """An event-stream body without the known secrets its streamed deltas spell out, and the
        strings shaped like a live key that the reassembled deltas still hold (shortened).

        A stream sends a reply one piece per ``data:`` event, so a key may sit in no single
        chunk. The string fields under a ``delta`` key (chat ``choices[i].delta.content``,
        Responses ``delta``, Anthropic ``delta.text``/``partial_json``) are joined per field, in
        order, and searched. The events holding pieces of a known secret are rewritten, the
        first piece becoming ``<redacted>`` and the others empty, so the reassembled reply is
        the redacted reply; every other byte is kept. Returns ``text`` itself when nothing was
        found. An event whose JSON spans several ``data:`` lines cannot be rewritten: what it
        holds is reported as found.
        """
        from .providers.sse import data_spans

        events: list[tuple[tuple[tuple[int, int], ...], Any]] = []
        # per delta field (its JSON path): the pieces in order, and which event holds each
        pieces: dict[tuple[Any, ...], list[str]] = {}
        holders: dict[tuple[Any, ...], list[int]] = {}
        for spans in data_spans(text):
            data = "\n".join(text[a:b] for a, b in spans)
            try:
                parsed = json.loads(data) if data.lstrip().startswith(("{", "[")) else None
            except ValueError:
                parsed = None
            for path, piece in _delta_strings(parsed, (), inside=False):
                pieces.setdefault(path, []).append(piece)
                holders.setdefault(path, []).append(len(events))
            events.append((spans, parsed))
        edits: dict[int, list[tuple[tuple[Any, ...], str]]] = {}
        found: list[str] = []
        for path, parts in pieces.items():
            whole = "".join(parts)
            cuts = self._redactions(whole)
            if cuts:
                new_parts = _cut(parts, cuts)
                target = "".join(new_parts)
                for event, piece, new_piece in zip(holders[path], parts, new_parts, strict=True):
                    if new_piece != piece:
                        edits.setdefault(event, []).append((path, new_piece))
                parts, whole = new_parts, target
            # a key-like string that one piece holds whole, the scan of the file reports (with its line)
            in_pieces = Counter(key for piece in parts for key in find_live_keys(piece))
            found.extend((Counter(find_live_keys(whole)) - in_pieces).elements())
        if not edits:
            return text, found
        replacements = []
        for index, changes in edits.items():
            spans, parsed = events[index]
            if len(spans) != 1:
                found.append("a known secret in an event of several data: lines")
                continue
            for leaf, new in changes:
                _set_path(parsed, leaf, new)
            replacements.append((spans[0], json.dumps(parsed, ensure_ascii=False)))
        for (a, b), new_data in sorted(replacements, reverse=True):
            text = text[:a] + new_data + text[b:]
        return text, found

    def _redactions(self, text: str) -> list[tuple[int, int, str]]:
        """What :meth:`redact_known` replaces in ``text``, as ``(start, end, replacement)`` in
        order: the same forms, in the same order, each searched in the text not yet replaced."""
        searches: list[tuple[str | re.Pattern[str], str]] = [
            *self._forms,
            *((p, REDACTED) for p in self._partial),
        ]
        cuts: list[tuple[int, int, str]] = []
        untouched = [(0, len(text))]
        for search, replacement in searches:
            remaining = []
            for a, b in untouched:
                position = a
                for start, end in _occurrences(text[a:b], search):
                    remaining.append((position, a + start))
                    cuts.append((a + start, a + end, replacement))
                    position = a + end
                remaining.append((position, b))
            untouched = remaining
        return sorted(cuts)


def _occurrences(text: str, search: str | re.Pattern[str]) -> list[tuple[int, int]]:
    """Where ``search`` (a string, or a pattern) occurs in ``text``, left to right, not overlapping."""
    if not isinstance(search, str):
        return [match.span() for match in search.finditer(text)]
    found = []
    at = text.find(search)
    while at >= 0:
        found.append((at, at + len(search)))
        at = text.find(search, at + len(search))
    return found


def _decompress_request(body: bytes, encoding: str) -> bytes | None:
    """A gzip or deflate request body decompressed; None when it is not (or cannot be)."""
    try:
        if encoding in ("gzip", "x-gzip") and body.startswith(b"\x1f\x8b"):
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
    except (OSError, EOFError, zlib.error):
        return None  # kept as sent; the scan cannot read it
    return None


def _delta_strings(
    value: Any, path: tuple[Any, ...], *, inside: bool
) -> Iterator[tuple[tuple[Any, ...], str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _delta_strings(item, (*path, key), inside=inside or key == "delta")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _delta_strings(item, (*path, index), inside=inside)
    elif inside and isinstance(value, str):
        yield path, value


def _cut(pieces: list[str], cuts: list[tuple[int, int, str]]) -> list[str]:
    """``pieces`` with the ``(start, end, replacement)`` cuts of their joined text applied: a
    replacement goes, whole, to the piece where its cut starts; the text it covers is dropped
    from every piece."""
    out = []
    start = 0
    for piece in pieces:
        end = start + len(piece)
        kept, position = [], start
        for a, b, replacement in cuts:
            if b <= start or a >= end:
                continue
            if a >= position:
                kept += [piece[position - start : a - start], replacement]
            position = max(position, min(b, end))
        kept.append(piece[position - start :])
        out.append("".join(kept))
        start = end
    return out


def _set_path(value: Any, path: tuple[Any, ...], new: str) -> None:
    for step in path[:-1]:
        value = value[step]
    value[path[-1]] = new


def find_live_keys(text: str) -> list[str]:
    """Matches of live-key patterns, each shortened so the message never repeats a whole key."""
    found = []
    for pattern in LIVE_KEY_PATTERNS:
        for match in pattern.finditer(text):
            value = match.group(0)
            if REDACTED in value:
                continue
            found.append(value[:10] + "…")
    return found


def refuse_split_keys(found: list[str], *, path: str, interaction: int) -> None:
    """Refuse to write a cassette whose event stream spells out a key-like string across chunks."""
    if not found:
        return
    raise SecretInCassetteError(
        f"refusing to write {path}: the event stream of interaction {interaction} spells out "
        f"{len(found)} string(s) that look like a live API key ({', '.join(sorted(set(found)))}) across "
        "its chunks (one piece per data: event, so no single line holds it). The previous cassette, if "
        "any, is unchanged. Name the variable that holds the key in the ini setting "
        "modelmigrate_secret_env (its value is then removed from every chunk), or keep the key out "
        "of the reply, then record again."
    )


def assert_no_live_keys(serialized: str, *, path: str) -> None:
    """Refuse to write ``serialized`` (a cassette's text) when it still holds a key-like string."""
    found = find_live_keys(serialized)
    if not found:
        return
    lines = [
        line_no
        for line_no, line in enumerate(serialized.splitlines(), start=1)
        if any(pattern.search(line) for pattern in LIVE_KEY_PATTERNS)
    ]
    raise SecretInCassetteError(
        f"refusing to write {path}: it holds {len(found)} string(s) that look like a live API key "
        f"({', '.join(sorted(set(found)))}) at line(s) {', '.join(map(str, lines[:10]))} of the cassette. "
        "The previous cassette, if any, is unchanged. Remove the key from the request or response "
        "(a header, the URL or a body), or name the variable that holds it in the ini setting "
        "modelmigrate_secret_env, then record again."
    )
