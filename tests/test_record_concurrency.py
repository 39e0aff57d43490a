"""``--record-concurrency``: new samples are drawn at once in threads, then run in order from the draws.

Each test drives a pytester project through the real openai SDK against the emulator, then
replays the cassette offline: the recording's outcomes must be those the replay gives.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_recording_draws import _cassette, _load, _meta, _replies

from pytest_modelmigrate.emulator import Emulator

MODELS = "--models=emu-a,emu-b"


def _statuses(path: Path) -> list[int]:
    return [i["response"]["status"]["code"] for i in _load(path)["interactions"]]


def _run(project: pytest.Pytester, name: str) -> dict[str, Any]:
    run: dict[str, Any] = json.loads((project.path / name).read_text())
    return run


def _summary(project: pytest.Pytester, name: str) -> dict[str, Any]:
    """What a recording and its replay must agree on: per-sample outcomes, checks, the gate."""
    run = _run(project, name)
    return {
        "outcomes": {
            o["nodeid"]: (o["outcome"], o["samples"], len(o.get("checks") or [])) for o in run["outcomes"]
        },
        "gate": run["gate"],
    }


def _threads(project: pytest.Pytester) -> list[str]:
    """The name of the thread each run of a test body ran in (the bodies append them)."""
    path = project.path / "threads.txt"
    return path.read_text().split() if path.exists() else []


def _reset_threads(project: pytest.Pytester) -> None:
    (project.path / "threads.txt").unlink(missing_ok=True)


def _draw_threads(project: pytest.Pytester) -> set[str]:
    return {name for name in _threads(project) if name.startswith("modelmigrate-draw")}


def _served(emulator: Emulator, prompt: str) -> int:
    return sum(1 for r in emulator.requests if r.prompt == prompt)


# The body logs its thread, so a test sees where it ran without timing anything.
LOG = """
import os, pathlib, threading

def log_thread():
    with open(pathlib.Path(os.environ["THREADS_FILE"]), "a") as f:
        f.write(threading.current_thread().name + "\\n")
"""


def _sequence(prompt: str, replies: list[dict[str, Any]]) -> dict[str, Any]:
    rule = {"match": prompt, "sequence": replies}
    return {"models": {m: {"rules": [rule]} for m in ("emu-a", "emu-b")}}


@pytest.fixture
def start(
    pytester: pytest.Pytester, start_emulator: Callable[..., Emulator], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Emulator]:
    monkeypatch.setenv("THREADS_FILE", str(pytester.path / "threads.txt"))

    def go(script: dict[str, Any], **files: str) -> Emulator:
        return start_emulator(script, threadlog=LOG, **files)

    return go


def _replay_agrees(
    pytester: pytest.Pytester, emulator: Emulator, recorded: pytest.RunResult, *args: str
) -> dict[str, Any]:
    """Replay offline with ``args``: the same exit status and summary as the recording."""
    emulator.stop()
    replay = pytester.runpytest(*args, "--block-network", "--migration-json=rep.json")
    replay.stdout.no_fnmatch_line("*No recorded response*")
    assert replay.ret == recorded.ret, (recorded.ret, replay.ret)
    summary = _summary(pytester, "rep.json")
    assert summary == _summary(pytester, "rec.json")
    return summary


# -- 1. draws are real, one per episode, and replay as recorded ------------------------------------

SIX = """
import pytest
import app, threadlog

@pytest.mark.samples(6)
def test_six(model):
    threadlog.log_thread()
    reply = app.chat(model, "six draws")
    assert reply in ("r0", "r2", "r4"), reply
"""


def test_draws_are_concurrent_one_per_episode_and_replay_gives_the_recorded_outcomes(
    pytester: pytest.Pytester, start: Callable[..., Emulator]
) -> None:
    script = {**_sequence("six draws", [{"reply": f"r{k}"} for k in range(12)]), "latency_ms": 30}
    emulator = start(script, test_six=SIX)
    emulator.time_scale = 1.0  # each answer takes 30 ms: the pool's threads all start meanwhile
    recorded = pytester.runpytest(
        MODELS, "--record-mode=once", "--record-concurrency=3", "--migration-json=rec.json"
    )
    assert len(_draw_threads(pytester)) >= 2, _threads(pytester)
    # each model: 6 draws in threads, then 6 samples in the main thread playing them
    assert _threads(pytester).count("MainThread") == 12, _threads(pytester)
    assert len(_threads(pytester)) == 24, _threads(pytester)
    for model in ("emu-a", "emu-b"):
        path = _cassette(pytester, "test_six", model, "test_six")
        assert [r.model for r in emulator.requests].count(model) == 6
        assert len(_load(path)["interactions"]) == 6
        assert _meta(path)["episodes"] == [1] * 6
        replies = _replies(path)
        assert sorted(replies) == [f"r{k}" for k in range(6)], replies
        # sample k played episode k: its outcome is that of episode k's reply
        expected = ["passed" if r in ("r0", "r2", "r4") else "failed" for r in replies]
        outcome = _summary(pytester, "rec.json")["outcomes"][f"test_six.py::test_six[{model}]"]
        assert outcome[1] == expected == _meta(path)["samples"], (outcome, replies)
    assert _served(emulator, "six draws") == 12
    _reset_threads(pytester)
    _replay_agrees(pytester, emulator, recorded, MODELS)
    assert set(_threads(pytester)) == {"MainThread"}


# -- 2. a stochastic reply with soft checks: the draws' checks are not counted ---------------------

COIN = {
    "models": {
        m: {"rules": [{"match": "flip", "choices": [{"reply": "yes"}, {"reply": "no"}]}]}
        for m in ("emu-a", "emu-b")
    }
}

FLIP = """
import pytest
import app, threadlog

@pytest.mark.samples(8)
def test_flip(model, checks):
    threadlog.log_thread()
    reply = app.chat(model, "flip a coin")
    checks.regex(reply, "^(yes|no)$")
    checks.contains(reply, "y")
    assert reply == "yes"
"""


def test_a_stochastic_reply_with_checks_records_what_the_replay_gives(
    pytester: pytest.Pytester, start: Callable[..., Emulator]
) -> None:
    emulator = start(COIN, test_flip=FLIP)
    recorded = pytester.runpytest(
        MODELS, "--record-mode=once", "--record-concurrency=4", "--migration-json=rec.json"
    )
    assert _draw_threads(pytester), _threads(pytester)
    assert _served(emulator, "flip a coin") == 16
    summary = _summary(pytester, "rec.json")
    seen: set[str] = set()
    for model in ("emu-a", "emu-b"):
        path = _cassette(pytester, "test_flip", model, "test_flip")
        replies = _replies(path)
        seen.update(replies)
        outcome, samples, checks = summary["outcomes"][f"test_flip.py::test_flip[{model}]"]
        assert samples == ["passed" if r == "yes" else "failed" for r in replies], (samples, replies)
        assert checks == 8 * 2  # two checks per sample, none of the draws'
        assert outcome == ("passed" if set(samples) == {"passed"} else "failed")
    assert seen == {"yes", "no"}  # 16 fair coins: both faces (a 2**-15 chance otherwise)
    _replay_agrees(pytester, emulator, recorded, MODELS)


# -- 3. topping up draws only the new samples and keeps the old episodes --------------------------

COUNT = """
import app, threadlog

def test_count(model):
    threadlog.log_thread()
    assert app.chat(model, "count").startswith("r")
"""


def _interactions(path: Path) -> list[Any]:
    return [(i["request"], i["response"]["body"]) for i in _load(path)["interactions"]]


def test_topping_up_draws_only_the_new_samples_at_once(
    pytester: pytest.Pytester, start: Callable[..., Emulator]
) -> None:
    emulator = start(_sequence("count", [{"reply": f"r{k}"} for k in range(8)]), test_count=COUNT)
    pytester.runpytest("--models=emu-a", "--samples=2", "--record-mode=once").assert_outcomes(passed=1)
    path = _cassette(pytester, "test_count", "emu-a", "test_count")
    first = _interactions(path)
    assert _replies(path) == ["r0", "r1"]
    _reset_threads(pytester)

    recorded = pytester.runpytest(
        "--models=emu-a",
        "--samples=5",
        "--record-mode=new_episodes",
        "--record-concurrency=3",
        "--migration-json=rec.json",
    )
    recorded.assert_outcomes(passed=1)
    threads = _threads(pytester)
    assert len([t for t in threads if t.startswith("modelmigrate-draw")]) == 3, threads
    assert threads.count("MainThread") == 5, threads
    assert _served(emulator, "count") == 2 + 3
    assert _interactions(path)[:2] == first
    assert _meta(path)["episodes"] == [1] * 5
    assert sorted(_replies(path)[2:]) == ["r2", "r3", "r4"]
    assert _summary(pytester, "rec.json")["outcomes"]["test_count.py::test_count[emu-a]"][1] == ["passed"] * 5
    _replay_agrees(pytester, emulator, recorded, "--models=emu-a", "--samples=5")


# -- 4. rewrite draws every sample again ----------------------------------------------------------


def test_rewrite_draws_every_sample_again_and_drops_the_old(
    pytester: pytest.Pytester, start: Callable[..., Emulator]
) -> None:
    emulator = start(_sequence("count", [{"reply": f"r{k}"} for k in range(8)]), test_count=COUNT)
    pytester.runpytest("--models=emu-a", "--samples=4", "--record-mode=once").assert_outcomes(passed=1)
    path = _cassette(pytester, "test_count", "emu-a", "test_count")
    assert _replies(path) == ["r0", "r1", "r2", "r3"]
    _reset_threads(pytester)

    recorded = pytester.runpytest(
        "--models=emu-a",
        "--samples=4",
        "--record-mode=rewrite",
        "--record-concurrency=4",
        "--migration-json=rec.json",
    )
    recorded.assert_outcomes(passed=1)
    assert len([t for t in _threads(pytester) if t.startswith("modelmigrate-draw")]) == 4
    assert _served(emulator, "count") == 8
    assert sorted(_replies(path)) == ["r4", "r5", "r6", "r7"]
    assert len(_load(path)["interactions"]) == 4
    assert _meta(path)["episodes"] == [1] * 4
    _replay_agrees(pytester, emulator, recorded, "--models=emu-a", "--samples=4")


# -- 5. off when the samples must run in order ----------------------------------------------------

SNAP = """
import pytest
import app, threadlog

@pytest.mark.samples(3)
def test_snap(model, snapshot_model):
    threadlog.log_thread()
    assert app.chat(model, "same") == snapshot_model
"""


def test_no_draws_under_a_budget_with_snapshots_or_in_once_over_a_cassette(
    pytester: pytest.Pytester, start: Callable[..., Emulator]
) -> None:
    script = {"models": {"emu-a": {"rules": [{"match": "count|same", "reply": "r"}]}}}
    emulator = start(script, test_count=COUNT, test_snap=SNAP)
    conc = ("--models=emu-a", "--record-concurrency=3")
    budget = pytester.runpytest(
        *conc, "test_count.py", "--samples=3", "--record-mode=once", "--migration-max-calls=100"
    )
    budget.assert_outcomes(passed=1)
    assert _threads(pytester) == ["MainThread"] * 3
    assert _served(emulator, "count") == 3
    _reset_threads(pytester)

    # once over the existing cassette replays, even the samples it lacks: nothing is drawn
    once = pytester.runpytest(*conc, "test_count.py", "--samples=5", "--record-mode=once")
    once.assert_outcomes(failed=1)
    once.stdout.fnmatch_lines(["*the cassette has 3 of 5 samples*"])
    assert _threads(pytester) == ["MainThread"] * 4, _threads(pytester)
    assert _served(emulator, "count") == 3
    _reset_threads(pytester)

    # syrupy numbers each snapshot assertion: the samples run in order
    snap = pytester.runpytest(*conc, "test_snap.py", "--record-mode=once", "--snapshot-update")
    snap.assert_outcomes(passed=1)
    assert _threads(pytester) == ["MainThread"] * 3
    assert _served(emulator, "same") == 3


# -- 6. a 429 in a draw is forgotten: its sample records the request when it runs -----------------


def test_a_429_in_a_draw_is_recorded_again_when_its_sample_runs(
    pytester: pytest.Pytester, start: Callable[..., Emulator]
) -> None:
    sequence: list[dict[str, Any]] = [{"error": {"status": 429}}]
    sequence += [{"reply": f"r{k}"} for k in range(1, 8)]
    emulator = start(_sequence("count", sequence), test_count=COUNT)
    recorded = pytester.runpytest(
        "--models=emu-a",
        "--samples=4",
        "--record-mode=once",
        "--record-concurrency=4",
        "--migration-json=rec.json",
    )
    recorded.stdout.no_fnmatch_line("*not recorded*")
    recorded.assert_outcomes(passed=1)
    assert _draw_threads(pytester), _threads(pytester)
    assert sorted(r.status for r in emulator.requests) == [200] * 4 + [429]
    path = _cassette(pytester, "test_count", "emu-a", "test_count")
    assert _statuses(path) == [200] * 4
    assert _meta(path)["episodes"] == [1] * 4
    assert sorted(_replies(path)) == ["r1", "r2", "r3", "r4"]
    outcome = _summary(pytester, "rec.json")["outcomes"]["test_count.py::test_count[emu-a]"]
    assert outcome[:2] == ("passed", ["passed"] * 4)
    # the draw's 429 is forgotten, not counted as a retry the SDK got past (max_retries=0)
    recorded_calls = _run(pytester, "rec.json")["outcomes"][0]["recorded"]
    assert (recorded_calls["calls"], recorded_calls["retried"]) == (4, 0), recorded_calls
    _replay_agrees(pytester, emulator, recorded, "--models=emu-a", "--samples=4")


# -- 7. bad values are usage errors naming the option ---------------------------------------------


@pytest.mark.parametrize(
    ("args", "ini", "named"),
    [
        (("--record-concurrency=0",), "", "--record-concurrency"),
        (("--record-concurrency=x",), "", "--record-concurrency"),
        ((), "modelmigrate_record_concurrency = -1\n", "modelmigrate_record_concurrency"),
    ],
    ids=["zero", "not-a-number", "ini-negative"],
)
def test_a_bad_concurrency_is_a_usage_error_naming_the_option(
    pytester: pytest.Pytester, args: tuple[str, ...], ini: str, named: str
) -> None:
    pytester.makeini("[pytest]\n" + ini)
    pytester.makepyfile(test_nothing="def test_nothing(model):\n    pass\n")
    result = pytester.runpytest("--models=emu-a", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, (result.ret, result.stdout.str())
    output = result.stdout.str() + result.stderr.str()
    assert named in output, output
    result.stdout.no_fnmatch_line("*passed*")


# -- 8. under xdist: each worker draws its own (test, model)s --------------------------------------

TWO_TESTS = """
import pytest
import app, threadlog

@pytest.mark.samples(3)
def test_one(model):
    threadlog.log_thread()
    assert app.chat(model, "one") in ("r0", "r1", "r3")

@pytest.mark.samples(3)
def test_two(model):
    threadlog.log_thread()
    assert app.chat(model, "two").startswith("r")
"""


def test_concurrent_draws_under_xdist_record_and_replay_offline_alike(
    pytester: pytest.Pytester, start: Callable[..., Emulator]
) -> None:
    replies = [{"reply": f"r{k}"} for k in range(6)]
    rules = [{"match": p, "sequence": replies} for p in ("one", "two")]
    emulator = start({"models": {m: {"rules": rules} for m in ("emu-a", "emu-b")}}, test_xd=TWO_TESTS)
    lean = ("-n", "2", "-p", "no:randomly", "-p", "no:hypothesispytest", "-p", "no:benchmark")
    recorded = pytester.runpytest(
        MODELS, *lean, "--record-mode=once", "--record-concurrency=3", "--migration-json=rec.json"
    )
    assert len(_summary(pytester, "rec.json")["outcomes"]) == 4
    assert _draw_threads(pytester), _threads(pytester)
    assert len(emulator.requests) == 12
    for model in ("emu-a", "emu-b"):
        for test in ("test_one", "test_two"):
            path = _cassette(pytester, "test_xd", model, test)
            assert _meta(path)["episodes"] == [1] * 3
            assert sorted(_replies(path)) == ["r0", "r1", "r2"]
            samples = _summary(pytester, "rec.json")["outcomes"][f"test_xd.py::{test}[{model}]"][1]
            expected = [
                "passed" if r in ("r0", "r1", "r3") or test == "test_two" else "failed"
                for r in _replies(path)
            ]
            assert samples == expected
    # replayed in one process (two xdist boots would double the runtime): the same outcomes
    _replay_agrees(pytester, emulator, recorded, MODELS, *lean[2:])
