"""Samples are independent draws, stored one episode per sample, and recorded without losing any.

Each test drives a pytester project through the real openai SDK against the emulator.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import free_port

from pytest_modelmigrate.emulator import Emulator


def _cassette(project: pytest.Pytester, module: str, model: str, test: str) -> Path:
    return project.path / "cassettes" / module / model / f"{test}.yaml"


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def _meta(path: Path) -> dict[str, Any]:
    meta: dict[str, Any] = (_load(path).get("metadata") or {}).get("modelmigrate") or {}
    return meta


def _replies(path: Path) -> list[str]:
    """The reply text of every interaction, in file order."""
    out = []
    for interaction in _load(path)["interactions"]:
        body = json.loads(interaction["response"]["body"]["string"])
        out.append(body["choices"][0]["message"]["content"])
    return out


def _consistent(path: Path) -> tuple[int, list[int], list[str]]:
    """Interactions, episodes and sample outcomes of a cassette, checked to agree."""
    count = len(_load(path)["interactions"])
    meta = _meta(path)
    episodes, samples = meta.get("episodes", []), meta.get("samples", [])
    assert (count == sum(episodes) and len(episodes) == len(samples)) or (count == 1 and not meta), (
        count,
        meta,
    )
    return count, episodes, samples


def _run(project: pytest.Pytester, name: str = "run.json") -> dict[str, Any]:
    run: dict[str, Any] = json.loads((project.path / name).read_text())
    return run


def _outcomes(project: pytest.Pytester, name: str = "run.json") -> dict[str, dict[str, Any]]:
    return {o["nodeid"]: o for o in _run(project, name)["outcomes"]}


def _served(emulator: Emulator, prompt: str) -> int:
    return sum(1 for r in emulator.requests if r.prompt == prompt)


# -- 1. samples are independent draws, stored one to one ------------------------------------------

COIN = {
    "models": {
        "emu-a": {
            "rules": [
                {"match": "flip", "choices": [{"weight": 1, "reply": "yes"}, {"weight": 1, "reply": "no"}]},
                {"match": "twice", "sequence": [{"reply": f"draw {k}"} for k in range(8)]},
            ]
        }
    }
}

DRAWS = """
import pytest
import app

def test_coin(model):
    assert app.chat(model, "flip a coin") == "yes"

@pytest.mark.samples(10)
def test_ten(model):
    assert app.chat(model, "flip ten coins") in ("yes", "no")

def test_twice(model):
    a = app.chat(model, "twice the same")
    b = app.chat(model, "twice the same")
    assert a != b, (a, b)
"""


def test_samples_are_independent_draws_stored_one_episode_per_sample(
    pytester: pytest.Pytester, start_emulator: Callable[..., Emulator]
) -> None:
    emulator = start_emulator(COIN, test_draws=DRAWS)
    coin = _cassette(pytester, "test_draws", "emu-a", "test_coin")
    ten = _cassette(pytester, "test_draws", "emu-a", "test_ten")
    twice = _cassette(pytester, "test_draws", "emu-a", "test_twice")

    pytester.runpytest("--models=emu-a", "--record-mode=once")
    assert _served(emulator, "flip a coin") == 1
    assert len(_load(coin)["interactions"]) == 1
    # two calls with one prompt in one sample: two draws, the second never replays the first
    assert _served(emulator, "twice the same") == 2
    assert _replies(twice) == ["draw 0", "draw 1"]
    # ten samples of a weighted choice: ten episodes of one draw each, not copies of one draw
    count, episodes, samples = _consistent(ten)
    assert (count, episodes, len(samples)) == (10, [1] * 10, 10)
    assert _served(emulator, "flip ten coins") == 10
    assert set(_replies(ten)) == {"yes", "no"}, _replies(ten)

    served = len(emulator.requests)
    pytester.runpytest(
        "--models=emu-a",
        "--samples=3",
        "--record-mode=new_episodes",
        "--migration-json=rec.json",
    )
    # samples 2 and 3 of test_coin are new draws; sample 1 replays the episode recorded before
    assert _served(emulator, "flip a coin") == 1 + 2
    assert _consistent(coin)[:2] == (3, [1, 1, 1])
    assert _served(emulator, "flip ten coins") == 10  # the marker's 10 samples are all recorded
    assert _consistent(ten)[0] == 10
    assert _served(emulator, "twice the same") == 2 + 2 * 2  # two new samples, two draws each
    assert _consistent(twice)[:2] == (6, [2, 2, 2])
    assert _replies(twice) == [f"draw {k}" for k in range(6)]
    assert len(emulator.requests) == served + 2 + 4
    recorded = _outcomes(pytester, "rec.json")
    coin_samples = recorded["test_draws.py::test_coin[emu-a]"]["samples"]
    assert len(coin_samples) == 3
    assert _meta(coin)["samples"] == coin_samples

    emulator.stop()
    replay = pytester.runpytest(
        "--models=emu-a", "--samples=3", "--block-network", "--migration-json=rep.json"
    )
    replay.stdout.no_fnmatch_line("*No recorded response*")
    replayed = _outcomes(pytester, "rep.json")
    assert {k: v["samples"] for k, v in replayed.items()} == {k: v["samples"] for k, v in recorded.items()}
    assert replayed["test_draws.py::test_twice[emu-a]"]["outcome"] == "passed"
    assert replayed["test_draws.py::test_ten[emu-a]"]["outcome"] == "passed"
    assert replayed["test_draws.py::test_ten[emu-a]"]["samples"] == ["passed"] * 10


# -- 2. topping up in passes draws new samples (the emulator fixture keeps its counters) ----------

COUNTER_SCRIPT = """
models:
  emu-a:
    rules:
      - match: "count"
        sequence: [{reply: r0}, {reply: r1}, {reply: r2}, {reply: r3}, {reply: r4}, {reply: r5}, {reply: r6}]
"""

FIXTURE_TESTS = """
import openai

def test_count(model, modelmigrate_emulator):
    client = openai.OpenAI(base_url=modelmigrate_emulator + "/v1", api_key="x", max_retries=0)
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "count"}])
    assert r.choices[0].message.content.startswith("r")
"""


def _fixture_project(
    pytester: pytest.Pytester, port: int, script: str, models: str = "emu-a", **files: str
) -> None:
    """A project whose tests reach the emulator through the ``modelmigrate_emulator`` fixture."""
    pytester.makeini(
        "[pytest]\n"
        f"modelmigrate_models = {models}\n"
        "modelmigrate_emulator_script = script.yaml\n"
        f"modelmigrate_emulator_port = {port}\n"
        "modelmigrate_emulator_time_scale = 0\n"
    )
    (pytester.path / "script.yaml").write_text(script)
    pytester.makepyfile(**files)


def test_topping_up_in_passes_draws_new_samples_each_pass(pytester: pytest.Pytester) -> None:
    _fixture_project(pytester, free_port(), COUNTER_SCRIPT, test_topup=FIXTURE_TESTS)
    path = _cassette(pytester, "test_topup", "emu-a", "test_count")
    for wanted in (2, 4, 6):
        result = pytester.runpytest(f"--samples={wanted}", "--record-mode=new_episodes")
        result.assert_outcomes(passed=1)
        count, episodes, samples = _consistent(path)
        assert count == len(samples) == sum(episodes) == wanted
        assert episodes == [1] * wanted
        # each pass continues where the last one stopped: its samples are new draws, not repeats
        assert _replies(path) == [f"r{k}" for k in range(wanted)]
    state = json.loads(
        (pytester.path / ".pytest_cache" / "d" / "modelmigrate-emulator" / "draws.json").read_text()
    )
    assert list(state["counters"].values()) == [6]  # one prompt to one model, drawn 6 times
    replay = pytester.runpytest("--samples=6", "--block-network", "--migration-json=run.json")
    replay.assert_outcomes(passed=1)
    assert _outcomes(pytester)["test_topup.py::test_count[emu-a]"]["samples"] == ["passed"] * 6


# -- 3. a cassette whose metadata and interactions disagree is refused ----------------------------

ONE_CALL = """
import app

def test_it(model):
    assert app.chat(model, "hello there")
"""


def _edit_metadata(path: Path, **meta: Any) -> None:
    data = _load(path)
    data["metadata"]["modelmigrate"] = meta
    path.write_text(yaml.safe_dump(data))


@pytest.mark.parametrize(
    ("meta", "listed"),
    [
        (
            {"samples": ["passed"] * 3, "episodes": [1, 1]},
            "2 episode(s) of 2 interaction(s) for 3 sample outcome(s)",
        ),
        (
            {"samples": ["passed"] * 2, "episodes": [1, 2]},
            "2 episode(s) of 3 interaction(s) for 2 sample outcome(s)",
        ),
        ({"samples": ["passed"] * 3}, "3 sample outcome(s) but the file holds 2 interaction(s)"),
    ],
    ids=["samples-too-many", "episodes-sum-wrong", "samples-without-episodes"],
)
def test_a_cassette_whose_metadata_disagrees_is_refused_and_left_alone(
    project: pytest.Pytester, meta: dict[str, Any], listed: str
) -> None:
    project.makepyfile(test_meta=ONE_CALL)
    project.runpytest("--models=emu-a", "--samples=2", "--record-mode=once").assert_outcomes(passed=1)
    path = _cassette(project, "test_meta", "emu-a", "test_it")
    assert _consistent(path)[:2] == (2, [1, 1])
    _edit_metadata(path, **meta)
    before = path.read_bytes()

    for mode in ("none", "new_episodes"):  # replaying it, and recording over it
        result = project.runpytest(
            "--models=emu-a", "--samples=2", f"--record-mode={mode}", "--migration-json=run.json"
        )
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            [
                f"*{path}: its metadata lists {listed}*; it was left as it is. Record it again: "
                "pytest 'test_meta.py::test_it[[]emu-a[]]' --models=emu-a --samples=2 --record-mode=rewrite*"
            ]
        )
        result.stdout.no_fnmatch_line("*Traceback*")
        assert path.read_bytes() == before
        assert _outcomes(project)["test_meta.py::test_it[emu-a]"]["outcome"] == "error"


def test_the_command_a_refused_cassette_names_records_it_again(project: pytest.Pytester) -> None:
    """The refusal says to run its command (--record-mode=rewrite); that command must record it."""
    project.makepyfile(test_meta=ONE_CALL)
    project.runpytest("--models=emu-a", "--samples=2", "--record-mode=once").assert_outcomes(passed=1)
    path = _cassette(project, "test_meta", "emu-a", "test_it")
    _edit_metadata(path, samples=["passed"] * 3, episodes=[1, 1])
    result = project.runpytest("--models=emu-a", "--samples=2")
    result.assert_outcomes(errors=1)
    hint = next(line for line in result.stdout.lines if "Record it again: " in line)
    command = shlex.split(hint.split("Record it again: ", 1)[1])
    assert command[0] == "pytest"
    again = project.runpytest(*command[1:])
    again.stdout.no_fnmatch_line("*its metadata lists*")
    again.assert_outcomes(passed=1)
    assert _consistent(path)[:2] == (2, [1, 1])
    project.runpytest("--models=emu-a", "--samples=2", "--block-network").assert_outcomes(passed=1)


# -- 4. replay asking for more samples than recorded: missing, with the top-up command ------------

TWO_MODELS = "--models=emu-a,emu-b"


def test_replaying_more_samples_than_recorded_is_missing_with_the_top_up_command(
    project: pytest.Pytester, emulator: Emulator
) -> None:
    project.makepyfile(test_more=ONE_CALL)
    project.runpytest(TWO_MODELS, "--samples=3", "--record-mode=once").assert_outcomes(passed=2)
    project.runpytest("--models=emu-b", "--record-mode=rewrite").assert_outcomes(passed=1)  # 1 sample
    a_path = _cassette(project, "test_more", "emu-a", "test_it")
    b_path = _cassette(project, "test_more", "emu-b", "test_it")
    assert len(_load(b_path)["interactions"]) == 1
    a_before = a_path.read_bytes()

    result = project.runpytest(TWO_MODELS, "--samples=3", "--block-network", "--migration-json=run.json")
    result.assert_outcomes(passed=1, failed=1)
    command = (
        "pytest 'test_more.py::test_it[[]emu-b[]]' --models=emu-b --samples=3 --record-mode=new_episodes"
    )
    result.stdout.fnmatch_lines(
        [
            "*No recorded response for POST * in sample 2",
            "*the cassette has 1 of 3 samples: sample 2 was never recorded",
            f"*to record only the missing samples: {command}",
        ]
    )
    outcome = _outcomes(project)["test_more.py::test_it[emu-b]"]
    assert outcome["outcome"] == "missing"
    assert outcome["passed"] == outcome["total"] == 0
    assert _outcomes(project)["test_more.py::test_it[emu-a]"]["outcome"] == "passed"
    row = next(line for line in result.stdout.lines if line.startswith("  test_it "))
    assert row.split()[1:] == ["3/3", "100%", "missing"], row  # emu-a's cell, then emu-b's

    hint = next(line for line in result.stdout.lines if "to record only the missing samples: " in line)
    args = shlex.split(hint.split("to record only the missing samples: ", 1)[1])
    assert args[0] == "pytest"
    served = len(emulator.requests)
    project.runpytest(*args[1:]).assert_outcomes(passed=1)
    assert len(emulator.requests) == served + 2  # samples 2 and 3 only
    assert _consistent(b_path)[:2] == (3, [1, 1, 1])
    assert a_path.read_bytes() == a_before
    emulator.stop()
    replay = project.runpytest(TWO_MODELS, "--samples=3", "--block-network", "--migration-json=run.json")
    replay.assert_outcomes(passed=2)
    assert _outcomes(project)["test_more.py::test_it[emu-b]"]["samples"] == ["passed"] * 3


# -- 5. provider errors while recording -----------------------------------------------------------

FALLBACK = """
import openai
import app

def test_fallback(model):
    try:
        reply = app.chat(model, "answer me")
    except openai.APIError:
        reply = "fallback"
    assert reply
"""


@pytest.mark.parametrize(("status", "described"), [(429, "429 (rate limit)"), (500, "500 (server error)")])
def test_a_provider_error_while_rerecording_keeps_the_old_cassette_and_is_missing(
    pytester: pytest.Pytester, start_emulator: Callable[..., Emulator], status: int, described: str
) -> None:
    # the first request is answered; from then on the provider answers with an error
    script = {
        "models": {
            "emu-a": {
                "rules": [{"match": "answer", "sequence": [{"reply": "good"}, {"error": {"status": status}}]}]
            }
        }
    }
    emulator = start_emulator(script, test_err=FALLBACK)
    pytester.runpytest("--models=emu-a", "--record-mode=once").assert_outcomes(passed=1)
    path = _cassette(pytester, "test_err", "emu-a", "test_fallback")
    before = path.read_bytes()
    assert _replies(path) == ["good"]

    result = pytester.runpytest("--models=emu-a", "--record-mode=rewrite", "--migration-json=run.json")
    result.assert_outcomes(failed=1)
    assert [r.status for r in emulator.requests] == [200, status]
    result.stdout.fnmatch_lines(
        [
            f"*not recorded: the provider answered {described}; the previous cassette is kept (*test_fallback.yaml)*"
        ]
    )
    assert path.read_bytes() == before
    assert _outcomes(pytester)["test_err.py::test_fallback[emu-a]"]["outcome"] == "missing"


RETRYING = """
import json, os, pathlib
import openai

SEEN = []  # the retry-after-ms values the SDK read, test by test

class Client(openai.OpenAI):
    def _parse_retry_after_header(self, response_headers=None):
        if response_headers is not None and response_headers.get("retry-after-ms") is not None:
            SEEN.append(response_headers.get("retry-after-ms"))
        return super()._parse_retry_after_header(response_headers)

def chat(model, prompt):
    client = Client(base_url=os.environ["EMU_URL"] + "/v1", api_key="x", max_retries=2)
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}])
    return r.choices[0].message.content

def test_retried(model):
    assert chat(model, "retry me") == "after the wait"

@pytest.mark.record_provider_errors
def test_kept(model):
    SEEN.clear()
    assert chat(model, "keep the error") == "after the wait"
    pathlib.Path(os.environ["SEEN_FILE"]).write_text(json.dumps(SEEN))
"""

RETRY_SCRIPT = {
    "models": {
        "emu-a": {
            "rules": [
                {
                    "match": "retry me|keep the error",
                    "sequence": [
                        {"error": {"status": 429, "retry_after": 0.01}},
                        {"reply": "after the wait"},
                    ],
                }
            ]
        }
    }
}


def _statuses(path: Path) -> list[int]:
    return [i["response"]["status"]["code"] for i in _load(path)["interactions"]]


def test_a_retried_429_is_not_recorded_unless_the_test_asks_and_replays_without_the_backoff(
    pytester: pytest.Pytester, start_emulator: Callable[..., Emulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = start_emulator(RETRY_SCRIPT, test_retry="import pytest\n" + RETRYING)
    monkeypatch.setenv("SEEN_FILE", str(pytester.path / "seen.json"))
    pytester.runpytest("--models=emu-a", "--record-mode=once").assert_outcomes(passed=2)
    assert sorted(r.status for r in emulator.requests) == [200, 200, 429, 429]
    # the SDK got past the 429: only the answer is kept
    assert _statuses(_cassette(pytester, "test_retry", "emu-a", "test_retried")) == [200]
    # asked for: the 429 is kept, and it carried the recorded backoff
    kept = _cassette(pytester, "test_retry", "emu-a", "test_kept")
    assert _statuses(kept) == [429, 200]
    assert set(json.loads((pytester.path / "seen.json").read_text())) == {"10"}

    emulator.stop()
    pytester.runpytest("--models=emu-a", "--block-network").assert_outcomes(passed=2)
    # replayed, the 429 tells the SDK to wait 1 ms, not the recorded 10 ms
    assert set(json.loads((pytester.path / "seen.json").read_text())) == {"1"}


SAMPLED_FALLBACK = FALLBACK.replace("def test_fallback", "def test_sampled")


def test_a_429_on_one_sample_of_a_rewrite_writes_nothing(
    pytester: pytest.Pytester, start_emulator: Callable[..., Emulator]
) -> None:
    # request 0 is the first recording; the rewrite's samples are requests 1, 2 and 3
    sequence = [{"reply": "good 0"}, {"reply": "good 1"}, {"error": {"status": 429}}, {"reply": "good 3"}]
    script = {"models": {"emu-a": {"rules": [{"match": "answer", "sequence": sequence}]}}}
    emulator = start_emulator(script, test_some=SAMPLED_FALLBACK)
    pytester.runpytest("--models=emu-a", "--record-mode=once").assert_outcomes(passed=1)
    path = _cassette(pytester, "test_some", "emu-a", "test_sampled")
    before = path.read_bytes()

    result = pytester.runpytest(
        "--models=emu-a", "--samples=3", "--record-mode=rewrite", "--migration-json=run.json"
    )
    assert [r.status for r in emulator.requests] == [200, 200, 429, 200]
    # sample 2 has no answer: the rewrite is not written, whatever sample 3 got
    assert path.read_bytes() == before, _meta(path)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*not recorded: the provider answered 429 (rate limit); the previous cassette is kept*"]
    )
    assert _outcomes(pytester)["test_some.py::test_sampled[emu-a]"]["outcome"] == "missing"


# -- 6. recording under xdist with the emulator fixture -------------------------------------------

XDIST_SCRIPT = """
models:
  "*":
    default: "an emulated answer"
"""

XDIST_TESTS = """
import openai
import pytest

@pytest.mark.parametrize("case", range(6))
def test_case(model, modelmigrate_emulator, case):
    client = openai.OpenAI(base_url=modelmigrate_emulator + "/v1", api_key="x", max_retries=0)
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": f"case {case}"}])
    assert r.choices[0].message.content == "an emulated answer"
"""


def test_recording_under_xdist_records_the_fixed_port_and_replays_with_and_without_n(
    pytester: pytest.Pytester,
) -> None:
    port = free_port()
    _fixture_project(pytester, port, XDIST_SCRIPT, models="emu-a, emu-b", test_par=XDIST_TESTS)
    lean = ("-p", "no:randomly", "-p", "no:hypothesispytest", "-p", "no:benchmark")
    recorded = pytester.runpytest("-n", "2", "--record-mode=once", *lean)
    recorded.assert_outcomes(passed=12)
    recorded.stdout.no_fnmatch_line("*Address already in use*")
    recorded.stderr.no_fnmatch_line("*Address already in use*")
    files = sorted((pytester.path / "cassettes" / "test_par").rglob("*.yaml"))
    assert len(files) == 12
    uris = {i["request"]["uri"] for path in files for i in _load(path)["interactions"]}
    assert uris == {f"http://127.0.0.1:{port}/v1/chat/completions"}

    # replay: nothing listens on the fixed port, the cassettes answer, with and without workers
    pytester.runpytest("-n", "2", "--block-network", *lean, "-p", "no:cacheprovider").assert_outcomes(
        passed=12
    )
    pytester.runpytest("--block-network", *lean).assert_outcomes(passed=12)


# -- 7. the incumbent named in the ini need not be in the run -------------------------------------

DRIFT_SCRIPT = {
    "models": {
        "emu-old": {"rules": [{"match": "refund", "reply": "We will refund your order within five days."}]},
        "emu-new": {"rules": [{"match": "refund", "reply": "Refunds are not possible. Goodbye."}]},
    }
}

DRIFT_TESTS = """
import app

def test_reply(model, checks):
    checks.drift(app.chat(model, "Answer a customer who wants a refund"), min_score=0.0)
"""


def _drift_score(project: pytest.Pytester, nodeid: str) -> float:
    (drift,) = [c for c in _outcomes(project)[nodeid]["checks"] if c["name"] == "drift"]
    score: float = drift["score"]
    return score


def test_recording_a_candidate_alone_drifts_against_the_incumbents_cassette(
    pytester: pytest.Pytester, start_emulator: Callable[..., Emulator]
) -> None:
    start_emulator(DRIFT_SCRIPT, test_drift=DRIFT_TESTS)
    pytester.makeini("[pytest]\nmodelmigrate_models = emu-old,emu-new\nmodelmigrate_incumbent = emu-old\n")
    pytester.runpytest("--record-mode=once", "--migration-json=run.json").assert_outcomes(passed=2)
    both = _drift_score(pytester, "test_drift.py::test_reply[emu-new]")
    assert both < 1
    assert _drift_score(pytester, "test_drift.py::test_reply[emu-old]") == pytest.approx(1.0)
    old = _cassette(pytester, "test_drift", "emu-old", "test_reply")
    old_before = old.read_bytes()

    result = pytester.runpytest(
        "test_drift.py::test_reply[emu-new]",
        "--models=emu-new",
        "--record-mode=rewrite",
        "--migration-json=run.json",
    )
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*not among the models*")
    result.stdout.fnmatch_lines(
        [
            "modelmigrate: models emu-new (incumbent emu-old, not in this run: nothing is compared, from --models)*"
        ]
    )
    # the candidate's drift is measured against emu-old's recorded reply, not against itself
    assert _drift_score(pytester, "test_drift.py::test_reply[emu-new]") == pytest.approx(both)
    assert old.read_bytes() == old_before


# -- 8. two processes recording one cassette at once lose no episode ------------------------------

SLIM_APP = """
import os
import openai

def chat(model, prompt):
    client = openai.OpenAI(base_url=os.environ["EMU_URL"] + "/v1", api_key="x", max_retries=0)
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}])
    return r.choices[0].message.content
"""

# Both processes wait for each other before the cassette is opened, so they reach it together.
BARRIER = """
import os, pathlib, time
import pytest

@pytest.fixture(autouse=True)
def both_started():
    folder = pathlib.Path(os.environ["BARRIER_DIR"])
    (folder / str(os.getpid())).write_text("")
    deadline = time.monotonic() + 60
    while len(list(folder.iterdir())) < 2:
        assert time.monotonic() < deadline, "the other process never started"
        time.sleep(0.01)
"""

RACE = """
import time
import slimapp

def test_race(model):
    assert slimapp.chat(model, "race").startswith("draw ")
    time.sleep(0.2)  # the other process would read the old file now, and write over this one
"""


def test_two_processes_recording_one_cassette_at_once_lose_no_draw(
    pytester: pytest.Pytester, start_emulator: Callable[..., Emulator]
) -> None:
    script = {
        "models": {
            "emu-a": {"rules": [{"match": "race", "sequence": [{"reply": f"draw {k}"} for k in range(9)]}]}
        }
    }
    emulator = start_emulator(script, test_race=RACE, slimapp=SLIM_APP)
    pytester.makeconftest(BARRIER)
    barrier = pytester.path / "barrier"
    barrier.mkdir()
    env = dict(os.environ, PYTHONPATH=str(pytester.path), BARRIER_DIR=str(barrier))
    env.pop("PYTEST_ADDOPTS", None)
    args = [
        sys.executable,
        "-m",
        "pytest",
        "--models=emu-a",
        "--samples=2",
        "--record-mode=new_episodes",
        "-q",
    ]
    lean = ["-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark", "-p", "no:randomly"]
    procs = [
        subprocess.Popen(
            [*args, *lean],
            cwd=pytester.path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs

    path = _cassette(pytester, "test_race", "emu-a", "test_race")
    count, episodes, samples = _consistent(path)
    # the second process waited for the first and found its 2 samples recorded: it replayed them.
    # Every draw the provider served is in the cassette, once, in sample order.
    served = [r for r in emulator.requests if r.prompt == "race"]
    assert count == len(served) == sum(episodes) == len(samples) == 2
    assert episodes == [1, 1]
    assert _replies(path) == ["draw 0", "draw 1"]
