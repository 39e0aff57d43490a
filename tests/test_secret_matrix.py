"""The secret matrix: every kind of key × every place the plugin writes or prints.

One story per key format (an OpenAI, Anthropic and Google key in their usual variables, a value
held only in a variable named in ``modelmigrate_secret_env``, an ``AZURE_OPENAI_KEY``): the real
SDKs send the key (header and ``?key=``) to the emulator, whose replies echo it (a chat reply, three
streams that split it into one piece per event, a 401 error body) and a 429 that names the
account. The run records, replays with the key still set (plus a test added since, which misses),
then replays as CI does, with the variable unset. After each run no place holds the key, a
14-character piece of it, its URL-encoded form, or the account ids: the cassettes, the parse
cache, the JSON, Markdown, HTML, JUnit XML and baseline files, the syrupy snapshots and the
terminal (failure text and captured output included).
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_modelmigrate.cassettes import AtomicPersister, ParseCache
from pytest_modelmigrate.providers.sse import data_spans, parse_sse
from pytest_modelmigrate.scrub import (
    REDACTED,
    Scrubber,
    SecretInCassetteError,
    find_live_keys,
    secret_values_from_env,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_modelmigrate.emulator import Emulator

GOOGLE_KEY = "AIzaSyB7-kQ2vX9mL4pR8tW1zN6cJ3hF0dG5a_E"
KEYS = {
    "openai": ("OPENAI_API_KEY", "sk-proj-N4rT8vQ2-xL6mW9zK3pB7cY1_dF5hJ0gS"),
    "anthropic": ("ANTHROPIC_API_KEY", "sk-ant-api03-Vb7Kq2Lx9-Rt4Mz8Wn1Yp6_Hs3Jd0Fg5Ce2Ua7"),
    "google": ("GEMINI_API_KEY", GOOGLE_KEY),
    "secret-env": ("LLM_CREDS", "corp-cred+Zk8Pq3/Wm5Ls9=Xt2Vn7Rb4"),
    "azure": ("AZURE_OPENAI_KEY", "4f1c9a7e2b8d6053e1a9c7f4b2d8e6a0"),
}
# Keys shaped like a live key (LIVE_KEY_PATTERNS) are masked even where no variable names them.
SHAPED = {"openai", "anthropic", "google"}
ORG_ID = "org-Hq7Zt2Wm9Lp4Xv8Rk3Nc6Bd1"
PROJECT_ID = "proj_Yf5Gs0Jt8Ke3Mu6Pw2Qa9Vb4"
PIECE = 14  # the prefix length the brief names; here every 14-character window of the key

LEAKY = """
import os

import anthropic
import openai
import pytest

URL = os.environ["EMU_URL"]
KEY = os.environ.get(os.environ["KEY_VAR"], "no-key-in-ci")


def oai():
    return openai.OpenAI(base_url=URL + "/v1", api_key=KEY, max_retries=0, default_query={"key": KEY})


def claude():
    return anthropic.Anthropic(base_url=URL, api_key=KEY, max_retries=0, default_query={"key": KEY})


def user(text):
    return [{"role": "user", "content": text}]


def check(reply, snapshot_model):
    print("the model said:", reply)
    assert reply == snapshot_model
    assert "refund" in reply, "unexpected reply: " + reply


def test_echo(model, snapshot_model):
    r = oai().chat.completions.create(model=model, messages=user("echo"))
    check(r.choices[0].message.content, snapshot_model)


def test_chat_stream(model, snapshot_model):
    chunks = oai().chat.completions.create(model=model, messages=user("echo"), stream=True)
    check("".join(c.choices[0].delta.content or "" for c in chunks if c.choices), snapshot_model)


def test_responses_stream(model, snapshot_model):
    events = oai().responses.create(model=model, input="echo", stream=True)
    check("".join(e.delta for e in events if e.type == "response.output_text.delta"), snapshot_model)


def test_claude_stream(model, snapshot_model):
    with claude().messages.stream(model=model, max_tokens=200, messages=user("echo")) as stream:
        check(stream.get_final_message().content[0].text, snapshot_model)


def test_unauthorized(model):
    oai().chat.completions.create(model=model, messages=user("unauthorized"))


@pytest.mark.record_provider_errors  # the 429 is what this test is about: keep it
def test_rate_limited(model):
    oai().chat.completions.create(model=model, messages=user("rate limit"))
"""

ADDED_LATER = """
import os, openai

def test_added_later(model):
    key = os.environ.get(os.environ["KEY_VAR"], "no-key-in-ci")
    client = openai.OpenAI(base_url=os.environ["EMU_URL"] + "/v1", api_key=key, max_retries=0,
                           default_query={"key": key})
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "new prompt"}])
"""

REPORTS = (
    "--migration-json=out/run.json",
    "--migration-markdown=out/run.md",
    "--migration-html=out/run.html",
    "--migration-baseline-save=out/baseline.json",
    "--junitxml=out/junit.xml",
    "-rfE",
)
ECHO = "Your key <redacted> was accepted"


def _script(key: str) -> dict[str, Any]:
    return {
        "models": {
            "emu-a": {
                "rules": [
                    {
                        "match": "unauthorized",
                        "error": {"status": 401, "message": f"Incorrect API key provided: {key}."},
                    },
                    {
                        "match": "rate limit",
                        "error": {
                            "status": 429,
                            "message": f"Rate limit reached in organization {ORG_ID} for project {PROJECT_ID}",
                        },
                    },
                    {"match": "echo", "reply": f"Your key {key} was accepted"},
                ]
            }
        }
    }


def _forms(key: str) -> set[str]:
    windows = {key[i : i + PIECE] for i in range(len(key) - PIECE + 1)}
    return windows | {key, quote(key, safe=""), quote_plus(key), ORG_ID, PROJECT_ID}


def _places(root: Path, result: pytest.RunResult) -> dict[str, str]:
    """Everything the run wrote (but the test code) and printed."""
    places = {"terminal": "\n".join([*result.outlines, *result.errlines])}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix not in (".py", ".pyc"):
            places[path.relative_to(root).as_posix()] = path.read_text(errors="replace")
    return places


def _leaks(places: dict[str, str], key: str, skip: str = "") -> list[str]:
    return sorted(
        f"{place} holds {form[:12]}…"
        for place, text in places.items()
        if place != skip
        for form in _forms(key)
        if form in text
    )


def _assert_written(places: dict[str, str], *, cached: bool) -> None:
    """No vacuous pass: every place exists and shows the redacted echo."""
    names = set(places)
    for expected in ("out/run.json", "out/run.md", "out/run.html", "out/junit.xml", "out/baseline.json"):
        assert expected in names, sorted(names)
    cassettes = [n for n in names if n.startswith("cassettes/")]
    snapshots = [n for n in names if n.startswith("__snapshots__/")]
    assert len(cassettes) == 6, cassettes
    assert len(snapshots) == 4, snapshots
    assert any(n.startswith(".pytest_cache/d/modelmigrate-cassettes/") for n in names) == cached
    for name in ("terminal", "out/run.json", *snapshots):
        assert ECHO in places[name], name
    assert ECHO.replace("<", "&lt;").replace(">", "&gt;") in places["out/junit.xml"]


@pytest.mark.parametrize("kind", list(KEYS))
def test_secret_matrix(
    kind: str,
    pytester: pytest.Pytester,
    start_emulator: Callable[..., Emulator],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    variable, key = KEYS[kind]
    # these one-call cassettes are below the parse cache's size threshold: cache them anyway, so
    # what the cache holds is checked too
    monkeypatch.setattr(ParseCache, "MIN_CHARS", 0)
    for name in list(os.environ):
        if name.endswith(("_API_KEY", "_KEY", "_TOKEN")) or name == "LLM_CREDS":
            monkeypatch.delenv(name)
    monkeypatch.setenv(variable, key)
    monkeypatch.setenv("KEY_VAR", variable)
    start_emulator(_script(key), test_leaks=LEAKY)
    pytester.makeini("[pytest]\nmodelmigrate_secret_env = LLM_CREDS\n")

    # 1. record, the key set
    recorded = pytester.runpytest("--models=emu-a", "--record-mode=once", "--snapshot-update", *REPORTS)
    recorded.assert_outcomes(failed=6)
    places = _places(pytester.path, recorded)
    _assert_written(places, cached=False)
    assert "Incorrect API key provided: <redacted>" in places["terminal"]
    assert "Rate limit reached in organization <redacted> for project <redacted>" in places["out/run.json"]
    assert _leaks(places, key) == []

    # 2. replay with the key still set (a developer's machine), and a test added since: a miss
    pytester.makepyfile(test_added=ADDED_LATER)
    local = pytester.runpytest("--models=emu-a", "--record-mode=none", *REPORTS)
    local.assert_outcomes(failed=7)
    local.stdout.fnmatch_lines(["*No recorded response for POST http://127.0.0.1:*/v1/chat/completions*"])
    places = _places(pytester.path, local)
    _assert_written(places, cached=True)
    assert _leaks(places, key) == []

    # 3. replay as CI does: the variable unset. A shaped key also stays out of what a replay
    #    shows when a cassette still holds it (one written by hand or by an older version).
    monkeypatch.delenv(variable)
    (pytester.path / "test_added.py").unlink()
    echo = pytester.path / "cassettes" / "test_leaks" / "emu-a" / "test_echo.yaml"
    if kind in SHAPED:
        echo.write_text(echo.read_text().replace(REDACTED, key))
    ci = pytester.runpytest("--models=emu-a", "--record-mode=none", *REPORTS)
    ci.assert_outcomes(failed=6)
    ci.stdout.fnmatch_lines(
        [f"FAILED test_leaks.py::test_echo[[]emu-a[]] - AssertionError: unexpected reply: {ECHO}"]
    )
    places = _places(pytester.path, ci)
    _assert_written(places, cached=True)
    assert _leaks(places, key, skip=f"cassettes/test_leaks/emu-a/{echo.name}") == []


# -- the parts the matrix relies on, one rule each ------------------------------------------------

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OPENAI_KEY = KEYS["openai"][1]
STREAM_EVENT = {
    "chat": lambda piece: (
        'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":'
        + json.dumps(piece)
        + '},"finish_reason":null}]}\n\n'
    ),
    "responses": lambda piece: (
        "event: response.output_text.delta\ndata: "
        + json.dumps({"type": "response.output_text.delta", "output_index": 0, "delta": piece})
        + "\n\n"
    ),
    "anthropic": lambda piece: (
        "event: content_block_delta\r\ndata: "
        + json.dumps(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
        )
        + "\r\n\r\n"
    ),
}


def _reassemble(body: str) -> str:
    text = []
    for event in parse_sse(body).events:
        data = json.loads(event.data) if event.data.startswith("{") else {}
        delta = data.get("delta") or (data.get("choices") or [{}])[0].get("delta", {})
        text.append(delta if isinstance(delta, str) else delta.get("content") or delta.get("text") or "")
    return "".join(text)


def _split(text: str, cuts: list[int]) -> list[str]:
    points = [0, *sorted({min(cut, len(text)) for cut in cuts}), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(points)]


@FAST
@given(
    st.sampled_from(sorted(STREAM_EVENT)),
    st.text(alphabet=" .,abc", max_size=12),
    st.text(alphabet=" .,xyz", max_size=12),
    st.lists(st.integers(0, 80), max_size=12),
)
def test_a_key_split_across_stream_events_is_redacted_whatever_the_split(
    api: str, before: str, after: str, cuts: list[int]
) -> None:
    """Every chunk is rewritten so that the stream replays exactly the redacted reply (what a
    snapshot of the live reply holds), and no piece of the key stays in any chunk."""
    reply = f"{before} {OPENAI_KEY} {after}"
    body = "".join(map(STREAM_EVENT[api], _split(reply, cuts))) + "data: [DONE]\n\n"
    scrubber = Scrubber.from_settings(environ={"OPENAI_API_KEY": OPENAI_KEY})
    redacted, found = scrubber.redact_stream(body)
    assert found == []
    assert _reassemble(redacted) == scrubber.scrub_text(reply) == f"{before} {REDACTED} {after}"
    assert not any(window in redacted for window in _forms(OPENAI_KEY) - {ORG_ID, PROJECT_ID})
    # unknown to the scrubber, the key is found in the reassembled text (the write is refused),
    # unless one piece alone looks like a key: the scan of the whole file refuses that one
    _, found = Scrubber().redact_stream(body)
    one_piece = any(find_live_keys(piece) for piece in _split(reply, cuts))
    assert found == ([] if one_piece else ["sk-proj-N4…"])


@FAST
@given(
    st.lists(
        st.sampled_from(["data: a", "data:b", "data", "data:  c", "event: e", ": c", "", "x"]), max_size=12
    ),
    st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_data_spans_locate_exactly_the_data_parse_sse_decodes(lines: list[str], newline: str) -> None:
    text = newline.join(lines) + newline
    assert ["\n".join(text[a:b] for a, b in spans) for spans in data_spans(text)] == [
        event.data for event in parse_sse(text).events
    ]


def test_a_key_only_the_reassembled_stream_spells_refuses_the_write(tmp_path: Path) -> None:
    from vcr.request import Request
    from vcr.serializers import yamlserializer

    path = tmp_path / "c.yaml"
    path.write_text("old cassette\n")
    pieces = ["Your key ", OPENAI_KEY[:12], OPENAI_KEY[12:30], OPENAI_KEY[30:], " was accepted"]
    response = {
        "status": {"code": 200, "message": "OK"},
        "headers": {"Content-Type": ["text/event-stream"]},
        "body": {"string": "".join(map(STREAM_EVENT["chat"], pieces)) + "data: [DONE]\n\n"},
    }
    request = Request("POST", "http://h/v1/chat/completions", b"{}", {})
    AtomicPersister.scrubber = Scrubber.from_settings(environ={})
    try:
        with pytest.raises(SecretInCassetteError) as raised:
            AtomicPersister.save_cassette(
                path, {"requests": [request], "responses": [response]}, yamlserializer
            )
        assert path.read_text() == "old cassette\n"
        assert str(raised.value).startswith(
            f"refusing to write {path}: the event stream of interaction 0 spells out 1 string(s) that "
            "look like a live API key (sk-proj-N4…) across its chunks"
        )
        # known (its variable set, or named in modelmigrate_secret_env), it is redacted in the chunks
        AtomicPersister.scrubber = Scrubber.from_settings(
            environ={"LLM_CREDS": OPENAI_KEY}, extra_variables=["LLM_CREDS"]
        )
        AtomicPersister.save_cassette(path, {"requests": [request], "responses": [response]}, yamlserializer)
    finally:
        AtomicPersister.scrubber = None
    text = path.read_text()
    assert OPENAI_KEY[:12] not in text and OPENAI_KEY[30:] not in text and "<redacted>" in text


def test_form_and_gzip_request_bodies_are_scrubbed_and_still_match() -> None:
    from vcr.request import Request

    from pytest_modelmigrate.cassettes import _canonical_body

    secret = KEYS["secret-env"][1]  # holds + / =
    scrubber = Scrubber.from_settings(environ={"LLM_CREDS": secret}, extra_variables=["LLM_CREDS"])
    lower_hex = re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(secret, safe=""))
    form = "grant=client&api_key=anything&assertion=" + lower_hex
    filtered = scrubber.request(
        Request(
            "POST", "http://h/token", form.encode(), {"Content-Type": "application/x-www-form-urlencoded"}
        )
    )
    assert filtered.body == b"grant=client&api_key=%3Credacted%3E&assertion=%3Credacted%3E"

    def gzipped(mtime: int) -> Any:
        body = gzip.compress(json.dumps({"input": f"key {secret}"}).encode(), mtime=mtime)
        return Request("POST", "http://h/v1/embeddings", body, {"Content-Encoding": "gzip"})

    recorded, replayed = scrubber.request(gzipped(1)), scrubber.request(gzipped(2))
    assert json.loads(recorded.body) == {"input": "key <redacted>"}  # stored readable: the scan sees it
    assert "Content-Encoding" not in recorded.headers
    assert _canonical_body(recorded) == _canonical_body(replayed)  # gzip's timestamp does not matter


def test_the_request_filter_masks_known_values_only_so_replay_matches_and_the_scan_decides() -> None:
    """What is matched on replay (URL, body) must come out of the filter the same at record and
    at replay. Known values depend on the environment, as before; key-shaped strings are not
    masked by the filter (the scan refuses to write them), only in what the plugin shows."""
    from vcr.request import Request

    from pytest_modelmigrate.cassettes import _canonical_body

    fake = "sk-proj-" + "Fx9" * 10  # a key-shaped test fixture no variable holds
    body = json.dumps({"messages": [{"role": "user", "content": f"is {fake} a key?"}]}).encode()
    record, replay = Scrubber.from_settings(environ={}), Scrubber.from_settings(environ={})
    stored = record.request(Request("POST", "http://h/v1/chat/completions?key=a", body, {}))
    live = replay.request(Request("POST", "http://h/v1/chat/completions?key=b", body, {}))
    assert _canonical_body(stored) == _canonical_body(live) and stored.uri == live.uri
    assert fake in stored.body.decode() and find_live_keys(stored.body.decode())
    assert record.scrub_text(f"is {fake} a key? {ORG_ID}") == "is <redacted> a key? <redacted>"


@pytest.mark.parametrize(
    ("where", "name", "value", "secret"),
    [
        ("header", "Ocp-Apim-Subscription-Key", "abc", True),
        ("header", "Helicone-Auth", "Bearer abc", True),
        ("header", "cf-aig-authorization", "Bearer abc", True),
        ("header", "x-portkey-api-key", "abc", True),
        ("header", "X-Amz-Security-Token", "abc", True),
        ("header", "x-goog-api-key", "abc", True),
        (
            "header",
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20260101/us-east-1/bedrock",
            True,
        ),
        ("header", "x-request-id", "abc", False),
        ("query", "subscription-key", "abc", True),
        ("query", "apikey", "abc", True),
        ("query", "KEY", "abc", True),
        ("query", "X-Amz-Signature", "abc", True),
        ("query", "page", "abc", False),
        ("variable", "AZURE_OPENAI_KEY", "4f1c9a7e2b8d6053", True),
        ("variable", "AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", True),
        ("variable", "MY_SERVICE_KEY", "q8Xz2Lm4Pv7Rt1Ws", True),
        ("variable", "SSH_AUTH_SOCK", "/tmp/ssh-XXXX1234/agent.99", False),
        ("variable", "DEPLOY_KEY", "/home/ci/.ssh/deploy_key2", False),  # a path
        ("variable", "SORT_KEY", "created_at_descending", False),  # no digit: a word
        ("variable", "PRIMARY_KEY", "id", False),  # too short
    ],
)
def test_credential_names(where: str, name: str, value: str, secret: bool) -> None:
    from vcr.request import Request

    if where == "variable":
        assert (value in secret_values_from_env({name: value})) == secret
        return
    scrubber = Scrubber.from_settings(environ={})
    if where == "header":
        filtered = scrubber.request(Request("GET", "http://h/v1/models", None, {name: value}))
        assert (name not in filtered.headers) == secret
    else:
        filtered = scrubber.request(Request("GET", f"http://h/v1/models?{name}={value}", None, {}))
        assert (f"{name}=" not in filtered.uri) == secret


def test_the_parse_cache_keeps_nothing_a_cassette_could_not(tmp_path: Path) -> None:
    from vcr.serializers import yamlserializer

    cache = tmp_path / "cache"
    cache.mkdir()
    cassette = tmp_path / "c.yaml"

    def cassette_text(reply: str, content_type: str = "application/json") -> str:
        return (
            "interactions:\n- request: {body: '', headers: {}, method: POST, uri: 'http://h/v1/chat/completions'}\n"
            f"  response:\n    body: {{string: {json.dumps(reply)}}}\n"
            f"    headers: {{Content-Type: [{content_type}]}}\n    status: {{code: 200, message: OK}}\nversion: 1\n"
        )

    def load(text: str) -> list[Path]:
        ParseCache(cache, cassette, yamlserializer, Scrubber.from_settings(environ={})).deserialize(text)
        return list(cache.iterdir())

    assert len(load(cassette_text("a clean reply"))) == 1
    # a key-shaped string (edited by hand, an older version): not cached, and the old entry goes
    assert load(cassette_text(f"your key {OPENAI_KEY}")) == []
    split = "".join(map(STREAM_EVENT["chat"], [OPENAI_KEY[:12], OPENAI_KEY[12:]])) + "data: [DONE]\n\n"
    assert load(cassette_text(split, "text/event-stream")) == []
    assert len(load(cassette_text(split.replace("sk-proj-", "sk proj "), "text/event-stream"))) == 1
