"""The migration document: a prompt's version and rationale, and its regression cases with their triage."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from pytest_modelmigrate.emulator import Emulator
from pytest_modelmigrate.reports.migration_doc import render_migration_doc

StartEmulator = Callable[..., Emulator]

SCRIPT = {
    "models": {
        "emu-old": {"default": "- one\n- two\n- three"},
        "emu-new": {
            "rules": [{"match": "refund", "reply": "- one\n- two\n- three\n- four"}],
            "default": "- one\n- two\n- three",
        },
    }
}

TESTS = """
import pytest
import app

pytestmark = pytest.mark.prompt(
    "summary", purpose="three bullets for the agent", version="v3", deterministic=True,
    rationale="gpt-4.1 wrote four bullets; the prompt now says 'exactly three'", target_model="emu-new",
)

@pytest.mark.regression_case("4 bullets on a refund ticket", fixed_in="v3")
def test_refund_ticket_has_three_bullets(model):
    assert app.chat(model, "summarize the refund ticket").count("- ") == 3

@pytest.mark.regression_case("4 bullets on a long ticket", fixed_in="v2")
def test_long_ticket_has_three_bullets(model):
    assert app.chat(model, "summarize the long ticket").count("- ") == 3

def test_short_ticket(model):
    assert app.chat(model, "summarize the short ticket")
"""


def test_the_document_lists_version_rationale_and_regression_cases_with_triage(
    pytester: pytest.Pytester, start_emulator: StartEmulator
) -> None:
    start_emulator(SCRIPT, test_s=TESTS)
    result = pytester.runpytest("--models=emu-old,emu-new", "--record-mode=once", "--migration-json=run.json")
    result.assert_outcomes(passed=5, failed=1)
    run = json.loads((pytester.path / "run.json").read_text())
    cases = {o["nodeid"]: o.get("regression_case") for o in run["outcomes"]}
    assert cases["test_s.py::test_refund_ticket_has_three_bullets[emu-new]"] == {
        "description": "4 bullets on a refund ticket",
        "fixed_in": "v3",
    }
    assert cases["test_s.py::test_short_ticket[emu-new]"] is None
    prompt = run["outcomes"][0]["prompt"]
    assert (prompt["version"], prompt["target_model"]) == ("v3", "emu-new")

    doc = render_migration_doc(run)
    assert "**Version:** v3, tuned for emu-new. Why: gpt-4.1 wrote four bullets" in doc
    section = doc.split("### Regression cases", 1)[1].split("### Tests", 1)[0]
    refund, long = (r"test\_s.py::test\_refund\_ticket\_has\_three\_bullets", r"test\_long\_ticket")
    assert f"| 4 bullets on a refund ticket | v3 | {refund} | 1/1 100% | 0/1 0% |" in section
    assert "| 4 bullets on a long ticket | v2 | " + r"test\_s.py::" + long in section
    assert r"short\_ticket" not in section  # not a regression case: listed under Tests only
    assert (
        "- emu-new: investigate (1 of 2 regression case(s) pass) (statistical verdict: re-engineer)"
        in section
    )
    assert r"short\_ticket" in doc.split("### Tests", 1)[1]


def test_all_cases_passing_or_failing_give_migrate_as_is_or_re_engineer() -> None:
    from pytest_modelmigrate.reports.migration_doc import _case_triage

    passing = {"passed": 3, "total": 3}
    failing = {"passed": 0, "total": 3}
    assert _case_triage([passing, passing]) == "migrate as is (all 2 regression case(s) pass)"
    assert _case_triage([failing, failing]) == "re-engineer (all 2 regression case(s) fail)"
    assert (
        _case_triage([passing, {"passed": 1, "total": 3}]) == "investigate (1 of 2 regression case(s) pass)"
    )
    assert _case_triage([None, {"passed": 0, "total": 0}]) == "no evidence"


@pytest.mark.parametrize(
    ("mark", "message"),
    [
        ("@pytest.mark.regression_case()", "regression_case needs what went wrong first"),
        ("@pytest.mark.regression_case('x', fixed='v2')", "regression_case needs what went wrong first"),
        ("@pytest.mark.prompt('p', version=['v1'])", "prompt(version=['v1']) must be a string"),
        ("@pytest.mark.prompt('p', owner='me')", "got unknown argument(s) ['owner']"),
    ],
)
def test_bad_markers_name_the_test_and_the_fix(
    pytester: pytest.Pytester, start_emulator: StartEmulator, mark: str, message: str
) -> None:
    start_emulator(SCRIPT, test_m=f"import pytest\n\n{mark}\ndef test_it(model):\n    pass\n")
    result = pytester.runpytest("--models=emu-old", "--record-mode=once")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*test_m.py::test_it[[]emu-old[]]*{message.replace('[', '[[]')}*"])
