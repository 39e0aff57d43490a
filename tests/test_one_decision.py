"""One decision per run: every renderer tells the gate's verdict the same way, and every rule agrees.

- the gate line is ``migration gate (MODE): PASSED|FAILED: REASON``, built from ``run["gate"]``;
  the terminal ends with it, ``modelmigrate show`` prints it, the Markdown carries its reason;
- every regression that fails the gate is in ``run["gate"]["regressions"]`` with its ``source``,
  and the verdict of its group says ``re-engineer`` with the same numbers;
- ``--samples=auto`` plans (``adaptive.decide``) with the documented sequential rule
  (``sequential.replay_decisions``), so the two never disagree.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_modelmigrate.adaptive import decide
from pytest_modelmigrate.cli import main
from pytest_modelmigrate.sequential import AdaptivePolicy, replay_decisions

if TYPE_CHECKING:
    from pathlib import Path


def read_run(pytester: pytest.Pytester, name: str = "run.json") -> dict[str, Any]:
    run: dict[str, Any] = json.loads((pytester.path / name).read_text())
    return run


def assert_gate_line(result: pytest.RunResult, run: dict[str, Any]) -> str:
    """The run's gate line is built from its mode, passed and reason, and the terminal ends with it."""
    gate = run["gate"]
    word = "PASSED" if gate["passed"] else "FAILED"
    line: str = gate["line"]
    assert line == f"migration gate ({gate['mode']}): {word}: {gate['reason']}"
    printed = [text for text in result.outlines if text.startswith("migration gate")]
    assert printed, "no gate line in the terminal"
    assert printed[-1] == line
    return line


def markdown_text(path: Path) -> str:
    """The Markdown report with its inline escapes undone and whitespace collapsed, to search for text."""
    text = re.sub(r"\\([\\`*_\[\]|#~])", r"\1", path.read_text(encoding="utf-8"))
    return " ".join(html.unescape(text).split())


# -- one model, a baseline: the regression is the reason everywhere --------------------------------

ANSWER = """
from pathlib import Path

import pytest

@pytest.mark.prompt("answer")
def test_answer(model):
    # the app's answer, as this run sees it
    assert Path(__file__).with_name("answer.txt").read_text() == "42"
"""


def test_a_baseline_regression_is_the_gate_reason_in_every_report(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    pytester.makepyfile(test_answer=ANSWER)
    pytester.path.joinpath("answer.txt").write_text("42")
    saved = pytester.runpytest("--models=gpt-4o", "--migration-baseline-save=base.json")
    saved.assert_outcomes(passed=1)

    pytester.path.joinpath("answer.txt").write_text("41")  # the answer changed since the baseline
    result = pytester.runpytest(
        "--models=gpt-4o",
        "--migration-gate=no-regression",
        "--migration-baseline-compare=base.json",
        "--migration-json=run.json",
        "--migration-markdown=run.md",
    )
    result.assert_outcomes(failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    run = read_run(pytester)
    gate = run["gate"]
    # the reason is the baseline regression, not "no regression against gpt-4o"
    assert "baseline" in gate["reason"], gate["reason"]
    assert gate["passed"] is False
    (regression,) = [r for r in gate["regressions"] if r["source"] == "baseline"]
    assert regression["test"] == "test_answer.py::test_answer"
    assert regression["group"] == "answer"
    assert regression["candidate"] == "gpt-4o"
    assert isinstance(regression["summary"], str) and regression["summary"]
    for r in gate["regressions"]:
        assert r["source"] in {"test", "group", "dataset", "baseline", "sequential"}

    # one line, everywhere
    line = assert_gate_line(result, run)
    capsys.readouterr()
    assert main(["show", str(pytester.path / "run.json")]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert line in shown
    assert [text for text in shown if text.startswith("migration gate")] == [line]
    markdown = markdown_text(pytester.path / "run.md")
    assert " ".join(gate["reason"].split()) in markdown
    assert "no regression against gpt-4o" not in markdown


# -- a dataset rule that fails the gate makes the verdict ------------------------------------------

CASES = "\n".join(
    json.dumps({"id": f"{label}{i}", "text": f"{word} {i}", "label": label})
    for label, word in (("billing", "refund"), ("tech", "crash"))
    for i in range(10)
).replace('"refund 0"', '"edge: refund after a crash"')

DATASET_TESTS = """
import pytest

def classify(model, text):
    # a stand-in for the app's classifier: the candidate shifts one edge case
    if "edge" in text and model == "model-new":
        return "tech"
    return "billing" if "refund" in text else "tech"

@pytest.mark.prompt("triage")
@pytest.mark.dataset("cases.jsonl", labels=["billing", "tech"])
def test_classify(model, example, prediction):
    prediction.label(classify(model, example["text"]))
"""

# 20 examples, one billing example lost: accuracy 1.000 -> 0.950 (a 0.05 drop, one example, far
# from significant), billing recall 1.000 -> 0.900.
DATASET_RULES = [
    pytest.param("0", "accuracy", id="tolerance-0-accuracy-drop"),
    pytest.param("0.05", "recall of class 'billing'", id="tolerance-0.05-recall-drop"),
]


@pytest.mark.parametrize(("tolerance", "rule"), DATASET_RULES)
def test_a_dataset_rule_that_fails_the_gate_makes_the_verdict_re_engineer(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tolerance: str, rule: str
) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    pytester.makefile(".jsonl", cases=CASES)
    pytester.makepyfile(test_ds=DATASET_TESTS)
    result = pytester.runpytest(
        "--models=old=model-old,new=model-new",
        "--migration-gate=no-regression",
        f"--migration-tolerance={tolerance}",
        "--migration-json=run.json",
    )
    result.assert_outcomes(passed=39, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    run = read_run(pytester)
    gate = run["gate"]
    verdict = gate["verdicts"]["triage"]["new"]
    # the gate fails on the dataset rule, so the group cannot be "migrate" or "investigate"
    assert verdict["verdict"] == "re-engineer", verdict["reason"]
    assert gate["passed"] is False
    (regression,) = [r for r in gate["regressions"] if r["source"] == "dataset"]
    assert regression["group"] == "triage"
    assert regression["test"] == "test_ds.py::test_classify"
    assert regression["candidate"] == "new"
    assert rule in regression["summary"]
    if tolerance == "0.05":
        assert "accuracy dropped" not in regression["summary"]  # 0.05 is within the tolerance
    # the verdict quotes the numbers the gate failed on
    figures = re.findall(r"\(([^()]*->[^()]*)\)", regression["summary"])
    assert figures, regression["summary"]
    for figure in figures:
        assert figure in verdict["reason"], (figure, verdict["reason"])
    result.stdout.fnmatch_lines(["triage*new: re-engineer: *"])
    assert_gate_line(result, run)


# -- the adaptive plan and the sequential rule are one loop ----------------------------------------


@st.composite
def complete_rounds(draw: st.DrawFn) -> tuple[AdaptivePolicy, dict[str, list[tuple[bool, bool]]]]:
    """A policy and a group of 1-3 tests with the same number of rounds (1-20) of (incumbent, candidate) passes."""
    min_samples = draw(st.integers(min_value=1, max_value=20), label="min_samples")
    policy = AdaptivePolicy(min_samples=min_samples, max_samples=20, alpha=0.05)
    tests = draw(st.integers(min_value=1, max_value=3), label="tests")
    rounds = draw(st.integers(min_value=1, max_value=20), label="rounds")
    pair = st.tuples(st.booleans(), st.booleans())
    pairs = {
        f"t.py::test_{i}": draw(st.lists(pair, min_size=rounds, max_size=rounds), label=f"test_{i}")
        for i in range(tests)
    }
    return policy, pairs


def _samples(passes: list[bool]) -> list[str]:
    return ["passed" if ok else "failed" for ok in passes]


@settings(derandomize=True, max_examples=300, deadline=None)
@given(case=complete_rounds())
def test_the_adaptive_plan_decides_as_the_sequential_rule_replays(
    case: tuple[AdaptivePolicy, dict[str, list[tuple[bool, bool]]]],
) -> None:
    policy, pairs = case
    outcomes = {
        test: {"inc": _samples([a for a, _ in ps]), "cand": _samples([b for _, b in ps])}
        for test, ps in pairs.items()
    }
    plan = decide(outcomes, {test: "g" for test in pairs}, "inc", ["cand"], policy)

    # one alpha for the whole run: half to the T per-test comparisons, half to the G = 1 group
    # comparison (K = 1 candidate)
    test_policy = dataclasses.replace(policy, alpha=policy.alpha / (2 * len(pairs)))
    group_policy = dataclasses.replace(policy, alpha=policy.alpha / 2)
    # each test alone: one pair per round
    for test, ps in pairs.items():
        assert plan.test_decisions[test]["cand"].status == replay_decisions(ps, test_policy)[-1].status
    # the group: round by round, one pair of every test per round, decided after complete rounds
    rounds = len(next(iter(pairs.values())))
    interleaved = [pairs[test][i] for i in range(rounds) for test in pairs]
    replayed = replay_decisions(interleaved, group_policy, tests=len(pairs))
    assert plan.group_decisions["g"]["cand"].status == replayed[-1].status
