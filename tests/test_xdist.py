"""The same matrix with no xdist, -n 0 and -n 2; a worker killed mid-test still counts, as failed."""

from __future__ import annotations

import json

import pytest

SUITE = """
import pytest

@pytest.mark.prompt("triage")
@pytest.mark.parametrize("case", range(6))
def test_triage(model, case):
    assert not (model == "model-b" and case % 3 == 0)

@pytest.mark.prompt("summary")
def test_summary(model):
    assert model != "model-c"

def test_module_level(model):
    pass
"""


def _matrix(pytester: pytest.Pytester, *args: str) -> dict[str, object]:
    result = pytester.runpytest_subprocess(
        "--models=a=model-a,b=model-b,c=model-c", "--migration-json=run.json", *args
    )
    result.assert_outcomes(passed=21, failed=3)
    result.stdout.fnmatch_lines(["*model migration matrix*"])
    run = json.loads((pytester.path / "run.json").read_text())
    return {"matrix": run["matrix"], "outcomes": sorted((o["nodeid"], o["outcome"]) for o in run["outcomes"])}


def test_same_matrix_without_xdist_with_n0_and_n2(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    plain = _matrix(pytester)
    n0 = _matrix(pytester, "-n", "0")
    n2 = _matrix(pytester, "-n", "2")
    assert plain == n0 == n2
    groups = {g["name"]: g["totals"] for g in plain["matrix"]["groups"]}  # type: ignore[index]
    assert groups["triage"]["b"]["passed"] == 4 and groups["triage"]["b"]["total"] == 6
    assert groups["summary"]["c"]["passed"] == 0
    assert [g["name"] for g in plain["matrix"]["groups"]] == ["triage", "summary", "test_suite.py"]  # type: ignore[index]


def test_worker_killed_mid_test_shows_as_failed_in_the_matrix(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_crash="""
        import os

        def test_fine(model):
            pass

        def test_dies(model):
            if model == "model-b":
                os._exit(1)
        """
    )
    result = pytester.runpytest_subprocess(
        "--models=a=model-a,b=model-b", "-n", "2", "--migration-json=run.json", "--max-worker-restart=4"
    )
    result.stdout.fnmatch_lines(["*crashed while running*test_dies[[]b[]]*", "*model migration matrix*"])
    run = json.loads((pytester.path / "run.json").read_text())
    outcomes = {o["nodeid"]: o for o in run["outcomes"]}
    dead = outcomes["test_crash.py::test_dies[b]"]
    assert dead["outcome"] == "failed"
    assert dead["test"] == "test_crash.py::test_dies"
    assert dead["model"] == "b"
    assert "crashed" in dead["message"]
    assert outcomes["test_crash.py::test_dies[a]"]["outcome"] == "passed"
    cells = run["matrix"]["groups"][0]["tests"]
    row = next(r for r in cells if r["name"] == "test_crash.py::test_dies")
    assert row["cells"]["b"] == {"passed": 0, "total": 1, "rate": 0.0, "outcomes": ["failed"]}
