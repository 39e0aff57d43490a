"""@pytest.mark.dataset with the `example` and `prediction` fixtures, end to end with pytester."""

from __future__ import annotations

import json

import pytest

from pytest_modelmigrate.reports.run import validate_run

CASES = "\n".join(
    json.dumps({"id": f"t{i}", "text": text, "label": label})
    for i, (text, label) in enumerate(
        [
            ("refund please", "billing"),
            ("app crashes", "tech"),
            ("invoice wrong", "billing"),
            ("cannot log in", "tech"),
            ("edge: charged after crash", "billing"),
        ]
    )
)

TESTS = """
import pytest

def classify(model, text):
    # a stand-in for the app's classifier: the candidate shifts the edge case
    if "edge" in text and model == "model-new":
        return "tech"
    return "billing" if any(w in text for w in ("refund", "invoice", "charged")) else "tech"

@pytest.mark.prompt("triage")
@pytest.mark.dataset("cases.jsonl", labels=["billing", "tech"])
def test_classify(model, example, prediction):
    prediction.label(classify(model, example["text"]))

@pytest.mark.dataset("extract.yaml")
def test_extract(model, example, prediction):
    prediction.fields({"amount": "12.004", "name": "ANN  LEE"}, spec={"amount": ("numeric", 0.01), "name": "normalized"})
"""

EXTRACT = """
examples:
  - id: e1
    expected: {amount: 12, name: Ann Lee}
"""


def test_dataset_rows_collapse_to_one_row_per_test_with_metrics(pytester: pytest.Pytester) -> None:
    pytester.makefile(".jsonl", cases=CASES)
    pytester.makefile(".yaml", extract=EXTRACT)
    pytester.makepyfile(test_ds=TESTS)
    result = pytester.runpytest("--models=old=model-old,new=model-new", "--migration-json=run.json", "-v")
    result.assert_outcomes(passed=11, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_classify[[]t0-old[]] PASSED*",
            "*test_classify[[]t4-new[]] FAILED*",
            "*example t4 (*cases.jsonl:5): predicted 'tech', expected 'billing'*",
        ]
    )
    # one row per dataset test, not per example
    result.stdout.fnmatch_lines(["triage*5/5 100%*4/5  80%", "  test_ds.py::test_classify*5/5 100%*4/5  80%"])
    run = json.loads((pytester.path / "run.json").read_text())
    validate_run(run)
    metrics = run["datasets"]["test_ds.py::test_classify"]
    assert metrics["old"]["classification"]["accuracy"] == 1.0
    assert metrics["new"]["classification"]["accuracy"] == 0.8
    assert metrics["new"]["classification"]["per_class"]["billing"]["recall"] == pytest.approx(2 / 3)
    assert metrics["new"]["failures"] == ["t4"]
    fields = run["datasets"]["test_ds.py::test_extract"]["new"]["fields"]["per_field"]
    assert {name: f["accuracy"] for name, f in fields.items()} == {"amount": 1.0, "name": 1.0}


def test_dataset_accuracy_drop_fails_the_no_regression_gate(pytester: pytest.Pytester) -> None:
    pytester.makefile(".jsonl", cases=CASES)
    pytester.makefile(".yaml", extract=EXTRACT)
    pytester.makepyfile(test_ds=TESTS)
    result = pytester.runpytest("--models=old=model-old,new=model-new", "--migration-gate=no-regression")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["migration gate (*): FAILED*dataset test_ds.py::test_classify on new: accuracy dropped by 0.200*"]
    )
    tolerant = pytester.runpytest(
        "--models=old=model-old,new=model-new", "--migration-gate=no-regression", "--migration-tolerance=0.4"
    )
    tolerant.stdout.fnmatch_lines(["migration gate (*): PASSED*"])
    assert tolerant.ret == pytest.ExitCode.OK


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"id": "a", "label": "billing"}\n{"id": "a", "label": "tech"}\n',
            "duplicate example id 'a': lines 1 and 2*",
        ),
        ('{"id": "a", "label": "billing"}\nnot json\n', "*cases.jsonl:2:*"),
        ('{"id": "a", "label": "refunds"}\n', "*outside the declared set*'refunds'*"),
    ],
)
def test_bad_dataset_files_fail_collection_naming_file_and_line(
    pytester: pytest.Pytester, content: str, message: str
) -> None:
    pytester.makefile(".jsonl", cases=content)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.dataset("cases.jsonl", labels=["billing", "tech"])
        def test_it(model, example):
            pass
        """
    )
    result = pytester.runpytest("--models=a")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"*test_it*{message}"])
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*During handling*")


def test_missing_dataset_file_names_the_path(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.dataset("nowhere.csv")
        def test_it(model, example):
            pass
        """
    )
    result = pytester.runpytest("--models=a")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*test_it*nowhere.csv*"])
