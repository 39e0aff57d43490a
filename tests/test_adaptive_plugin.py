"""--samples=auto: record more samples only where undecided, then replay to the same decisions."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import yaml

from pytest_modelmigrate.emulator import Emulator

# The flaky prompt: the incumbent passes every other round, the candidate every third, out of
# step: most pairs disagree, losses outnumber wins two to one, and the comparison stays undecided
# past the minimum (8 rounds) before it stops for futility.
SCRIPT = {
    "models": {
        "emu-old": {
            "rules": [
                {"match": "same|drop", "reply": "ok"},
                {"match": "flaky", "sequence": [{"reply": r} for r in ["ok", "bad"] * 12]},
            ]
        },
        "emu-new": {
            "rules": [
                {"match": "same", "reply": "ok"},
                {"match": "drop", "reply": "bad"},
                {"match": "flaky", "sequence": [{"reply": r} for r in ["bad", "bad", "ok"] * 8]},
            ]
        },
    }
}

TESTS = """
import pytest
import app

@pytest.mark.prompt("same", deterministic=True)
def test_same(model, checks):
    checks.contains(app.chat(model, "same prompt"), "ok")

@pytest.mark.prompt("drop")
def test_drop(model, checks):
    checks.contains(app.chat(model, "drop prompt"), "ok")

@pytest.mark.prompt("flaky")
def test_flaky(model, checks):
    checks.contains(app.chat(model, "flaky prompt"), "ok")
"""

AUTO = [
    "--models=emu-old,emu-new",
    "--samples=auto",
    "--samples-min=8",
    "--samples-max=20",
    "-p",
    "no:randomly",
]


def _episodes(pytester: pytest.Pytester, model: str, test: str) -> int:
    path = pytester.path / "cassettes" / "test_auto" / model / f"{test}.yaml"
    data = yaml.safe_load(path.read_text())
    assert len(data["metadata"]["modelmigrate"]["samples"]) == len(data["interactions"])
    return len(data["interactions"])


def test_adaptive_sampling_records_only_where_undecided_then_replays_the_same(
    pytester: pytest.Pytester, start_emulator: Callable[..., Emulator]
) -> None:
    emulator = start_emulator(SCRIPT, test_auto=TESTS)

    first = pytester.runpytest(*AUTO, "--record-mode=new_episodes", "--migration-json=pass1.json")
    first.stdout.fnmatch_lines(["adaptive sampling: *comparisons decided*", "*undecided: run again*"])
    # every test starts with the minimum, 8 rounds per model: enough for 8 losses out of 8 to
    # cross the boundary at alpha / (2 * K * T) = 0.05 / 6
    assert {t: _episodes(pytester, "emu-new", t) for t in ("test_same", "test_drop", "test_flaky")} == {
        "test_same": 8,
        "test_drop": 8,
        "test_flaky": 8,
    }
    pass1 = json.loads((pytester.path / "pass1.json").read_text())["adaptive"]
    assert pass1["tests"]["test_auto.py::test_drop"]["emu-new"]["status"] == "regressed"
    assert pass1["tests"]["test_auto.py::test_same"]["emu-new"]["status"] == "not-regressed"
    assert pass1["tests"]["test_auto.py::test_flaky"]["emu-new"]["status"] == "continue"

    for _ in range(3):  # later passes add rounds to the undecided comparison only
        pytester.runpytest(*AUTO, "--record-mode=new_episodes")
    assert _episodes(pytester, "emu-new", "test_same") == 8
    assert _episodes(pytester, "emu-new", "test_drop") == 8
    flaky_rounds = _episodes(pytester, "emu-new", "test_flaky")
    assert 8 < flaky_rounds <= 20
    assert _episodes(pytester, "emu-old", "test_flaky") == flaky_rounds
    served = len(emulator.requests)
    emulator.stop()

    recorded = pytester.runpytest(*AUTO, "--record-mode=new_episodes", "--migration-json=last.json")
    replayed = pytester.runpytest(*AUTO, "--migration-json=replay.json", "--block-network")
    replayed_again = pytester.runpytest(*AUTO, "--migration-json=replay2.json", "--block-network")
    last = json.loads((pytester.path / "last.json").read_text())
    replay = json.loads((pytester.path / "replay.json").read_text())
    replay2 = json.loads((pytester.path / "replay2.json").read_text())
    assert served > 0
    assert replay["matrix"] == last["matrix"] == replay2["matrix"]
    assert replay["adaptive"]["tests"] == last["adaptive"]["tests"]
    gate_lines = [
        [line for line in r.outlines if line.startswith("migration gate (")]
        for r in (recorded, replayed, replayed_again)
    ]
    assert gate_lines[0] == gate_lines[1] == gate_lines[2] != []
    assert replay["adaptive"]["targets"]["test_auto.py::test_flaky"] == flaky_rounds

    # the sequential decisions, not fixed-N tests on stopped tallies, make the verdicts
    gated = pytester.runpytest(*AUTO, "--migration-gate=no-regression", "--migration-json=gated.json")
    assert gated.ret == pytest.ExitCode.TESTS_FAILED
    gated.stdout.fnmatch_lines(
        [
            "drop*emu-new: re-engineer: sequential: regressed*",
            "migration gate (no-regression): FAILED: 2 sequential regression(s) against emu-old: on emu-new: *",
        ]
    )
    verdicts = json.loads((pytester.path / "gated.json").read_text())["gate"]["verdicts"]
    assert verdicts["drop"]["emu-new"]["verdict"] == "re-engineer"
    # a futility stop is "not shown to regress": migrate only because the deterministic prompt
    # is non-inferior on the recorded tallies
    assert (verdicts["same"]["emu-new"]["verdict"], verdicts["same"]["emu-new"]["finding"]) == (
        "migrate",
        "non-inferior",
    )
    # the flaky prompt stopped for futility too, but 50% -> 33% is not shown non-inferior
    assert (verdicts["flaky"]["emu-new"]["verdict"], verdicts["flaky"]["emu-new"]["finding"]) == (
        "investigate",
        "undecided",
    )


def test_samples_auto_bounds_are_checked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_it(model): pass")
    result = pytester.runpytest("--models=a,b", "--samples=auto", "--samples-min=9", "--samples-max=3")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--samples-min (9) is larger than --samples-max (3)*"])
