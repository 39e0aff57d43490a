"""Finding and removing secrets from recorded traffic.

Pure module: no pytest import. Used as vcrpy hooks (before a request is matched or recorded,
before a response is recorded) and once more on the whole cassette just before it is written.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

REDACTED = "<redacted>"

# Request headers that carry credentials or account identifiers.
REQUEST_HEADERS = (
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "cookie",
    "openai-organization",
    "openai-project",
    "x-goog-api-key",
)
# Response headers that identify the account or set session state.
RESPONSE_HEADERS = (
    "set-cookie",
    "openai-organization",
    "openai-project",
    "anthropic-organization-id",
    "cf-ray",
)
QUERY_PARAMETERS = ("api_key", "api-key", "key", "access_token", "token")
# Environment variables whose values are secrets wherever they show up.
KNOWN_KEY_VARIABLES = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "AZURE_OPENAI_API_KEY",
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


class SecretInCassetteError(RuntimeError):
    """A cassette about to be written still holds something that looks like a live key."""


def secret_values_from_env(
    environ: Mapping[str, str] | None = None, extra_variables: Iterable[str] = ()
) -> list[str]:
    """Values of credential-like environment variables, longest first (so substrings go last)."""
    environ = os.environ if environ is None else environ
    names = set(KNOWN_KEY_VARIABLES) | set(extra_variables)
    values = {
        value
        for name, value in environ.items()
        if (name in names or _SECRET_VARIABLE.search(name)) and len(value) >= _MIN_SECRET_LENGTH
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
            query_parameters=frozenset((*QUERY_PARAMETERS, *extra_query_parameters)),
            secret_values=secret_values_from_env(environ, extra_variables),
        )

    # -- text ---------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        # A key may come back cut short (a model quoting the start of the prompt): a long enough
        # prefix of a secret, and whatever key characters follow it, is removed as well.
        self._partial = [
            re.compile(re.escape(value[:_PREFIX_LENGTH]) + r"[A-Za-z0-9_.\-]*")
            for value in self.secret_values
            if len(value) >= _PREFIX_MIN_SECRET
        ]
        self._partial_bytes = [re.compile(p.pattern.encode()) for p in self._partial]

    def scrub_text(self, text: str) -> str:
        """``text`` without secrets (the very same object when there were none)."""
        original = text
        for value in self.secret_values:
            if value in text:
                text = text.replace(value, REDACTED)
        for pattern in self._partial:
            text = pattern.sub(REDACTED, text)
        return original if text == original else text

    def scrub_bytes(self, data: bytes) -> bytes:
        for value in self.secret_values:
            encoded = value.encode()
            if encoded in data:
                data = data.replace(encoded, REDACTED.encode())
        for pattern in self._partial_bytes:
            data = pattern.sub(REDACTED.encode(), data)
        return data

    def scrub_body(self, body: Any) -> Any:
        if isinstance(body, str):
            return self.scrub_text(body)
        if isinstance(body, bytes):
            return self.scrub_bytes(body)
        return body

    def scrub_data(self, value: Any) -> Any:
        """JSON-like ``value`` (dicts, lists, strings, numbers) with secrets removed from every
        string, keys included: for reports and other records built from test output.

        Containers are copied only where something was removed (tuples become lists); the rest
        is returned as it is, so a large run is not held twice.
        """
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, dict):
            items = [(self.scrub_data(k), self.scrub_data(v)) for k, v in value.items()]
            if all(k is k0 and v is v0 for (k, v), (k0, v0) in zip(items, value.items(), strict=True)):
                return value
            return dict(items)
        if isinstance(value, list):
            scrubbed = [self.scrub_data(v) for v in value]
            return value if all(a is b for a, b in zip(scrubbed, value, strict=True)) else scrubbed
        if isinstance(value, tuple):
            return [self.scrub_data(v) for v in value]
        return value

    def scrub_uri(self, uri: str) -> str:
        parts = urlsplit(uri)
        if parts.query:
            pairs = parse_qsl(parts.query, keep_blank_values=True)
            kept = [(k, v) for k, v in pairs if k.lower() not in self.query_parameters]
            if len(kept) != len(pairs):
                parts = parts._replace(query=urlencode(kept))
        text = self.scrub_text(urlunsplit(parts))
        for value in self.secret_values:  # a secret with URL-special characters appears encoded
            for encoded in {quote(value, safe=""), quote(value), quote_plus(value)} - {value}:
                text = text.replace(encoded, quote(REDACTED, safe=""))
        return text

    # -- vcrpy hooks ----------------------------------------------------------------------------
    def request(self, request: Any) -> Any:
        """``before_record_request``: vcrpy passes a deep copy of the request, so mutate it."""
        for name in list(request.headers):
            if name.lower() in self.request_headers:
                del request.headers[name]
            else:
                value = request.headers[name]
                if isinstance(value, str):
                    request.headers[name] = self.scrub_text(value)
        request.uri = self.scrub_uri(request.uri)
        if request.body is not None:
            request.body = self.scrub_body(request.body)
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
                    headers[name] = [self.scrub_text(v) if isinstance(v, str) else v for v in values]
        body = response.get("body")
        if isinstance(body, dict) and "string" in body:
            body["string"] = self.scrub_body(body["string"])
        return response


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
