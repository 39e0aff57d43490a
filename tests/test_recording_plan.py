"""``--migration-plan`` (what recording will call and cost, nothing sent) and the recording progress."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from pytest_modelmigrate.emulator import Emulator
from pytest_modelmigrate.plan import PlannedTest, new_samples, plan_recording
from pytest_modelmigrate.pricing import Price

StartEmulator = Callable[..., Emulator]

SCRIPT = {
    "models": {"emu-*": {"default": {"reply": "a fine answer", "input_tokens": 100, "output_tokens": 20}}}
}

TESTS = """
import pytest
import app

def test_one(model):
    assert app.chat(model, "first question")

def test_two(model):
    app.chat(model, "second question")
    assert app.chat(model, "second question, again")
"""

PRICES = (
    "[pytest]\nmodelmigrate_prices =\n    emu-a: input=2.00 output=10.00\n    emu-b: input=1.00 output=5.00\n"
)


def _plan_rows(text: str) -> dict[str, list[str]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("recording plan"))
    rows = {}
    for line in lines[start + 2 :]:
        cells = line.split()
        if not cells or cells[0] not in ("emu-a", "emu-b", "total"):
            break
        rows[cells[0]] = cells[1:]
    return rows


def test_the_plan_lists_calls_per_model_and_sends_nothing(
    pytester: pytest.Pytester, start_emulator: StartEmulator
) -> None:
    emulator = start_emulator(SCRIPT, test_p=TESTS)
    result = pytester.runpytest("--models=emu-a,emu-b", "--record-mode=once", "--migration-plan", "-n", "2")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["recording plan (--record-mode=once; nothing was sent to any provider):"])
    rows = _plan_rows(result.stdout.str())
    # no recording to go by: one call per sample, counted as such
    assert rows["emu-a"][:3] == ["2", "2", "2"]
    assert rows["total"][:3] == ["4", "4", "4"]
    result.stdout.fnmatch_lines(
        ["*4 test(s) have no recording to go by*", "run again without --migration-plan*"]
    )
    assert emulator.requests == []
    assert not list(pytester.path.rglob("*.yaml"))
    assert "passed" not in result.stdout.str().splitlines()[-1]


def test_the_plan_estimates_from_recorded_calls_and_prices(
    pytester: pytest.Pytester, start_emulator: StartEmulator
) -> None:
    emulator = start_emulator(SCRIPT, test_p=TESTS)
    pytester.makeini(PRICES)
    pytester.runpytest("--models=emu-a", "--record-mode=once").assert_outcomes(passed=2)
    served = len(emulator.requests)
    assert served == 3
    usage = [r["usage"] for r in _responses(pytester, "emu-a")]
    per_call_in = {u["prompt_tokens"] for u in usage}
    per_call_out = {u["completion_tokens"] for u in usage}
    assert len(per_call_in) == 1 and len(per_call_out) == 1
    inp, out = per_call_in.pop(), per_call_out.pop()

    result = pytester.runpytest(
        "--models=emu-a,emu-b", "--samples=3", "--record-mode=new_episodes", "--migration-plan"
    )
    assert result.ret == 0
    rows = _plan_rows(result.stdout.str())
    # emu-a has 1 of 3 samples: 2 more of test_one (1 call each) and of test_two (2 calls each)
    assert rows["emu-a"][:3] == ["2", "4", "6"]
    # emu-b has nothing: 3 samples each, estimated from the incumbent emu-a's recording
    assert rows["emu-b"][:3] == ["2", "6", "9"]
    cost_a = 6 * (inp * 2.00 + out * 10.00) / 1e6
    cost_b = 9 * (inp * 1.00 + out * 5.00) / 1e6
    assert rows["emu-a"][3:] == [f"{6 * inp:,}", f"{6 * out:,}", f"${cost_a:.4f}"]
    assert rows["emu-b"][3:] == [f"{9 * inp:,}", f"{9 * out:,}", f"${cost_b:.4f}"]
    assert rows["total"][-1] == f"${cost_a + cost_b:.4f}"
    assert len(emulator.requests) == served  # the plan called nothing

    # rewrite records everything again; replay (none) records nothing
    rewrite = _plan_rows(
        pytester.runpytest(
            "--models=emu-a", "--samples=3", "--record-mode=rewrite", "--migration-plan"
        ).stdout.str()
    )
    assert rewrite["emu-a"][:3] == ["2", "6", "9"]
    replay = _plan_rows(pytester.runpytest("--models=emu-a", "--samples=3", "--migration-plan").stdout.str())
    assert replay["emu-a"][:3] == ["0", "0", "0"]


def _responses(pytester: pytest.Pytester, model: str) -> list[dict[str, Any]]:
    bodies = []
    for path in sorted((pytester.path / "cassettes" / "test_p" / model).glob("*.yaml")):
        for interaction in yaml.safe_load(path.read_text())["interactions"]:
            bodies.append(json.loads(interaction["response"]["body"]["string"]))
    return bodies


def test_recording_prints_progress_per_model_and_is_quiet_under_q(
    pytester: pytest.Pytester, start_emulator: StartEmulator
) -> None:
    start_emulator(SCRIPT, test_p=TESTS)
    pytester.makeini(PRICES)
    result = pytester.runpytest("--models=emu-a,emu-b", "--record-mode=once", "--migration-json=run.json")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "*= recording =*",
            # nothing recorded yet to estimate the calls from: no planned total is claimed
            "recording emu-a: 3 call(s), $0.0012 spent, 0 rate-limit wait(s)",
            "recording emu-b: 3 call(s), $0.0006 spent, 0 rate-limit wait(s)",
        ]
    )
    run = json.loads((pytester.path / "run.json").read_text())
    recorded = {o["nodeid"]: o["recorded"] for o in run["outcomes"]}
    assert recorded["test_p.py::test_two[emu-b]"]["calls"] == 2
    assert recorded["test_p.py::test_two[emu-b]"]["cost_usd"] > 0

    topped = pytester.runpytest("--models=emu-a,emu-b", "--samples=2", "--record-mode=new_episodes")
    topped.assert_outcomes(passed=4)
    topped.stdout.fnmatch_lines(["recording emu-a: 3 of ~3 call(s), $0.0012 spent, 0 rate-limit wait(s)"])
    quiet = pytester.runpytest("--models=emu-a,emu-b", "--samples=3", "--record-mode=new_episodes", "-q")
    quiet.assert_outcomes(passed=4)
    assert "recording emu-a" not in quiet.stdout.str()
    replay = pytester.runpytest("--models=emu-a,emu-b", "--samples=2")
    replay.assert_outcomes(passed=4)
    assert "= recording =" not in replay.stdout.str()


def test_new_samples_per_record_mode() -> None:
    assert [new_samples(m, 3, None) for m in ("none", "once", "new_episodes", "rewrite", "all")] == [
        0,
        3,
        3,
        3,
        3,
    ]
    assert [new_samples(m, 3, 1) for m in ("none", "once", "new_episodes", "rewrite", "all")] == [
        0,
        0,
        2,
        3,
        3,
    ]
    assert new_samples("new_episodes", 3, 5) == 0


def test_plan_prices_the_reference_calls_as_the_models_own() -> None:
    reference = [[{"model_requested": "gpt-old", "usage": {"input_tokens": 1000, "output_tokens": 100}}]]
    planned = PlannedTest(
        nodeid="t[new]",
        test="t",
        model="new",
        model_name="gpt-new",
        samples=4,
        recorded=None,
        new=4,
        reference=reference,
        source="incumbent",
    )
    unknown = PlannedTest(
        nodeid="u[new]", test="u", model="new", model_name="gpt-new", samples=1, recorded=None, new=1
    )
    plan = plan_recording(
        [planned, unknown],
        ["new"],
        record_mode="once",
        prices={"gpt-new": Price(input=1.0, output=2.0)},
        model_names={"new": "gpt-new"},
    )
    (model,) = plan.models
    assert (model.tests, model.samples, model.calls, model.guessed) == (2, 5, 5, 1)
    assert (model.input_tokens, model.output_tokens) == (4000, 400)
    assert model.cost == pytest.approx(4 * (1000 * 1.0 + 100 * 2.0) / 1e6)
