"""Matching that survives SDK upgrades, a stable cassette order, and the requests-per-minute limit."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import free_port

from pytest_modelmigrate.cassettes import MatchIgnore
from pytest_modelmigrate.emulator import Emulator
from pytest_modelmigrate.ratelimit import RateLimiter, parse_rpm, provider_of

StartEmulator = Callable[..., Emulator]

QUERY_APP = """
import os, openai

def client(**query):
    return openai.OpenAI(base_url=os.environ["EMU_URL"] + "/v1", api_key="x", max_retries=0,
                         default_query=query or None)

def ask(prompt, **body):
    return client(**json_query()).chat.completions.create(
        model=os.environ["MODEL"], messages=[{"role": "user", "content": prompt}], **body
    ).choices[0].message.content

def json_query():
    import json
    return json.loads(os.environ.get("QUERY", "{}"))
"""

TEST = """
import json, os
import appq

def test_it(model):
    os.environ["MODEL"] = model
    assert appq.ask("hello there", **json.loads(os.environ.get("BODY", "{}")))
"""


def _bodies(path: Path) -> list[str]:
    return [i["request"]["body"] for i in yaml.safe_load(path.read_text())["interactions"]]


def test_an_sdk_that_stops_sending_volatile_query_flags_still_replays(
    pytester: pytest.Pytester, start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """anthropic 2.x dropped ``?beta=true``; Azure moves ``api-version``: neither changes the answer."""
    emulator = start_emulator({"models": {"emu-a": {"default": "hi"}}}, test_q=TEST, appq=QUERY_APP)
    monkeypatch.setenv("QUERY", json.dumps({"beta": "true", "api-version": "2024-10-21"}))
    pytester.runpytest("--models=emu-a", "--record-mode=once").assert_outcomes(passed=1)
    cassette = pytester.path / "cassettes" / "test_q" / "emu-a" / "test_it.yaml"
    assert "beta=true" in cassette.read_text()
    emulator.stop()
    monkeypatch.setenv("QUERY", "{}")  # the upgraded SDK
    pytester.runpytest("--models=emu-a", "--block-network").assert_outcomes(passed=1)
    monkeypatch.setenv("QUERY", json.dumps({"tenant": "b"}))  # a query that may change the answer
    result = pytester.runpytest("--models=emu-a", "--block-network")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*closest recording differs by query*", "*modelmigrate_match_ignore = query:NAME*"]
    )


def test_body_paths_named_in_the_ini_are_left_out_of_matching(
    pytester: pytest.Pytester, start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = start_emulator({"models": {"emu-a": {"default": "hi"}}}, test_q=TEST, appq=QUERY_APP)
    monkeypatch.setenv(
        "BODY", json.dumps({"user": "request-1", "metadata": {"request_id": "r1", "team": "x"}})
    )
    pytester.runpytest("--models=emu-a", "--record-mode=once").assert_outcomes(passed=1)
    emulator.stop()
    monkeypatch.setenv(
        "BODY", json.dumps({"user": "request-2", "metadata": {"request_id": "r2", "team": "x"}})
    )
    missed = pytester.runpytest("--models=emu-a", "--block-network")
    missed.assert_outcomes(failed=1)
    missed.stdout.fnmatch_lines(
        [
            "*closest recording differs by body: the JSON request bodies differ in: metadata, user*",
            "*modelmigrate_match_ignore*",
        ]
    )
    pytester.makeini("[pytest]\nmodelmigrate_match_ignore =\n    body:user\n    body:metadata.request_id\n")
    pytester.runpytest("--models=emu-a", "--block-network").assert_outcomes(passed=1)
    # a field not named still matters
    monkeypatch.setenv(
        "BODY", json.dumps({"user": "request-2", "metadata": {"request_id": "r2", "team": "y"}})
    )
    pytester.runpytest("--models=emu-a", "--block-network").assert_outcomes(failed=1)


def test_a_bad_match_ignore_line_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nmodelmigrate_models = emu-a\nmodelmigrate_match_ignore = header:x-request-id\n"
    )
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*ini modelmigrate_match_ignore: 'header:x-request-id' is not 'query:NAME' or 'body:PATH'*"]
    )


def test_match_ignore_paths_reach_into_lists() -> None:
    ignore = MatchIgnore.parse(["body:messages.*.name", "query:trace"])
    assert {"beta", "api-version", "trace"} <= ignore.query
    assert ignore.body == (("messages", "*", "name"),)


GATHER_TEST = """
import asyncio, os
import openai

PROMPTS = ["alpha", "bravo", "charlie"]

def test_gathered(model):
    async def go():
        client = openai.AsyncOpenAI(base_url=os.environ["EMU_URL"] + "/v1", api_key="x", max_retries=0)
        ask = lambda p: client.chat.completions.create(model=model, messages=[{"role": "user", "content": p}])
        return await asyncio.gather(*(ask(p) for p in PROMPTS))
    assert len(asyncio.run(go())) == 3

def test_in_turn(model):
    client = openai.OpenAI(base_url=os.environ["EMU_URL"] + "/v1", api_key="x", max_retries=0)
    for prompt in ("zulu", "alpha"):
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}])
"""


def _latencies(order: list[str]) -> dict[str, object]:
    rules = [{"match": p, "reply": f"re {p}", "latency_ms": 40 * (i + 1)} for i, p in enumerate(order)]
    return {"models": {"emu-a": {"rules": rules, "default": "ok"}}}


def test_concurrent_calls_are_written_in_a_stable_order_and_sequential_ones_in_turn(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``asyncio.gather`` answers in whatever order the provider finishes: the file must not churn."""
    port = free_port()
    monkeypatch.setenv("EMU_URL", f"http://127.0.0.1:{port}")
    pytester.makepyfile(test_g=GATHER_TEST)
    folder = pytester.path / "cassettes" / "test_g" / "emu-a"
    orders = []
    for finish_first in (["alpha", "bravo", "charlie"], ["charlie", "bravo", "alpha"]):
        with Emulator(_latencies(finish_first), port=port, time_scale=1.0) as emu:
            pytester.runpytest(
                "--models=emu-a", "--record-mode=rewrite", "-p", "no:randomly"
            ).assert_outcomes(passed=2)
            served = [r.prompt for r in emu.requests]
        assert served.count("alpha") == 2
        orders.append((_bodies(folder / "test_gathered.yaml"), _bodies(folder / "test_in_turn.yaml")))
    (gathered_1, in_turn_1), (gathered_2, in_turn_2) = orders
    assert gathered_1 == gathered_2  # the same file order, whichever answer came back first
    assert ["zulu" in b for b in in_turn_1] == [True, False]  # one after the other: in the order made
    assert in_turn_1 == in_turn_2


def test_the_rate_limiter_spaces_requests_per_provider_and_worker() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter({"openai": 120.0, "anthropic": 60.0}, workers=2, clock=lambda: now[0], sleep=sleep)
    assert [limiter.wait("openai") for _ in range(3)] == [0.0, 1.0, 1.0]  # 120/min over 2 workers
    assert limiter.wait("anthropic") == 0.0  # its own budget
    assert limiter.wait("api.example.com") == 0.0  # not limited
    assert limiter.wait("127.0.0.1", "anthropic") == 2.0
    assert limiter.waited == pytest.approx(sum(slept)) == pytest.approx(4.0)


def test_rpm_settings_and_providers() -> None:
    assert parse_rpm(["openai=500, anthropic: 50", "API.example.com=60"]) == {
        "openai": 500.0,
        "anthropic": 50.0,
        "api.example.com": 60.0,
    }
    for bad in ("openai", "openai=0", "openai=fast", "=5", "openai=inf"):
        with pytest.raises(ValueError, match="PROVIDER=REQUESTS_PER_MINUTE"):
            parse_rpm([bad])
    assert provider_of("api.anthropic.com", "/v1/messages") == "anthropic"
    assert provider_of("127.0.0.1", "/v1/messages") == "anthropic"
    assert provider_of("127.0.0.1", "/v1/chat/completions") == "openai"
    assert provider_of("x.openai.azure.com", "/openai/deployments/d/chat/completions") == "openai"


def test_recording_waits_for_the_rpm_limit(pytester: pytest.Pytester, start_emulator: StartEmulator) -> None:
    emulator = start_emulator(
        {"models": {"emu-a": {"default": "hi"}}},
        test_r="""
        import app

        def test_three(model):
            for i in range(3):
                app.chat(model, f"call {i}")
        """,
    )
    pytester.makeconftest(
        """
        import json

        asked = []

        def pytest_sessionstart(session):
            limiter = session.config.pluginmanager.get_plugin("modelmigrate-runner").rate_limiter
            wait = limiter.wait
            limiter.wait = lambda *keys: asked.append(list(keys)) or wait(*keys)

        def pytest_sessionfinish(session):
            runner = session.config.pluginmanager.get_plugin("modelmigrate-runner")
            with open("waited.json", "w") as out:
                json.dump({"asked": asked, "rpm": runner.rate_limiter.rpm}, out)
        """
    )
    pytester.makeini("[pytest]\nmodelmigrate_record_rpm = openai=1200\n")
    pytester.runpytest("--models=emu-a", "--record-mode=once").assert_outcomes(passed=1)
    assert len(emulator.requests) == 3
    seen = json.loads((pytester.path / "waited.json").read_text())
    assert seen["rpm"] == {"openai": 1200.0}
    # every request that reached the emulator waited its turn, under its host and its provider
    # (how long is the limiter's unit test's: a loaded machine may need no wait at all)
    assert [keys[-1] for keys in seen["asked"]] == ["openai"] * 3
    pytester.runpytest("--models=emu-a").assert_outcomes(passed=1)  # replay: nothing is sent
    assert json.loads((pytester.path / "waited.json").read_text())["asked"] == []


def test_a_body_kept_as_json_data_matches_the_same_json_sent_as_bytes() -> None:
    """vcrpy's aiohttp stub keeps a ``json=`` argument as the dict it was given, and YAML gives it
    back with its keys sorted: it must match whatever key order it is sent in, and bytes too."""
    from types import SimpleNamespace

    from pytest_modelmigrate import cassettes

    sent = SimpleNamespace(body={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    loaded = SimpleNamespace(body={"messages": [{"content": "hi", "role": "user"}], "model": "m"})
    raw = SimpleNamespace(body=json.dumps(sent.body).encode())
    cassettes.body_matcher(sent, loaded)
    cassettes.body_matcher(raw, loaded)
    with pytest.raises(AssertionError):
        cassettes.body_matcher(sent, SimpleNamespace(body={"model": "other", "messages": []}))
