"""Hypothesis fuzzing of the parsers that read user input and recorded files.

Each property is the rule a user relies on: bad input gives the one named error, never another
exception; names built from input are always safe file names; a planted secret never survives.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_modelmigrate.cassettes import MAX_NAME_LENGTH, cassette_file_name
from pytest_modelmigrate.models import ModelSpecError, parse_models
from pytest_modelmigrate.providers.base import Call, CassetteFormatError
from pytest_modelmigrate.providers.parse import parse_interaction
from pytest_modelmigrate.providers.sse import SSEDecoder, parse_sse
from pytest_modelmigrate.scrub import REDACTED, Scrubber

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SAFE_NAME = re.compile(r"^[^<>?%*:|\"'/\\\x00-\x1f]+$")
SAFE_ID = re.compile(r"^[A-Za-z0-9._+-]{1,64}$")

# -- model specs -------------------------------------------------------------------------------

model_text = st.text(alphabet=st.sampled_from("ab/:=, \n-._+@é\x00"), max_size=40) | st.text(max_size=40)


@FAST
@given(model_text)
def test_parse_models_raises_only_model_spec_errors_and_gives_safe_unique_ids(value: str) -> None:
    try:
        specs = parse_models(value, source="--models")
    except ModelSpecError as exc:
        assert str(exc).startswith("--models")
        return
    ids = [spec.id for spec in specs]
    assert len(set(ids)) == len(ids)
    for spec in specs:
        assert SAFE_ID.match(spec.id), spec
        assert spec.id not in (".", "..")
        assert spec.name.strip() == spec.name and spec.name


# -- cassette names ----------------------------------------------------------------------------


@FAST
@given(st.text(min_size=1, max_size=400))
def test_cassette_file_name_is_always_safe_and_capped(test_name: str) -> None:
    name = cassette_file_name(test_name)
    assert len(name) <= MAX_NAME_LENGTH
    assert name.endswith(".yaml")
    assert SAFE_NAME.match(name), name
    assert name not in (".yaml", "..yaml") or test_name in ("", ".")


@FAST
@given(st.text(alphabet="ab", min_size=190, max_size=300), st.text(alphabet="ab", min_size=190, max_size=300))
def test_long_names_that_differ_stay_distinct(a: str, b: str) -> None:
    """Over the cap the name ends in a hash of the whole name, so long ids do not collide.

    Names that differ only in forbidden characters (``a/b`` and ``a:b``) do collide: both become
    ``a-b``. That is accepted (docs/reliability.md): ``::`` and ``[...]`` ids never need them.
    """
    if a != b:
        assert cassette_file_name(a) != cassette_file_name(b)


# -- recorded interactions -----------------------------------------------------------------------

PATHS = ["/v1/chat/completions", "/v1/responses", "/v1/messages", "/v1/embeddings", "/v1/other"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
VALID_CHAT = {
    "id": "c1",
    "object": "chat.completion",
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}
VALID_STREAM = (
    'data: {"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,'
    '"delta":{"content":"hi"},"finish_reason":null}]}\n\n'
    'data: {"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,'
    '"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
)


def _mutate(text: str, data: st.DataObject) -> str:
    """Cut, splice or corrupt a valid body."""
    how = data.draw(st.sampled_from(["cut", "insert", "delete"]))
    at = data.draw(st.integers(0, len(text)))
    if how == "cut":
        return text[:at]
    if how == "insert":
        return text[:at] + data.draw(st.text(max_size=5)) + text[at:]
    return text[:at] + text[at + data.draw(st.integers(1, 10)) :]


bodies = (
    json_values.map(json.dumps)
    | st.text(max_size=100)
    | st.binary(max_size=60)
    | st.builds(lambda v: {"string": v}, st.text(max_size=50) | st.binary(max_size=50))
    | json_values
)


def _check(request: dict[str, Any], response: dict[str, Any]) -> None:
    try:
        call = parse_interaction(request, response, source="c.yaml", index=3)
    except CassetteFormatError as exc:
        assert "c.yaml: interaction 3" in str(exc)
    else:
        assert isinstance(call, Call)
        call.summary()  # what the run file stores must build too


@FAST
@given(
    st.sampled_from(PATHS),
    st.sampled_from(["POST", "GET"]),
    bodies,
    st.one_of(st.integers(100, 599), json_values, st.builds(lambda c: {"code": c}, json_values)),
    st.dictionaries(
        st.sampled_from(["content-type", "Content-Encoding", "x"]),
        st.sampled_from(["text/event-stream", "application/json", "gzip", "deflate", "br", ""]).map(
            lambda v: [v]
        ),
    ),
)
def test_parse_interaction_on_random_input_gives_a_call_or_a_format_error(
    path: str, method: str, body: Any, status: Any, headers: dict[str, list[str]]
) -> None:
    request = {
        "method": method,
        "uri": "https://api.example.com" + path,
        "body": '{"model": "m"}',
        "headers": {},
    }
    response = {
        "status": status,
        "headers": headers,
        "body": body if isinstance(body, dict) else {"string": body},
    }
    _check(request, response)


@FAST
@given(st.sampled_from(PATHS[:3]), st.sampled_from([json.dumps(VALID_CHAT), VALID_STREAM]), st.data())
def test_parse_interaction_on_mutated_bodies_gives_a_call_or_a_format_error(
    path: str, body: str, data: st.DataObject
) -> None:
    mutated = _mutate(body, data)
    content_type = "text/event-stream" if body.startswith("data:") else "application/json"
    request = {"method": "POST", "uri": "http://h" + path, "body": data.draw(bodies), "headers": {}}
    response = {
        "status": {"code": data.draw(st.sampled_from([200, 200, 429, 500])), "message": "x"},
        "headers": {"content-type": [content_type]},
        "body": {"string": mutated},
    }
    _check(request, response)


# -- the scrubber ----------------------------------------------------------------------------------

# No "<" or ">": a secret such as "<redacte" or "ted>abcd" can be spelled by the placeholder that
# replaces it (with what follows), which says nothing about the scrubber (a fresh clone drew one).
secrets = st.text(alphabet=st.characters(codec="ascii", exclude_characters="\x00<>"), min_size=8, max_size=60)
surroundings = st.text(max_size=30)


@FAST
@given(secrets, surroundings, surroundings, st.sampled_from(["OPENAI_API_KEY", "MY_SERVICE_TOKEN", "CUSTOM"]))
def test_a_planted_secret_never_survives_in_header_query_or_body(
    secret: str, before: str, after: str, variable: str
) -> None:
    from urllib.parse import quote

    scrubber = Scrubber.from_settings(environ={variable: secret}, extra_variables=["CUSTOM"])

    class Request:
        def __init__(self) -> None:
            self.headers = {"X-Anything": before + secret + after, "Authorization": "Bearer " + secret}
            self.uri = f"https://h/v1/chat?api_key={quote(secret)}&q={quote(before + secret)}"
            self.body = (before + secret + after).encode()

    request = scrubber.request(Request())
    response = scrubber.response(
        {"headers": {"x-echo": [before + secret + after]}, "body": {"string": before + secret + after}}
    )
    from urllib.parse import parse_qsl, urlsplit

    query_values = [v for _, v in parse_qsl(urlsplit(request.uri).query)]
    for text in (
        *request.headers.values(),
        *query_values,
        request.body.decode(),
        *response["headers"]["x-echo"],
        response["body"]["string"],
    ):
        assert secret not in text
    assert "Authorization" not in request.headers
    assert REDACTED in response["body"]["string"]


# -- the SSE decoder ---------------------------------------------------------------------------------

sse_lines = st.lists(
    st.one_of(
        st.builds(
            lambda v: f"data: {v}",
            st.text(
                alphabet=st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=20
            ),
        ),
        st.sampled_from(["event: message_start", ": comment", "id: 7", "retry: 10", "", "data"]),
    ),
    max_size=20,
)


@FAST
@given(sse_lines, st.sampled_from(["\n", "\r\n", "\r"]), st.data())
def test_sse_decoder_gives_the_same_events_however_the_bytes_are_split(
    lines: list[str], newline: str, data: st.DataObject
) -> None:
    raw = (newline.join(lines) + newline).encode()
    whole = parse_sse(raw)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=6)))
    decoder = SSEDecoder()
    events = []
    start = 0
    for cut in [*cuts, len(raw)]:
        events += decoder.feed(raw[start:cut])
        start = cut
    events += decoder.close()
    assert tuple(events) == whole.events
    assert whole.complete == (not decoder.pending)


@FAST
@given(st.binary(max_size=200))
def test_sse_decoder_never_raises_on_random_bytes(raw: bytes) -> None:
    stream = parse_sse(raw)
    assert stream.complete or stream.trailing is not None
