"""What keeps a large session cheap, and must not change what it decides or refuses.

The end of the session runs with the garbage collector held off and gives it back as it was; the
report-target check stats each input once and only when the report file exists; the evidence
flags of a group of thousands of tests are built without a scan per test; an item keeps no copy
of its record after its teardown, while JUnit XML still gets its properties; and ``model`` is
the one fixture that opens the cassette, so a test that parametrizes ``model`` itself still gets
the plain error when it asks for the plugin's checks.
"""

from __future__ import annotations

import gc
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_modelmigrate.analysis import gc_paused
from pytest_modelmigrate.reports.writers import ReportWriteError, check_report_targets
from pytest_modelmigrate.results import Outcome
from pytest_modelmigrate.under_evidence import under_evidence

# -- the garbage collector ------------------------------------------------------------------------


def test_gc_paused_holds_the_collector_off_and_gives_it_back() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("the analysis failed")
    assert gc.isenabled()  # restored when the block raises too


def test_gc_paused_leaves_a_disabled_collector_disabled() -> None:
    gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the user's (or another plugin's) choice stands
    finally:
        gc.enable()


def test_the_session_end_runs_with_the_collector_off_and_on_again(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmodelmigrate_models = emu-a, emu-b\n")
    pytester.makeconftest(
        """
import gc
import pytest

SEEN = []

def pytest_modelmigrate_run(config, run):
    SEEN.append(gc.isenabled())

@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"collector during the analysis: {SEEN}, after: {gc.isenabled()}")
"""
    )
    pytester.makepyfile("def test_it(model):\n    assert model\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["collector during the analysis: [[]False[]], after: True"])


# -- report targets against the run's inputs -----------------------------------------------------


def _inputs(*paths: Path) -> list[tuple[Path, str]]:
    return [(path, "a cassette") for path in paths]


def test_a_report_path_linked_to_a_cassette_is_refused(tmp_path: Path) -> None:
    cassette = tmp_path / "cassettes" / "test_x" / "emu-a" / "test_it.yaml"
    cassette.parent.mkdir(parents=True)
    cassette.write_text("interactions: []\nversion: 1\n")
    other = tmp_path / "cassettes" / "test_x" / "emu-a" / "test_other.yaml"
    other.write_text("interactions: []\nversion: 1\n")
    hard = tmp_path / "hard.json"
    os.link(cassette, hard)
    soft = tmp_path / "soft.json"
    soft.symlink_to(cassette)
    for target in (hard, soft):
        with pytest.raises(
            ReportWriteError, match=rf"--migration-json: refusing to write {target}: it is a cassette"
        ):
            check_report_targets([("--migration-json", target, "json")], _inputs(other, cassette))
    assert cassette.read_text() == "interactions: []\nversion: 1\n"  # nothing was touched


def test_a_report_path_that_does_not_exist_is_matched_by_name(tmp_path: Path) -> None:
    planned = tmp_path / "cassettes" / "not-yet.json"  # an input no run has written yet
    with pytest.raises(ReportWriteError, match="it is a cassette this run reads"):
        check_report_targets(
            [("--migration-json", tmp_path / "cassettes" / ".." / "cassettes" / "not-yet.json", "json")],
            _inputs(planned),
        )
    # another path that does not exist, and an existing report file that is no input: both fine
    check_report_targets([("--migration-json", tmp_path / "run.json", "json")], _inputs(planned))
    existing = tmp_path / "old-run.json"
    existing.write_text("{}")
    check_report_targets([("--migration-json", existing, "json")], _inputs(planned, tmp_path / "gone.yaml"))


# -- evidence flags over a large prompt group ----------------------------------------------------


def test_a_group_of_thousands_of_one_sample_tests_is_flagged_once_with_every_test() -> None:
    tests = [f"test_x.py::test_{i}" for i in range(3000)]
    outcomes = [
        Outcome(nodeid=f"{t}[{m}]", test=t, model=m, group="g", outcome="passed")
        for t in tests
        for m in ("emu-a", "emu-b")
    ]
    # a prompt variant of one test: the best-sampled one counts, the test once
    outcomes.append(
        Outcome(nodeid="v", test=tests[0], model="emu-b", group="g", outcome="passed", samples=["passed"])
    )
    flags = under_evidence(outcomes, verdicts=[("g", "emu-b")], incumbent="emu-a")
    assert [(f.kind, f.group, f.candidate, f.tests) for f in flags] == [("samples", "g", "emu-b", 3000)]
    # two samples on the incumbent and the candidate for one test: that group is not flagged
    outcomes += [
        Outcome(nodeid=f"s{m}", test=tests[1], model=m, group="g", outcome="passed", samples=["passed"] * 2)
        for m in ("emu-a", "emu-b")
    ]
    assert under_evidence(outcomes, verdicts=[("g", "emu-b")], incumbent="emu-a") == []


# -- what an item keeps, and the one fixture that opens the cassette -------------------------------


def test_an_item_keeps_no_record_after_teardown_and_junit_still_gets_its_properties(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nmodelmigrate_models = emu-a, emu-b\n")
    pytester.makeconftest(
        """
import pytest

KEPT = []

def pytest_sessionfinish(session):
    for item in session.items:
        KEPT.append((item.name, sorted(name for name, _ in item.user_properties)))

def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"kept: {KEPT}")
"""
    )
    pytester.makepyfile(
        """
import pytest

@pytest.mark.prompt("greeting")
def test_it(model, record_property):
    record_property("mine", "kept")
    assert model
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--junitxml=junit.xml")
    result.assert_outcomes(passed=2)
    names = "[[]'checks_failed', 'mine', 'model', 'prompt'[]]"
    result.stdout.fnmatch_lines(
        [f"kept: [[](*test_it[[]emu-a[]]*, {names}), (*test_it[[]emu-b[]]*, {names})[]]"]
    )
    root = ET.parse(pytester.path / "junit.xml").getroot()
    props = {
        case.get("name"): [(p.get("name"), p.get("value")) for p in case.iter("property")]
        for case in root.iter("testcase")
    }
    assert props["test_it[emu-b]"] == [
        ("mine", "kept"),
        ("model", "emu-b"),
        ("prompt", "greeting"),
        ("checks_failed", ""),
    ]


def test_a_test_parametrizing_model_itself_gets_the_plain_error_from_the_checks(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nmodelmigrate_models = emu-a, emu-b\n")
    pytester.makepyfile(
        """
import pytest

@pytest.mark.parametrize("model", ["my-own"])
def test_own(model, checks):
    pass

@pytest.mark.parametrize("model", ["my-own"])
def test_own_without_checks(model):
    assert model == "my-own"

def test_checks_alone(checks):
    checks.json_strict('{"a": 1}')
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_own[[]my-own[]]*uses the `model` fixture, but no models are configured for it*"
            "was not parametrized by pytest-modelmigrate*"
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")
