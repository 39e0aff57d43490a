"""The terminal matrix of a large suite reads group by group: passing test rows fold past a limit."""

from __future__ import annotations

from pytest_modelmigrate.reports.terminal import MAX_TEST_ROWS, matrix_lines
from pytest_modelmigrate.results import Cell, Group, Matrix, Row

MODELS = ["old", "new"]


def _matrix(groups: int, tests: int, failing: set[tuple[int, int]]) -> Matrix:
    built = []
    for g in range(groups):
        rows = []
        for t in range(tests):
            bad = (g, t) in failing
            cells = {
                "old": Cell(passed=1, total=1, outcomes=["passed"]),
                "new": Cell(passed=0 if bad else 1, total=1, outcomes=["failed" if bad else "passed"]),
            }
            rows.append(Row(name=f"test_g{g}.py::test_{t}", cells=cells))
        totals = {m: Cell(passed=sum(r.cells[m].passed for r in rows), total=tests) for m in MODELS}
        built.append(Group(name=f"group-{g}", tests=rows, totals=totals))
    totals = {m: Cell(passed=sum(g.totals[m].passed for g in built), total=groups * tests) for m in MODELS}
    return Matrix(models=MODELS, groups=built, totals=totals)


def test_a_small_matrix_shows_every_test() -> None:
    lines = matrix_lines(_matrix(2, 5, {(0, 1)}), max_tests=MAX_TEST_ROWS)
    assert len(lines) == 1 + 2 * (1 + 5) + 1
    assert not any("not shown" in line for line in lines)


def test_past_the_limit_only_tests_with_something_to_read_are_listed() -> None:
    failing = {(0, 3), (4, 10), (9, 99)}
    lines = matrix_lines(_matrix(10, 1000, failing), max_tests=MAX_TEST_ROWS)
    text = "\n".join(lines)
    assert len(lines) == 1 + 10 + len(failing) + 10 + 1 + 1  # header, groups, failing, folds, total, note
    for g, t in failing:
        assert f"  test_g{g}.py::test_{t} " in text
    assert "  (999 more test(s) not shown)" in text
    assert lines[-1].startswith("9997 test row(s) not shown: past 200 test rows")
    assert lines[-2].startswith("total")
    # every group row is there, in order, with its total
    assert [line.split()[0] for line in lines if line.startswith("group-")] == [
        f"group-{g}" for g in range(10)
    ]


def test_the_limit_caps_the_listed_rows_too_and_none_shows_all() -> None:
    failing = {(0, t) for t in range(500)}
    folded = matrix_lines(_matrix(1, 500, failing), max_tests=MAX_TEST_ROWS)
    assert sum(line.startswith("  test_") for line in folded) == MAX_TEST_ROWS
    assert "  (300 more test(s) not shown)" in folded
    full = matrix_lines(_matrix(1, 500, failing), max_tests=None)
    assert sum(line.startswith("  test_") for line in full) == 500
