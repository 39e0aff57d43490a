"""syrupy per model: __snapshots__/<model>/..., and a subset of models never deletes the others'."""

from __future__ import annotations

import pytest

TESTS = """
def test_answer(model, snapshot_model):
    assert {"model": model, "answer": "42"} == snapshot_model
"""


def test_snapshots_per_model_survive_a_subset_update(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmodelmigrate_models = old=model-old, new=model-new\n")
    pytester.makepyfile(test_snap=TESTS)
    pytester.runpytest("--snapshot-update").assert_outcomes(passed=2)
    snapshots = sorted(p.relative_to(pytester.path).as_posix() for p in pytester.path.rglob("*.json"))
    assert snapshots == [
        "__snapshots__/new/test_snap/test_answer[new].json",
        "__snapshots__/old/test_snap/test_answer[old].json",
    ]
    old = pytester.path / snapshots[1]
    before = old.read_text()
    assert "model-old" in before

    # updating the candidate only: the incumbent's snapshot is neither unused nor deleted
    result = pytester.runpytest("--models=new", "--snapshot-update")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*deleted*")
    assert old.read_text() == before

    # a changed answer on one model fails that model only
    (pytester.path / snapshots[0]).write_text(
        (pytester.path / snapshots[0]).read_text().replace('"42"', '"41"')
    )
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(["*test_answer[[]old[]] PASSED*", "*test_answer[[]new[]] FAILED*"])
