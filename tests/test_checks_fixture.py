"""The `checks` fixture, samples, the gate's exit status and the per-check breakdown, end to end."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from pytest_modelmigrate.emulator import Emulator
from pytest_modelmigrate.reports.run import validate_run

SCRIPT = {
    "models": {
        "emu-old": {
            "rules": [
                {"match": "(?i)summar", "reply": "- one\n- two\n- three"},
                {"match": "(?i)classify", "json": {"queue": "billing"}},
                {
                    "match": "(?i)flaky",
                    "choices": [{"weight": 7, "reply": "ok"}, {"weight": 3, "reply": "bad"}],
                },
            ]
        },
        "emu-new": {
            "rules": [
                {"match": "(?i)summar", "reply": "- one\n- two\n- three\n- four"},
                {"match": "(?i)classify", "json": {"queue": "billing"}, "wrap_json": 1.0},
                {
                    "match": "(?i)flaky",
                    "choices": [{"weight": 7, "reply": "ok"}, {"weight": 3, "reply": "bad"}],
                },
            ]
        },
    }
}

TESTS = """
import pytest
import app

# summary and triage answer the same every time (temperature 0): declared deterministic, a
# one-sample pass -> fail flip is a regression; the flaky prompt is compared statistically
@pytest.mark.prompt("summary", purpose="three bullets", deterministic=True)
def test_summary(model, checks):
    text = app.chat(model, "Summarize the ticket")
    checks.bullets(text, exactly=3)
    checks.max_words(text, 40)

@pytest.mark.prompt("triage", deterministic=True)
def test_classify(model, checks):
    app.chat(model, "Classify this ticket as JSON")
    checks.json_strict()          # reads the test's last recorded call
    checks.json_lenient()

@pytest.mark.prompt("flaky")
@pytest.mark.samples(20)
def test_flaky(model, checks):
    checks.contains(app.chat(model, "a flaky prompt"), "ok")
"""


@pytest.fixture
def scripted(pytester: pytest.Pytester, start_emulator: Callable[..., Emulator]) -> pytest.Pytester:
    emulator = start_emulator(SCRIPT, test_prompts=TESTS)
    pytester.runpytest("--models=emu-old,emu-new", "--record-mode=once").assert_outcomes(passed=2, failed=4)
    emulator.stop()
    return pytester


def test_soft_checks_run_all_and_fail_at_the_end_listing_each(scripted: pytest.Pytester) -> None:
    result = scripted.runpytest("--models=emu-old,emu-new", "--migration-json=run.json")
    result.assert_outcomes(passed=2, failed=4)
    result.stdout.fnmatch_lines(
        [
            "*1 of 2 checks failed for test_prompts.py::test_summary[[]emu-new[]] (model emu-new):*",
            "*bullets*expected exactly 3 bullet points, found 4*",
        ]
    )
    run = json.loads((scripted.path / "run.json").read_text())
    validate_run(run)
    by_id = {o["nodeid"]: o for o in run["outcomes"]}
    new_summary = by_id["test_prompts.py::test_summary[emu-new]"]
    assert [(c["name"], c["passed"]) for c in new_summary["checks"]] == [
        ("bullets", False),
        ("max_words", True),
    ]
    classify = by_id["test_prompts.py::test_classify[emu-new]"]
    assert [(c["name"], c["passed"]) for c in classify["checks"]] == [
        ("json_strict", False),
        ("json_lenient", True),
    ]
    # the breakdown: which invariant broke on which model, how often (per sample)
    checks = run["checks"]["checks"]
    assert checks["bullets"]["emu-new"]["failed"] == 1 and checks["bullets"]["emu-old"]["failed"] == 0
    assert checks["json_strict"]["emu-new"]["failed"] == 1
    result.stdout.fnmatch_lines(["checks that failed*", "*bullets*", "*json_strict*"])


def test_samples_are_episodes_of_one_cassette_and_replay_in_order(scripted: pytest.Pytester) -> None:
    cassette = scripted.path / "cassettes" / "test_prompts" / "emu-old" / "test_flaky.yaml"
    assert len(yaml.safe_load(cassette.read_text())["interactions"]) == 20
    first = scripted.runpytest("--models=emu-old,emu-new", "--migration-json=a.json")
    second = scripted.runpytest("--models=emu-old,emu-new", "--migration-json=b.json")
    a = json.loads((scripted.path / "a.json").read_text())
    b = json.loads((scripted.path / "b.json").read_text())
    assert a["matrix"] == b["matrix"]
    flaky = {o["model"]: o for o in a["outcomes"] if o["test"].endswith("test_flaky")}
    assert flaky["emu-old"]["total"] == 20 and len(flaky["emu-old"]["samples"]) == 20
    assert 8 <= flaky["emu-old"]["passed"] <= 19  # the scripted 70%, drawn deterministically
    # every sample's checks are kept with its index
    assert sorted({c["sample"] for c in flaky["emu-old"]["checks"]}) == list(range(20))
    first.stdout.fnmatch_lines(["*samples failed on emu-old*"])
    second.stdout.fnmatch_lines(["flaky*"])


def test_gate_modes_decide_the_exit_status(scripted: pytest.Pytester) -> None:
    strict = scripted.runpytest("--models=emu-old,emu-new")
    assert strict.ret == pytest.ExitCode.TESTS_FAILED

    report = scripted.runpytest("--models=emu-old,emu-new", "--migration-gate=report")
    assert report.ret == pytest.ExitCode.OK
    report.assert_outcomes(passed=2, failed=4)  # reports stay honest: failed tests still show as failed

    regression = scripted.runpytest(
        "--models=emu-old,emu-new", "--migration-gate=no-regression", "--migration-json=g.json"
    )
    assert regression.ret == pytest.ExitCode.TESTS_FAILED
    regression.stdout.fnmatch_lines(["migration gate (*): FAILED*"])
    gate = json.loads((scripted.path / "g.json").read_text())["gate"]
    verdicts = {g: v["emu-new"]["verdict"] for g, v in gate["verdicts"].items()}
    # summary and triage break on the candidate (deterministic prompts, 1 sample each: a pass
    # turning into a fail is a regression); the equally flaky prompt, 20 samples on both, is not
    # called a regression
    assert verdicts["summary"] == "re-engineer"
    assert verdicts["triage"] == "re-engineer"
    assert verdicts["flaky"] != "re-engineer"
    assert gate["verdicts"]["summary"]["emu-new"]["deterministic"] is True
    assert gate["verdicts"]["flaky"]["emu-new"]["deterministic"] is False
    assert {(r["group"], r["test"]) for r in gate["regressions"]} == {
        ("summary", "test_prompts.py::test_summary"),
        ("triage", "test_prompts.py::test_classify"),
    }
    assert all("(deterministic)" in r["summary"] for r in gate["regressions"])

    # only the flaky prompt: failures, but no regression -> the gate passes
    only_flaky = scripted.runpytest(
        "--models=emu-old,emu-new", "--migration-gate=no-regression", "-k", "flaky"
    )
    only_flaky.stdout.fnmatch_lines(["migration gate (*): PASSED*"])
    assert only_flaky.ret == pytest.ExitCode.OK


def test_reports_markdown_html_and_step_summary(
    scripted: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = scripted.runpytest(
        "--models=emu-old,emu-new",
        "--migration-gate=no-regression",
        "--migration-markdown=out/report.md",
        "--migration-html=out/report.html",
        "--migration-baseline-save=baseline.json",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    markdown = (scripted.path / "out" / "report.md").read_text()
    assert "FAILED" in markdown and "emu-new" in markdown
    html = (scripted.path / "out" / "report.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html>") and "emu-new" in html
    assert summary.read_text().startswith("earlier step\n") and "emu-new" in summary.read_text()
    # comparing with the saved baseline: the same cassettes, so nothing regressed against it
    again = scripted.runpytest(
        "--models=emu-old,emu-new", "--migration-gate=report", "--migration-baseline-compare=baseline.json"
    )
    again.stdout.fnmatch_lines(["against baseline*0 regression(s)*"])


def test_bad_baseline_file_is_a_usage_error_naming_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_it(model): pass")
    (pytester.path / "base.json").write_text("{not json")
    result = pytester.runpytest("--models=a", "--migration-baseline-compare=base.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--migration-baseline-compare: *base.json: not JSON*"])


def test_check_without_output_or_call_names_the_check_and_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_it(model, checks):\n    checks.json_strict()\n")
    result = pytester.runpytest("--models=a")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_it[[]a[]]*json_strict: no output given and no model call recorded*"])
    result.stdout.no_fnmatch_line("*Traceback*")


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["no-xdist", "xdist"])
def test_junit_xml_properties_name_model_prompt_and_failed_checks(
    scripted: pytest.Pytester, workers: list[str]
) -> None:
    import xml.etree.ElementTree as ET

    scripted.runpytest("--models=emu-old,emu-new", "--junitxml=junit.xml", *workers)
    root = ET.parse(scripted.path / "junit.xml").getroot()
    props = {
        f"{case.get('name')}": [(p.get("name"), p.get("value")) for p in case.iter("property")]
        for case in root.iter("testcase")
    }
    assert props["test_summary[emu-new]"] == [
        ("model", "emu-new"),
        ("prompt", "summary"),
        ("checks_failed", "bullets"),
    ]
    assert props["test_summary[emu-old]"] == [
        ("model", "emu-old"),
        ("prompt", "summary"),
        ("checks_failed", ""),
    ]
    assert ("checks_failed", "json_strict") in props["test_classify[emu-new]"]
    # the controller's record (calls, checks) is not written into the XML
    assert not any(name.startswith("modelmigrate") for case in props.values() for name, _ in case)
