"""baseline.py: saving a run and comparing a new run with it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from test_reports import finish_run, make_run, outcome

from pytest_modelmigrate.baseline import BaselineError, compare_runs, load_run, save_baseline
from pytest_modelmigrate.reports.markdown import render_markdown
from pytest_modelmigrate.reports.run import validate_run

if TYPE_CHECKING:
    from pathlib import Path


def _run(results: dict[tuple[str, str], list[str]]) -> dict[str, object]:
    return finish_run(
        [outcome(test, model, samples) for (test, model), samples in results.items()], ["a", "b"], gate=False
    )


def test_compare_classifies_every_test_model() -> None:
    p, f = ["passed"], ["failed"]
    old = _run(
        {("t.py::keep", "a"): p, ("t.py::breaks", "b"): p, ("t.py::fixed", "b"): f, ("t.py::gone", "a"): p}
    )
    new = _run(
        {("t.py::keep", "a"): p, ("t.py::breaks", "b"): f, ("t.py::fixed", "b"): p, ("t.py::new", "a"): f}
    )
    c = compare_runs(old, new)
    assert [(x.test, x.model) for x in c.regressions] == [("t.py::breaks", "b")]
    assert c.regressions[0].describe() == "1/1 -> 0/1"
    assert [x.test for x in c.improved] == ["t.py::fixed"]
    assert [x.test for x in c.appeared] == ["t.py::new"]
    assert [x.test for x in c.disappeared] == ["t.py::gone"]
    assert c.unchanged == 1
    assert c.regressed
    assert "metric_deltas" in c.to_dict()
    assert set(c.metric_deltas) == {"a", "b"}
    assert c.lines()[0].startswith("against baseline of ")
    json.dumps(c.to_dict())


def test_compare_with_samples_uses_fisher() -> None:
    def sampled(k: int) -> list[str]:
        return ["passed"] * k + ["failed"] * (20 - k)

    old = _run({("t.py::x", "a"): sampled(19), ("t.py::y", "a"): sampled(14)})
    new = _run({("t.py::x", "a"): sampled(11), ("t.py::y", "a"): sampled(13)})
    c = compare_runs(old, new)
    assert [x.test for x in c.regressions] == ["t.py::x"]
    assert c.regressions[0].p_value is not None
    assert c.regressions[0].p_value < 0.05
    assert [x.test for x in c.lower] == ["t.py::y"]  # lower, not significant: no regression


def test_skipped_on_one_side_is_not_compared() -> None:
    old = _run({("t.py::x", "a"): ["passed"]})
    new = _run({("t.py::x", "a"): ["skipped"]})
    c = compare_runs(old, new)
    assert not c.regressed
    assert len(c.not_compared) == 1


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    run = make_run()
    run["outcomes"][0]["dataset"] = [{"id": "ex1", "expected": "a", "predicted": "a"}]
    run["outcomes"][1]["message"] = "x" * 5000
    run["outcomes"][1]["checks"][0]["details"] = {"big": "y" * 1000}
    path = tmp_path / "baselines" / "run.json"
    save_baseline(run, path)
    loaded = load_run(path)
    validate_run(loaded)
    assert "dataset" not in loaded["outcomes"][0]
    assert len(loaded["outcomes"][1]["message"]) < 2100
    assert "details" not in loaded["outcomes"][1]["checks"][0]
    assert not compare_runs(loaded, run).regressed
    assert list(tmp_path.joinpath("baselines").iterdir()) == [path]  # no temp file left


def test_comparison_rides_in_the_run_and_reports(tmp_path: Path) -> None:
    old, new = make_run(regress=False), make_run()
    new["baseline"] = compare_runs(old, new).to_dict()
    validate_run(new)
    md = render_markdown(new)
    assert "### Against the baseline" in md
    assert "❌ 1 regression(s), 0 improved, 0 new, 0 gone" in md


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{oops", "not JSON (line 1, column 2"),
        ("[1, 2]", "not a pytest-modelmigrate run (a JSON object is expected)"),
        ('{"a": 1}', "no schema_version"),
        ('{"schema_version": 99, "outcomes": [], "models": []}', "schema_version 99 is not supported"),
        ('{"schema_version": 1, "models": []}', "'outcomes' missing or not a list"),
    ],
)
def test_not_a_run_names_the_path(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "thing.json"
    path.write_text(content)
    with pytest.raises(BaselineError) as info:
        load_run(path)
    assert str(info.value).startswith(str(path))
    assert expected in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="no such file"):
        load_run(tmp_path / "nope.json")


def test_each_example_of_a_dataset_test_is_compared_on_its_own() -> None:
    """The matrix row drops the example id; the baseline comparison must not."""

    def run(results: dict[str, bool]) -> dict[str, Any]:
        return {
            "created": "x",
            "outcomes": [
                {
                    "nodeid": f"t.py::test_ds[{ex}-m]",
                    "test": "t.py::test_ds",
                    "model": "m",
                    "group": "ds",
                    "passed": int(ok),
                    "total": 1,
                }
                for ex, ok in results.items()
            ],
        }

    old = run({"e1": True, "e2": True, "e3": True})
    new = run({"e1": True, "e2": False, "e3": True})
    comparison = compare_runs(old, new)
    assert comparison.unchanged == 2
    assert [(c.test, c.model) for c in comparison.regressions] == [("t.py::test_ds[e2]", "m")]


@pytest.mark.parametrize(
    ("outcome", "problem"),
    [
        ("nope", "outcomes[0] is not an object"),
        ({"model": "m"}, "outcomes[0] has no 'test' string"),
        (
            {"test": "t", "model": "m", "passed": "1", "total": 1},
            "outcomes[0] has 'passed'/'total' that are not",
        ),
        ({"test": "t", "model": "m", "passed": 2, "total": 1}, "outcomes[0] passed 2 of 1"),
        ({"test": "t", "model": "m", "group": 3}, "outcomes[0] has a 'group' that is not a string"),
    ],
)
def test_a_malformed_baseline_is_refused_by_name_before_any_test_runs(
    pytester: pytest.Pytester, outcome: object, problem: str
) -> None:
    bad = {"schema_version": 1, "models": [], "outcomes": [outcome]}
    (pytester.path / "base.json").write_text(json.dumps(bad))
    pytester.makepyfile("def test_it(model): raise AssertionError('must not run')")
    result = pytester.runpytest("--models=m", "--migration-baseline-compare=base.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    pattern = problem.replace("[", "?").replace("]", "?")  # fnmatch reads [0] as a character class
    result.stderr.fnmatch_lines([f"*--migration-baseline-compare: *base.json: {pattern}*"])
    with pytest.raises(BaselineError, match="base.json: " + problem.replace("[", r"\[").replace("]", r"\]")):
        load_run(pytester.path / "base.json")
