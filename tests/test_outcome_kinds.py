"""Outcome kinds: xfailed, error and missing outcomes are not evidence about a model.

Each story builds a small project, runs it with pytester and reads the ``--migration-json``
run file. The rules under test (the contract of the run file):

- ``outcome`` is one of passed, failed, xfailed, xpassed, skipped, error, missing;
- xfailed, skipped, error and missing outcomes add nothing to a cell's ``passed``/``total``;
- a cell with no evidence shows ``missing``, else ``xfail``, else ``error``, else ``-``;
- a group with no valid evidence for a candidate, or where the candidate passes no sample at
  all, is never ``migrate``;
- a missing recording fails its pytest item and is listed in ``run["missing"]`` with one command
  that records every missing one; it fails the gate under strict and no-regression, not report.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from typing import Any

import pytest

from pytest_modelmigrate.emulator import Emulator
from pytest_modelmigrate.reports.run import validate_run

TWO_MODELS = "--models=emu-a,emu-b"


def read_run(pytester: pytest.Pytester, name: str = "run.json") -> dict[str, Any]:
    run: dict[str, Any] = json.loads((pytester.path / name).read_text())
    return run


def outcome_of(run: dict[str, Any], nodeid: str) -> str:
    by_id = {o["nodeid"]: o["outcome"] for o in run["outcomes"]}
    return by_id[nodeid]


def cell(run: dict[str, Any], group: str, test: str, model: str) -> dict[str, Any]:
    (found,) = [g for g in run["matrix"]["groups"] if g["name"] == group]
    (row,) = [t for t in found["tests"] if t["name"] == test]
    result: dict[str, Any] = row["cells"][model]
    return result


def group_total(run: dict[str, Any], group: str, model: str) -> dict[str, Any]:
    (found,) = [g for g in run["matrix"]["groups"] if g["name"] == group]
    result: dict[str, Any] = found["totals"][model]
    return result


def verdict(run: dict[str, Any], group: str, candidate: str = "emu-b") -> dict[str, Any]:
    result: dict[str, Any] = run["gate"]["verdicts"][group][candidate]
    return result


def assert_gate_line(result: pytest.RunResult, run: dict[str, Any]) -> None:
    """The run's gate line is built from its mode, passed and reason, and the terminal ends with it."""
    gate = run["gate"]
    word = "PASSED" if gate["passed"] else "FAILED"
    assert gate["line"] == f"migration gate ({gate['mode']}): {word}: {gate['reason']}"
    printed = [line for line in result.outlines if line.startswith("migration gate")]
    assert printed, "no gate line in the terminal"
    assert printed[-1] == gate["line"]


def command_args(command: str) -> list[str]:
    """The arguments after ``pytest`` in a suggested command, to run it with pytester."""
    args = shlex.split(command)
    assert "pytest" in args, command
    return args[args.index("pytest") + 1 :]


# -- xfail: an accepted failure is not a regression ------------------------------------------------

XFAIL_PER_MODEL = """
import pytest

@pytest.mark.prompt("drift")
@pytest.mark.models(xfail={"emu-b": "known drift, accepted"})
def test_drift(model):
    assert model != "emu-b", "emu-b words its answer differently"
"""


@pytest.mark.parametrize("gate", ["strict", "no-regression"])
def test_models_marker_xfail_on_the_candidate_is_no_failure_and_no_regression(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, gate: str
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    pytester.makepyfile(test_x=XFAIL_PER_MODEL)
    result = pytester.runpytest(TWO_MODELS, f"--migration-gate={gate}", "--migration-json=run.json")
    result.assert_outcomes(passed=1, xfailed=1)
    run = read_run(pytester)
    # the accepted failure is not held against emu-b
    assert verdict(run, "drift")["verdict"] != "re-engineer", verdict(run, "drift")
    assert result.ret == pytest.ExitCode.OK
    assert run["gate"]["passed"] is True
    assert run["gate"]["regressions"] == []
    assert outcome_of(run, "test_x.py::test_drift[emu-b]") == "xfailed"
    # an xfailed outcome says nothing about the model: no sample, no evidence, never "migrate"
    assert cell(run, "drift", "test_x.py::test_drift", "emu-b") == {
        "passed": 0,
        "total": 0,
        "rate": None,
        "outcomes": ["xfailed"],
    }
    assert group_total(run, "drift", "emu-b")["total"] == 0
    assert verdict(run, "drift")["verdict"] == "investigate"
    result.stdout.fnmatch_lines(["  test_x.py::test_drift*1/1 100%*xfail"])
    assert_gate_line(result, run)


PLAIN_XFAIL = """
import pytest

@pytest.mark.prompt("plain")
@pytest.mark.xfail(reason="upstream flake, tracked", strict=False)
def test_plain(model):
    assert model != "emu-b"
"""


@pytest.mark.parametrize("gate", ["strict", "no-regression"])
def test_plain_xfail_marker_on_a_model_test_is_no_failure_and_no_regression(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, gate: str
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    pytester.makepyfile(test_x=PLAIN_XFAIL)
    result = pytester.runpytest(TWO_MODELS, f"--migration-gate={gate}", "--migration-json=run.json")
    result.assert_outcomes(xpassed=1, xfailed=1)  # non-strict xfail: emu-a passes anyway
    run = read_run(pytester)
    assert verdict(run, "plain")["verdict"] != "re-engineer", verdict(run, "plain")
    assert result.ret == pytest.ExitCode.OK
    assert run["gate"]["passed"] is True
    assert outcome_of(run, "test_x.py::test_plain[emu-a]") == "xpassed"
    assert outcome_of(run, "test_x.py::test_plain[emu-b]") == "xfailed"
    assert cell(run, "plain", "test_x.py::test_plain", "emu-a")["total"] == 1  # an xpass is evidence
    assert cell(run, "plain", "test_x.py::test_plain", "emu-b")["total"] == 0
    assert verdict(run, "plain")["verdict"] == "investigate"
    result.stdout.fnmatch_lines(["  test_x.py::test_plain*1/1 100%*xfail"])
    assert_gate_line(result, run)


# -- missing and stale recordings: not a model failure, but the gate cannot pass -------------------

ANSWER = """
import pytest
import app

@pytest.mark.prompt("greeting")
def test_greets(model):
    assert "Emulated reply" in app.chat(model, "Say hello")
"""


def test_missing_recording_fails_the_item_but_is_no_model_failure(project: pytest.Pytester) -> None:
    project.makepyfile(test_p=ANSWER)
    project.runpytest("--models=emu-a", "--record-mode=once").assert_outcomes(passed=1)

    # emu-b was never recorded: replaying it has nothing to answer with
    result = project.runpytest(TWO_MODELS, "--block-network", "--migration-json=run.json")
    result.assert_outcomes(passed=1, failed=1)  # the user sees the missing recording as a failure
    run = read_run(project)
    validate_run(run)
    # ... but it is not evidence that emu-b got worse
    assert verdict(run, "greeting")["verdict"] == "investigate", verdict(run, "greeting")
    assert outcome_of(run, "test_p.py::test_greets[emu-b]") == "missing"
    assert outcome_of(run, "test_p.py::test_greets[emu-a]") == "passed"
    assert cell(run, "greeting", "test_p.py::test_greets", "emu-b") == {
        "passed": 0,
        "total": 0,
        "rate": None,
        "outcomes": ["missing"],
    }
    result.stdout.fnmatch_lines(["  test_p.py::test_greets*1/1 100%*missing"])

    (missing,) = run["missing"]["recordings"]
    assert missing["nodeid"] == "test_p.py::test_greets[emu-b]"
    assert missing["test"] == "test_p.py::test_greets"
    assert missing["model"] == "emu-b"
    assert missing["cassette"].replace("\\", "/").endswith("cassettes/test_p/emu-b/test_greets.yaml")
    assert isinstance(missing["reason"], str) and missing["reason"]
    command = run["missing"]["command"]
    assert "test_p.py::test_greets[emu-b]" in command
    assert "--record-mode=once" in command

    # strict and no-regression cannot pass without the recording; the reason says why
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert run["gate"]["passed"] is False
    assert "missing" in run["gate"]["reason"].lower()
    assert_gate_line(result, run)
    gated = project.runpytest(TWO_MODELS, "--migration-gate=no-regression", "--migration-json=nr.json")
    assert gated.ret == pytest.ExitCode.TESTS_FAILED
    nr = read_run(project, "nr.json")
    assert nr["gate"]["passed"] is False
    assert "missing" in nr["gate"]["reason"].lower()
    assert verdict(nr, "greeting")["verdict"] == "investigate"
    assert_gate_line(gated, nr)
    # report mode reports it and exits 0; the item still fails
    report = project.runpytest(TWO_MODELS, "--migration-gate=report", "--migration-json=rep.json")
    report.assert_outcomes(passed=1, failed=1)
    assert report.ret == pytest.ExitCode.OK
    assert read_run(project, "rep.json")["missing"]["recordings"][0]["model"] == "emu-b"

    # the one command records what is missing; then everything replays
    project.runpytest(*command_args(command)).assert_outcomes(passed=1)
    replay = project.runpytest(TWO_MODELS, "--block-network", "--migration-json=after.json")
    replay.assert_outcomes(passed=2)
    assert read_run(project, "after.json").get("missing", {}).get("recordings", []) == []


def test_stale_recording_after_a_prompt_edit_is_missing_not_a_failure(project: pytest.Pytester) -> None:
    project.makepyfile(test_p=ANSWER)
    project.runpytest(TWO_MODELS, "--record-mode=once").assert_outcomes(passed=2)

    # the prompt is edited after recording: both cassettes exist, neither holds this request
    project.makepyfile(test_p=ANSWER.replace("Say hello", "Say hello, politely"))
    result = project.runpytest(TWO_MODELS, "--block-network", "--migration-json=run.json")
    result.assert_outcomes(failed=2)
    run = read_run(project)
    validate_run(run)
    assert verdict(run, "greeting")["verdict"] == "investigate", verdict(run, "greeting")
    assert outcome_of(run, "test_p.py::test_greets[emu-a]") == "missing"
    assert outcome_of(run, "test_p.py::test_greets[emu-b]") == "missing"
    assert cell(run, "greeting", "test_p.py::test_greets", "emu-b")["total"] == 0
    assert {m["nodeid"] for m in run["missing"]["recordings"]} == {
        "test_p.py::test_greets[emu-a]",
        "test_p.py::test_greets[emu-b]",
    }
    command = run["missing"]["command"]
    assert "test_p.py::test_greets[emu-a]" in command
    assert "test_p.py::test_greets[emu-b]" in command
    # The contract says "--record-mode=once", which does not re-record an existing cassette;
    # what matters is that running the command records them (below).
    assert "--record-mode=" in command
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert run["gate"]["passed"] is False
    assert "missing" in run["gate"]["reason"].lower()
    assert_gate_line(result, run)
    gated = project.runpytest(TWO_MODELS, "--migration-gate=no-regression")
    assert gated.ret == pytest.ExitCode.TESTS_FAILED
    report = project.runpytest(TWO_MODELS, "--migration-gate=report")
    assert report.ret == pytest.ExitCode.OK

    project.runpytest(*command_args(command)).assert_outcomes(passed=2)
    project.runpytest(TWO_MODELS, "--block-network").assert_outcomes(passed=2)


# -- errors and tests that never pass: no evidence for "migrate" -----------------------------------

ZERO_SAMPLES = """
import pytest

@pytest.mark.prompt("zero")
@pytest.mark.samples(0)
def test_zero(model):
    pass
"""


def test_samples_zero_is_an_error_naming_the_test_and_not_evidence(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_s=ZERO_SAMPLES)
    result = pytester.runpytest(TWO_MODELS, "-ra", "--migration-json=run.json")
    outcomes = result.parseoutcomes()
    assert "passed" not in outcomes
    assert outcomes.get("errors", 0) + outcomes.get("failed", 0) == 2
    result.stdout.fnmatch_lines(["*test_zero*samples*at least 1*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    run = read_run(pytester)
    assert outcome_of(run, "test_s.py::test_zero[emu-a]") == "error"
    assert outcome_of(run, "test_s.py::test_zero[emu-b]") == "error"
    # the setup error may come before the prompt marker is read: take the group the run gives
    (group,) = {o["group"] for o in run["outcomes"]}
    # no sample ran: nothing to migrate on
    assert verdict(run, group)["verdict"] != "migrate", verdict(run, group)
    assert cell(run, group, "test_s.py::test_zero", "emu-b") == {
        "passed": 0,
        "total": 0,
        "rate": None,
        "outcomes": ["error"],
    }
    assert group_total(run, group, "emu-a")["total"] == 0
    result.stdout.fnmatch_lines(["  *test_zero*error*error"])


FAILS_EVERYWHERE_SCRIPT = {
    "models": {
        model: {
            "rules": [
                {"match": "(?i)broken", "error": {"status": 500, "message": "upstream failure"}},
                {"match": "(?i)queue", "reply": "technical"},
            ]
        }
        for model in ("emu-a", "emu-b")
    }
}

FAILS_EVERYWHERE = """
import pytest
import app

@pytest.mark.prompt("broken")
@pytest.mark.record_provider_errors  # the prompt's answer is the error: keep it
def test_every_call_errors(model):
    assert app.chat(model, "a broken prompt")

@pytest.mark.prompt("wrong")
def test_every_model_fails(model):
    assert app.chat(model, "Which queue handles refunds?") == "billing"
"""


def test_a_prompt_that_no_model_passes_is_never_migrate(
    pytester: pytest.Pytester, start_emulator: Callable[..., Emulator]
) -> None:
    emulator = start_emulator(FAILS_EVERYWHERE_SCRIPT, test_f=FAILS_EVERYWHERE)
    pytester.runpytest(TWO_MODELS, "--record-mode=once").assert_outcomes(failed=4)
    assert {r.status for r in emulator.requests if "broken" in r.prompt} == {500}
    emulator.stop()

    result = pytester.runpytest(
        TWO_MODELS, "--migration-gate=no-regression", "--block-network", "--migration-json=run.json"
    )
    result.assert_outcomes(failed=4)
    run = read_run(pytester)
    # the candidate passed no sample at all: an equal 0% is no reason to migrate
    assert verdict(run, "broken")["verdict"] == "investigate", verdict(run, "broken")
    assert verdict(run, "wrong")["verdict"] == "investigate", verdict(run, "wrong")
    # the errors were recorded and replayed: these are failures, not missing recordings
    assert {o["outcome"] for o in run["outcomes"]} <= {"failed", "error"}
    assert run.get("missing", {}).get("recordings", []) == []
    assert_gate_line(result, run)


def test_a_missing_recording_under_xfail_is_still_missing(project: pytest.Pytester) -> None:
    """An expected failure must not hide that nothing was recorded to compare."""
    project.makepyfile(
        test_p=ANSWER.replace(
            '@pytest.mark.prompt("greeting")',
            '@pytest.mark.prompt("greeting")\n@pytest.mark.models(xfail={"emu-b": "known drift"})',
        )
    )
    project.makeini("[pytest]\nmodelmigrate_models = emu-a,emu-b\n")  # the marker names emu-b
    project.runpytest("--models=emu-a", "--record-mode=once").assert_outcomes(passed=1)
    result = project.runpytest(TWO_MODELS, "--block-network", "--migration-json=run.json")
    run = read_run(project)
    assert outcome_of(run, "test_p.py::test_greets[emu-b]") == "missing"
    assert [m["nodeid"] for m in run["missing"]["recordings"]] == ["test_p.py::test_greets[emu-b]"]
    assert run["gate"]["passed"] is False
    result.stdout.fnmatch_lines(["  test_p.py::test_greets*1/1 100%*missing"])
