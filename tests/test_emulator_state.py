"""Persistent draw counters (``state_file`` / ``--state``) and scripted ``retry_after`` headers."""

from __future__ import annotations

import hashlib
import io
import json
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from pytest_modelmigrate.cli import build_parser
from pytest_modelmigrate.emulator import Emulator, Script, ScriptError
from pytest_modelmigrate.emulator import engine as engine_module
from pytest_modelmigrate.emulator.command import run
from pytest_modelmigrate.emulator.engine import STATE_FORMAT, STATE_VERSION, Engine, state_key
from pytest_modelmigrate.emulator.exchange import Request

REPO = Path(__file__).resolve().parent.parent

# The reply to "count" is the request counter itself: a sequence answers the k-th request with item k.
COUNTING: dict[str, Any] = {
    "models": {"emu-a": {"rules": [{"match": "count", "sequence": [str(i) for i in range(500)]}]}}
}
COIN: dict[str, Any] = {
    "seed": 3,
    "models": {
        "emu-a": {
            "rules": [
                {
                    "match": "flip",
                    "choices": [{"weight": 3, "reply": "heads"}, {"weight": 1, "reply": "tails"}],
                }
            ]
        }
    },
}


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def draw(engine: Engine, prompt: str = "count", model: str = "emu-a") -> str:
    reply = engine.resolve(Request(api="chat", model=model, prompt=prompt, last_user=prompt))
    assert reply.text is not None
    return reply.text


def client(emu: Emulator, retries: int = 0) -> openai.OpenAI:
    return openai.OpenAI(base_url=emu.url + "/v1", api_key="x", max_retries=retries)


def ask(oai: openai.OpenAI, prompt: str = "count") -> str:
    reply = oai.chat.completions.create(model="emu-a", messages=user(prompt))
    return reply.choices[0].message.content or ""


def counters(path: Path) -> dict[str, int]:
    data = json.loads(path.read_text())
    assert (data["format"], data["version"]) == (STATE_FORMAT, STATE_VERSION)
    result: dict[str, int] = data["counters"]
    return result


# -- the file and its sharing ---------------------------------------------------------------------


def test_state_file_holds_sha256_keyed_counters(tmp_path: Path) -> None:
    state = tmp_path / "nested" / "state.json"  # the folder is created
    engine = Engine(Script.from_dict(COUNTING), state)
    assert [draw(engine) for _ in range(3)] == ["0", "1", "2"]
    draw(engine, prompt="other prompt")
    key = hashlib.sha256(b"emu-a\x00count").hexdigest()
    assert state_key("emu-a", "count") == key
    assert counters(state) == {key: 3, hashlib.sha256(b"emu-a\x00other prompt").hexdigest(): 1}
    assert engine.state_error is None
    assert sorted(p.name for p in state.parent.iterdir()) == [
        "state.json",
        "state.json.lock",
    ]  # no temp files


def test_two_engines_sharing_a_file_never_repeat_a_counter(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    one, two = Engine(Script.from_dict(COUNTING), state), Engine(Script.from_dict(COUNTING), state)
    assert [draw(one if i % 2 else two) for i in range(10)] == [str(i) for i in range(10)]

    seen: list[str] = []
    seen_lock = threading.Lock()

    def hammer(engine: Engine) -> None:
        mine = [draw(engine) for _ in range(40)]
        with seen_lock:
            seen.extend(mine)

    threads = [threading.Thread(target=hammer, args=(e,)) for e in (one, two, one, two)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(int(s) for s in seen) == list(range(10, 170))
    assert counters(state) == {state_key("emu-a", "count"): 170}


def test_without_flock_threads_of_one_process_are_still_kept_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module.sys, "platform", "win32")  # the path taken where fcntl is missing
    state = tmp_path / "state.json"
    engines = [Engine(Script.from_dict(COUNTING), state) for _ in range(3)]
    seen: list[str] = []
    seen_lock = threading.Lock()

    def hammer(engine: Engine) -> None:
        mine = [draw(engine) for _ in range(30)]
        with seen_lock:
            seen.extend(mine)

    threads = [threading.Thread(target=hammer, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(int(s) for s in seen) == list(range(90))
    assert not (tmp_path / "state.json.lock").exists()


def test_two_emulators_over_http_share_one_sequence(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with (
        Emulator(COUNTING, time_scale=0, state_file=state) as first,
        Emulator(COUNTING, time_scale=0, state_file=str(state)) as second,
    ):
        assert first.url != second.url
        a, b = client(first), client(second)
        assert [ask(a if i % 3 else b) for i in range(12)] == [str(i) for i in range(12)]
        assert len(first.requests) + len(second.requests) == 12
    assert counters(state) == {state_key("emu-a", "count"): 12}


# A worker: its own emulator on its own port, asked over real HTTP (urllib: importing openai in
# each child would cost most of a second).
CHILD = """
import json, sys, urllib.request
from pytest_modelmigrate.emulator import Emulator

script = json.loads(sys.argv[2])
body = json.dumps({"model": "emu-a", "messages": [{"role": "user", "content": "count"}]}).encode()
with Emulator(script, time_scale=0, state_file=sys.argv[1]) as emu:
    ask = urllib.request.Request(
        emu.url + "/v1/chat/completions", data=body, headers={"Content-Type": "application/json"}
    )
    print("ready", flush=True)
    sys.stdin.readline()  # start together, so the two processes really race
    got = []
    for _ in range(int(sys.argv[3])):
        with urllib.request.urlopen(ask, timeout=10) as response:
            got.append(json.loads(response.read())["choices"][0]["message"]["content"])
print(json.dumps(got), flush=True)
"""


def test_two_processes_draw_disjoint_counters_concurrently(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    per_process = 60
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(state), json.dumps(COUNTING), str(per_process)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, _ = proc.communicate(timeout=30)
            assert proc.returncode == 0
            results.append([int(x) for x in json.loads(out)])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for got in results:
        assert got == sorted(got)  # each process sees its own draws in increasing order
    assert sorted(results[0] + results[1]) == list(range(2 * per_process))
    assert counters(state) == {state_key("emu-a", "count"): 2 * per_process}


# -- sessions -------------------------------------------------------------------------------------


def flips(emu: Emulator, n: int) -> list[str]:
    oai = client(emu)
    return [ask(oai, "flip a coin") for _ in range(n)]


def test_a_later_session_draws_new_samples_reproducibly(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with Emulator(COIN, time_scale=0, state_file=state) as emu:
        first = flips(emu, 30)
    with Emulator(COIN, time_scale=0, state_file=state) as emu:
        second = flips(emu, 30)
    with Emulator(COIN, time_scale=0) as emu:  # no state file: one long session
        one_session = flips(emu, 60)
    with Emulator(COIN, time_scale=0) as emu:  # no state file: the second session repeats the first
        assert flips(emu, 30) == first
    assert first + second == one_session
    assert second != first
    assert set(one_session) == {"heads", "tails"}

    state.unlink()  # deleting the file starts over, with the same draws
    with Emulator(COIN, time_scale=0, state_file=state) as emu:
        assert flips(emu, 30) == first


def test_reset_clears_the_file_for_every_emulator_using_it(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with (
        Emulator(COUNTING, time_scale=0, state_file=state) as first,
        Emulator(COUNTING, time_scale=0, state_file=state) as second,
    ):
        a, b = client(first), client(second)
        assert [ask(a) for _ in range(5)] == ["0", "1", "2", "3", "4"]
        first.reset()
        assert counters(state) == {}
        assert first.requests == []
        assert ask(a) == "0"
        assert ask(b) == "1"  # the file, not each emulator's memory, holds the count
    engine = Engine(Script.from_dict(COUNTING), state)
    assert draw(engine) == "2"
    engine.reset()
    assert counters(state) == {}
    assert draw(engine) == "0"


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"",
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        b"[" * 100_000,
        json.dumps({"format": STATE_FORMAT, "version": 99, "counters": {}}).encode(),
        json.dumps({"format": "something else", "version": STATE_VERSION, "counters": {}}).encode(),
        json.dumps({"format": STATE_FORMAT, "version": STATE_VERSION, "counters": [1]}).encode(),
    ],
    ids=["bad-json", "empty", "binary", "a-list", "deep", "future-version", "other-format", "bad-counters"],
)
def test_a_corrupt_state_file_starts_from_zero_and_is_rewritten(tmp_path: Path, content: bytes) -> None:
    state = tmp_path / "state.json"
    state.write_bytes(content)
    with Emulator(COUNTING, time_scale=0, state_file=state) as emu:
        oai = client(emu)
        assert [ask(oai) for _ in range(3)] == ["0", "1", "2"]
        assert emu._engine.state_error is None
    assert counters(state) == {state_key("emu-a", "count"): 3}


def test_bad_counter_values_count_as_zero_and_good_ones_are_kept(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    key, other, third = state_key("emu-a", "count"), state_key("emu-a", "x"), state_key("emu-b", "y")
    state.write_text(
        json.dumps(
            {"format": STATE_FORMAT, "version": STATE_VERSION, "counters": {key: -4, other: 7, third: True}}
        )
    )
    engine = Engine(Script.from_dict(COUNTING), state)
    assert draw(engine) == "0"
    assert counters(state) == {key: 1, other: 7}


@pytest.mark.parametrize("kind", ["a-directory", "under-a-file"])
def test_an_unusable_state_file_falls_back_to_memory(tmp_path: Path, kind: str) -> None:
    if kind == "a-directory":
        state = tmp_path / "state.json"
        state.mkdir()
    else:
        (tmp_path / "file").write_text("x")
        state = tmp_path / "file" / "state.json"
    log = io.StringIO()
    with Emulator(COUNTING, time_scale=0, state_file=state, log=log) as emu:
        oai = client(emu)
        assert [ask(oai) for _ in range(4)] == ["0", "1", "2", "3"]
        assert emu._engine.state_error is not None
        assert str(state) in emu._engine.state_error
        emu.reset()  # cannot clear the file either, and does not fail
        assert ask(oai) == "0"
    lines = log.getvalue().splitlines()
    assert sum("emulator state file:" in line for line in lines) == 1  # reported once, not per request
    assert sum("-> 200" in line for line in lines) == 5


def test_the_command_takes_a_state_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = tmp_path / "s.json"
    script.write_text(json.dumps(COUNTING))
    state = tmp_path / "state.json"
    argv = ["emulator", "--port", str(port), "--script", str(script), "--state", str(state)]
    args = build_parser().parse_args([*argv, "--time-scale", "0", "--quiet"])
    assert args.state == str(state)

    def serve_once(n: int) -> list[str]:
        stop = threading.Event()
        codes: list[int] = []
        thread = threading.Thread(target=lambda: codes.append(run(args, stop=stop)))
        thread.start()
        try:
            oai = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
            deadline = time.monotonic() + 5
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)
            return [ask(oai) for _ in range(n)]
        finally:
            stop.set()
            thread.join(timeout=10)
            assert codes == [0]

    assert serve_once(3) == ["0", "1", "2"]
    assert serve_once(2) == ["3", "4"]  # a second run of the command continues
    assert counters(state) == {state_key("emu-a", "count"): 5}
    assert "Emulator listening on" in capsys.readouterr().out


# -- retry_after ----------------------------------------------------------------------------------

RETRY: dict[str, Any] = {
    "models": {
        "emu-a": {
            "rules": [
                {"match": "slow down", "error": {"status": 429, "retry_after": 1.5}},
                {"match": "whole", "error": {"status": 503, "message": "busy", "retry_after": 2}},
                {"match": "plain", "error": 429},
                {"match": "flaky", "sequence": [{"error": {"status": 429, "retry_after": 0.05}}, "ok"]},
            ]
        }
    }
}


def test_a_scripted_429_sends_retry_after_headers() -> None:
    with Emulator(RETRY, time_scale=0) as emu:
        oai = client(emu)
        with pytest.raises(openai.RateLimitError) as err:
            ask(oai, "please slow down")
        headers = err.value.response.headers
        assert (headers["retry-after"], headers["retry-after-ms"]) == ("2", "1500")
        assert err.value.body["type"] == "rate_limit_error"
        with pytest.raises(openai.InternalServerError) as busy:
            ask(oai, "whole")
        assert busy.value.status_code == 503
        assert (
            busy.value.response.headers["retry-after"],
            busy.value.response.headers["retry-after-ms"],
        ) == (
            "2",
            "2000",
        )
        with pytest.raises(openai.RateLimitError) as plain:
            ask(oai, "plain")
        assert "retry-after" not in plain.value.response.headers
        assert "retry-after-ms" not in plain.value.response.headers

        claude = anthropic.Anthropic(base_url=emu.url, api_key="x", max_retries=0)
        with pytest.raises(anthropic.RateLimitError) as ant:
            claude.messages.create(model="emu-a", max_tokens=10, messages=user("slow down"))
        assert (ant.value.response.headers["retry-after"], ant.value.response.headers["retry-after-ms"]) == (
            "2",
            "1500",
        )
        assert ant.value.body["error"]["type"] == "rate_limit_error"


def test_the_sdk_waits_the_scripted_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    import openai._base_client as base_client

    slept: list[float] = []
    monkeypatch.setattr(base_client.time, "sleep", slept.append)  # what the SDK asks to wait, no clock
    with Emulator(RETRY, time_scale=0) as emu:
        assert ask(client(emu, retries=1), "flaky") == "ok"
        assert [r.status for r in emu.requests] == [429, 200]
    # 50 ms from retry-after-ms; without it the SDK's own back-off waits at least 375 ms.
    assert slept == [pytest.approx(0.05)]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "models.m.default.error.retry_after: must be between 0 and 86400, got -1"),
        ("soon", "models.m.default.error.retry_after: expected a number, got a string 'soon'"),
        (True, "models.m.default.error.retry_after: expected a number, got a boolean"),
    ],
)
def test_retry_after_is_validated(value: object, message: str) -> None:
    with pytest.raises(ScriptError, match="^" + re.escape("<dict>: " + message)):
        Script.from_dict({"models": {"m": {"default": {"error": {"status": 429, "retry_after": value}}}}})
