"""The findings, the paired drop and the recommendation, end to end through the plugin.

Each project's tests call no model: they pass or fail on the ``model`` fixture's value, so the
pass-rate matrix is known in advance. The run JSON (``--migration-json``) and the terminal are
checked: ``gate.verdicts[group][candidate]`` (``finding``, ``delta``, ``changed``),
``gate.recommendations``, ``gate.sunset`` and the ``recommendation:``/``sunset:`` lines.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

TWO = "--models=a,b"

FLIP = """
import pytest

@pytest.mark.prompt("g"{flags})
def test_flip(model):
    assert model == "a", "the candidate answers differently"

@pytest.mark.prompt("g"{flags})
def test_same(model):
    assert model in ("a", "b")
"""

ALWAYS = """
import pytest

@pytest.mark.prompt("g")
@pytest.mark.samples({n})
def test_one(model):
    assert model

@pytest.mark.prompt("g")
@pytest.mark.samples({n})
def test_two(model):
    assert model
"""


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


def read_run(pytester: pytest.Pytester, name: str = "out.json") -> dict[str, Any]:
    run: dict[str, Any] = json.loads((pytester.path / name).read_text())
    return run


def verdict(run: dict[str, Any], group: str = "g", cand: str = "b") -> dict[str, Any]:
    found: dict[str, Any] = run["gate"]["verdicts"][group][cand]
    return found


def recommendation(run: dict[str, Any], cand: str = "b") -> dict[str, Any]:
    found = [r for r in run["gate"]["recommendations"] if r["candidate"] == cand]
    assert len(found) == 1, run["gate"]["recommendations"]
    first: dict[str, Any] = found[0]
    return first


def printed(result: pytest.RunResult, prefix: str) -> list[str]:
    return [line for line in result.outlines if line.startswith(prefix)]


def run_date(run: dict[str, Any]) -> date:
    return datetime.fromisoformat(run["created"]).date()


# -- one sample per model: a flip is `changed`, unless the prompt is deterministic ---------------


def test_a_one_sample_flip_is_changed_and_the_gate_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=FLIP.format(flags=""))
    result = pytester.runpytest(TWO, "--migration-gate=no-regression", "--migration-json=out.json")
    result.assert_outcomes(passed=3, failed=1)
    assert result.ret == pytest.ExitCode.OK
    run = read_run(pytester)
    v = verdict(run)
    assert v["changed"] == ["test_x.py::test_flip"]
    assert {t["test"]: t["status"] for t in v["tests"]} == {
        "test_x.py::test_flip": "changed",
        "test_x.py::test_same": "ok",
    }
    assert v["finding"] == "undecided"
    assert v["verdict"] == "investigate"
    assert v["deterministic"] is False
    assert v["delta"]["estimate"] == pytest.approx(0.5)
    assert v["samples_needed"] > 1
    assert run["gate"]["passed"] is True
    assert run["gate"]["regressions"] == []
    rec = recommendation(run)
    assert rec["action"] == "investigate"
    assert rec["undecided"] == ["g"]
    assert rec["extra_calls"] and rec["extra_calls"] > 0
    assert printed(result, "recommendation: b: investigate: ")


@pytest.mark.parametrize("how", ["marker", "ini"])
def test_a_one_sample_flip_in_a_deterministic_prompt_fails_the_gate(
    pytester: pytest.Pytester, how: str
) -> None:
    if how == "marker":
        pytester.makepyfile(test_x=FLIP.format(flags=", deterministic=True"))
    else:
        pytester.makepyfile(test_x=FLIP.format(flags=""))
        pytester.makeini("[pytest]\nmodelmigrate_deterministic = true\n")
    result = pytester.runpytest(TWO, "--migration-gate=no-regression", "--migration-json=out.json")
    result.assert_outcomes(passed=3, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    run = read_run(pytester)
    v = verdict(run)
    assert v["finding"] == "regressed"
    assert v["verdict"] == "re-engineer"
    assert v["deterministic"] is True
    assert v["changed"] == []
    assert v["delta"]["method"] == "exact"
    assert run["gate"]["passed"] is False
    assert [r["test"] for r in run["gate"]["regressions"]] == ["test_x.py::test_flip"]
    if how == "ini":
        assert run["gate"]["policy"]["deterministic"] is True
    else:
        assert run["gate"]["policy"]["deterministic_groups"] == ["g"]
    assert recommendation(run)["action"] == "re-engineer first"
    assert printed(result, "recommendation: b: re-engineer first: ")


def test_a_bad_deterministic_flag_names_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_x="""
        import pytest

        @pytest.mark.prompt("g", deterministic="yes")
        def test_it(model):
            pass
        """
    )
    result = pytester.runpytest(TWO)
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*test_x.py::test_it*deterministic='yes'*must be True or False*"])


# -- @pytest.mark.evidence -------------------------------------------------------------------------


def test_evidence_clusters_show_in_the_delta(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_x="""
        import pytest

        @pytest.mark.prompt("g")
        @pytest.mark.samples(3)
        @pytest.mark.evidence(cluster="c1")
        def test_one(model):
            assert model

        @pytest.mark.prompt("g")
        @pytest.mark.samples(3)
        @pytest.mark.evidence(cluster="c2", weight=2)
        def test_two(model):
            assert model

        @pytest.mark.prompt("h")
        @pytest.mark.samples(3)
        @pytest.mark.evidence(cluster="c1")
        def test_three(model):
            assert model
        """
    )
    result = pytester.runpytest(TWO, "--migration-json=out.json")
    result.assert_outcomes(passed=6)
    run = read_run(pytester)
    g, h = verdict(run, "g"), verdict(run, "h")
    assert g["delta"]["clusters"] == 2
    assert g["delta"]["method"] == "cluster-robust"
    assert g["delta"]["high"] is not None
    # one cluster: no interval, so no non-inferiority call
    assert h["delta"]["clusters"] == 1
    assert h["delta"]["high"] is None
    assert h["finding"] == "undecided"
    assert "1 cluster: no interval" in h["reason"]


def test_without_evidence_the_delta_has_no_clusters(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x=ALWAYS.format(n=3))
    pytester.runpytest(TWO, "--migration-json=out.json").assert_outcomes(passed=4)
    delta = verdict(read_run(pytester))["delta"]
    assert delta["clusters"] is None
    assert delta["method"] == "agresti-caffo"


def test_evidence_weight_changes_the_delta(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_x="""
        import pytest

        @pytest.mark.prompt("g")
        @pytest.mark.evidence(weight=3)
        def test_flip(model):
            assert model == "a"

        @pytest.mark.prompt("g")
        def test_same(model):
            assert model
        """
    )
    pytester.runpytest(TWO, "--migration-json=out.json")
    assert verdict(read_run(pytester))["delta"]["estimate"] == pytest.approx(0.75)  # 3 * 1 / 4


@pytest.mark.parametrize("args", ["weight=-1", "weight=0", "cluster=True", "colour='red'"])
def test_a_bad_evidence_marker_names_the_test(pytester: pytest.Pytester, args: str) -> None:
    pytester.makepyfile(
        test_x=f"""
        import pytest

        @pytest.mark.prompt("g")
        @pytest.mark.evidence({args})
        def test_bad(model):
            pass
        """
    )
    result = pytester.runpytest(TWO, "--migration-json=out.json")
    assert result.ret != pytest.ExitCode.OK
    text = result.stdout.str()
    assert "test_x.py::test_bad[a]: @pytest.mark.evidence takes cluster=" in text
    assert "weight= (a positive number)" in text
    assert "Traceback" not in text


def test_a_bad_evidence_marker_keeps_the_test_in_its_prompt_group(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_x="""
        import pytest

        @pytest.fixture
        def broken():
            raise RuntimeError("fixture broke")

        @pytest.mark.prompt("g")
        def test_ok(model):
            pass

        @pytest.mark.prompt("g")
        def test_fixture(model, broken):
            pass

        @pytest.mark.prompt("g")
        @pytest.mark.evidence(weight=-1)
        def test_bad(model):
            pass
        """
    )
    pytester.runpytest(TWO, "--migration-json=out.json")
    run = read_run(pytester)
    groups = {(o["test"], o["model"]): o["group"] for o in run["outcomes"]}
    assert groups[("test_x.py::test_fixture", "b")] == "g"  # a fixture error keeps the prompt group
    assert groups[("test_x.py::test_bad", "b")] == "g"
    assert list(run["gate"]["verdicts"]) == ["g"]


# -- the margin ------------------------------------------------------------------------------------


def test_the_margin_setting_is_respected(pytester: pytest.Pytester) -> None:
    """Identical at one sample on six tests: the upper bound (~45 pts) is above the default
    margin (5 pts), below a declared 50 pts."""
    pytester.makepyfile(
        test_x="""
        import pytest

        @pytest.mark.prompt("g")
        @pytest.mark.parametrize("i", range(6))
        def test_it(model, i):
            assert model
        """
    )
    pytester.runpytest(TWO, "--migration-json=default.json").assert_outcomes(passed=12)
    default = read_run(pytester, "default.json")
    assert verdict(default)["finding"] == "undecided"
    assert default["gate"]["policy"]["margin"] == pytest.approx(0.05)
    high = verdict(default)["delta"]["high"]
    assert 0.05 < high < 0.5

    pytester.makeini("[pytest]\nmodelmigrate_margin = 0.5\n")
    pytester.runpytest(TWO, "--migration-json=ini.json").assert_outcomes(passed=12)
    wide = read_run(pytester, "ini.json")
    assert wide["gate"]["policy"]["margin"] == pytest.approx(0.5)
    assert verdict(wide)["finding"] == "non-inferior"
    assert verdict(wide)["verdict"] == "migrate"
    assert recommendation(wide)["action"] == "defer"  # non-inferior, but no reason to move

    pytester.runpytest(TWO, "--migration-margin=0.05", "--migration-json=flag.json").assert_outcomes(
        passed=12
    )
    assert verdict(read_run(pytester, "flag.json"))["finding"] == "undecided"  # the flag wins


@pytest.mark.parametrize("value", ["2", "0", "1", "-0.1", "wide"])
def test_a_bad_margin_is_a_usage_error(pytester: pytest.Pytester, value: str) -> None:
    pytester.makeini(f"[pytest]\nmodelmigrate_margin = {value}\n")
    pytester.makepyfile("def test_it(model): raise AssertionError('must not run')")
    result = pytester.runpytest(TWO)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ini modelmigrate_margin: *"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_a_bad_margin_flag_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_it(model): raise AssertionError('must not run')")
    result = pytester.runpytest(TWO, "--migration-margin=2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --migration-margin: 2 is outside the allowed range*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


# -- non-inferiority with many samples, and the sunset -------------------------------------------


def test_many_identical_samples_are_non_inferior_and_defer_without_a_sunset(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_x=ALWAYS.format(n=40))
    result = pytester.runpytest(TWO, "--migration-gate=no-regression", "--migration-json=out.json")
    result.assert_outcomes(passed=4)
    run = read_run(pytester)
    v = verdict(run)
    assert v["finding"] == "non-inferior", v["reason"]
    assert v["verdict"] == "migrate"
    assert v["delta"]["high"] < 0.05
    assert v["delta"]["incumbent_samples"] == 80
    assert recommendation(run)["action"] == "defer"
    assert run["gate"]["sunset"] is None
    assert printed(result, "sunset:") == []
    assert printed(result, "recommendation: b: defer: ")


def test_a_sunset_inside_the_horizon_turns_defer_into_migrate(pytester: pytest.Pytester) -> None:
    when = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
    pytester.makeini(f"[pytest]\nmodelmigrate_sunset = a: {when}\n")
    pytester.makepyfile(test_x=ALWAYS.format(n=40))
    result = pytester.runpytest(TWO, "--migration-gate=no-regression", "--migration-json=out.json")
    result.assert_outcomes(passed=4)
    assert result.ret == pytest.ExitCode.OK
    run = read_run(pytester)
    assert verdict(run)["finding"] == "non-inferior"
    rec = recommendation(run)
    assert rec["action"] == "migrate"
    assert rec["headline"] == "migrate to b"
    assert rec["must_migrate_by"] == when
    sunset = run["gate"]["sunset"]
    assert sunset["model"] == "a"
    assert sunset["date"] == when
    assert sunset["days_left"] == (date.fromisoformat(when) - run_date(run)).days
    assert sunset["pressing"] is True
    assert sunset["best"] == "b"
    assert sunset["to_reengineer"] == 0
    assert "must migrate by " + when in sunset["line"]
    assert printed(result, "sunset: ") == [f"sunset: {sunset['line']}"]
    assert printed(result, "recommendation: b: migrate: ")


def test_a_far_sunset_is_shown_but_does_not_press(pytester: pytest.Pytester) -> None:
    when = (datetime.now(UTC).date() + timedelta(days=400)).isoformat()
    pytester.makeini(f"[pytest]\nmodelmigrate_sunset =\n    a: {when}\n    zz: 2030-01-01\n")
    pytester.makepyfile(test_x=ALWAYS.format(n=40))
    result = pytester.runpytest(TWO, "--migration-json=out.json")
    result.assert_outcomes(passed=4)
    run = read_run(pytester)
    sunset = run["gate"]["sunset"]
    assert sunset["pressing"] is False
    assert "must migrate" not in sunset["line"]
    assert sunset["line"].startswith(f"a retires on {when}")
    assert recommendation(run)["action"] == "defer"
    assert recommendation(run)["must_migrate_by"] is None


@pytest.mark.parametrize("line", ["a 2027-03-31", "a: 2027-13-01", ": 2027-03-31", "a: soon"])
def test_a_bad_sunset_line_is_a_usage_error(pytester: pytest.Pytester, line: str) -> None:
    pytester.makeini(f"[pytest]\nmodelmigrate_sunset = {line}\n")
    pytester.makepyfile("def test_it(model): raise AssertionError('must not run')")
    result = pytester.runpytest(TWO)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ini modelmigrate_sunset: *should read model: YYYY-MM-DD*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


# -- blocking prompts --------------------------------------------------------------------------------

REGRESSING = """
import pytest

@pytest.mark.prompt("g"{flags})
@pytest.mark.samples(20)
def test_broken(model):
    assert model == "a", "the candidate breaks this prompt"

@pytest.mark.prompt("h")
@pytest.mark.samples(20)
def test_fine(model):
    assert model
"""


@pytest.mark.parametrize(
    ("flags", "action"), [(", blocking=True", "don't migrate"), ("", "re-engineer first")]
)
def test_a_blocking_prompt_that_regressed_means_dont_migrate(
    pytester: pytest.Pytester, flags: str, action: str
) -> None:
    pytester.makepyfile(test_x=REGRESSING.format(flags=flags))
    result = pytester.runpytest(TWO, "--migration-gate=no-regression", "--migration-json=out.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    run = read_run(pytester)
    assert verdict(run, "g")["finding"] == "regressed"
    rec = recommendation(run)
    assert rec["action"] == action
    assert "g" in rec["regressed"]
    assert run["gate"]["recommend_policy"]["blocking"] == (["g"] if flags else [])
    lines = printed(result, f"recommendation: b: {action}: ")
    assert lines, result.outlines
    if flags:
        assert "blocking prompt(s) regressed: g" in lines[0]


# -- the incumbent's longer history ----------------------------------------------------------------


def test_incumbent_samples_give_the_incumbent_a_longer_history(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_x="""
        import pytest

        @pytest.mark.prompt("g")
        def test_one(model):
            assert model
        """
    )
    result = pytester.runpytest(TWO, "--samples=3", "--incumbent-samples=8", "--migration-json=out.json")
    result.assert_outcomes(passed=2)
    run = read_run(pytester)
    totals = {o["model"]: o["total"] for o in run["outcomes"]}
    assert totals == {"a": 8, "b": 3}  # the candidate's samples are not raised
    delta = verdict(run)["delta"]
    assert (delta["incumbent_samples"], delta["candidate_samples"]) == (8, 3)


def test_incumbent_samples_must_be_a_positive_number(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_one(model):\n    assert model\n")
    result = pytester.runpytest(TWO, "--incumbent-samples=0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--incumbent-samples*at least 1*"])


# -- budgets and improvement, recorded against the emulator with the real SDK ---------------------

BUDGET_SCRIPT = {
    "models": {
        "emu-a": {"rules": [{"match": "route", "reply": "billing"}], "default": "billing"},
        "emu-b": {"rules": [{"match": "route", "reply": "billing"}], "default": "billing"},
    }
}
BUDGET_TESTS = """
import pytest
import app

@pytest.mark.prompt("route", deterministic=True)
@pytest.mark.parametrize("i", range(3))
def test_route(model, checks, i):
    checks.one_of(app.chat(model, f"route ticket {i}").strip(), ["billing"])
"""


def test_a_candidate_over_the_cost_budget_is_dont_migrate(
    pytester: pytest.Pytester, start_emulator: Any
) -> None:
    """Same answers, five times the price: quality is non-inferior, the budget says no."""
    emulator = start_emulator(BUDGET_SCRIPT, test_route=BUDGET_TESTS)
    pytester.makeini(
        "[pytest]\n"
        "modelmigrate_prices =\n    emu-a: input=1.00 output=1.00\n    emu-b: input=5.00 output=5.00\n"
        "modelmigrate_max_cost_ratio = 1.5\n"
    )
    pytester.runpytest("--models=emu-a,emu-b", "--record-mode=once", "-p", "no:randomly").assert_outcomes(
        passed=6
    )
    emulator.stop()
    result = pytester.runpytest("--models=emu-a,emu-b", "--migration-json=out.json", "-p", "no:randomly")
    result.assert_outcomes(passed=6)
    run = read_run(pytester)
    assert verdict(run, "route", "emu-b")["finding"] == "non-inferior"
    rec = recommendation(run, "emu-b")
    assert rec["action"] == "don't migrate"
    assert rec["cost_ratio"] == pytest.approx(5.0)
    assert rec["cost_interval"] == [pytest.approx(5.0), pytest.approx(5.0)]
    assert "over the budget 1.5x" in rec["line"]
    assert printed(result, "recommendation: emu-b: don't migrate:")
    # without the budget, the same run defers: nothing to gain, no sunset (the emulator's latencies
    # at time scale 0 are noise: min_gain 0.95 keeps a lucky draw from counting as a saving)
    pytester.makeini(
        "[pytest]\nmodelmigrate_min_gain = 0.95\n"
        "modelmigrate_prices =\n    emu-a: input=1.00 output=1.00\n    emu-b: input=5.00 output=5.00\n"
    )
    pytester.runpytest("--models=emu-a,emu-b", "--migration-json=free.json", "-p", "no:randomly")
    assert recommendation(read_run(pytester, "free.json"), "emu-b")["action"] == "defer"


IMPROVE = """
import pytest

@pytest.mark.prompt("g")
@pytest.mark.samples(40)
@pytest.mark.parametrize("i", range(4))
def test_it(model, i, request):
    # the incumbent fails one sample in two, the candidate never
    count = request.config.stash.setdefault(COUNT, {})
    count[(model, i)] = count.get((model, i), 0) + 1
    assert model == "b" or count[(model, i)] % 2
"""


def test_a_significantly_better_candidate_is_improved_and_migrate(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_x="import pytest\nCOUNT = pytest.StashKey[dict]()\n" + IMPROVE.replace("import pytest\n", "", 1)
    )
    result = pytester.runpytest(TWO, "--migration-json=out.json", "-p", "no:randomly")
    result.assert_outcomes(passed=4, failed=4)  # the incumbent's own failures
    run = read_run(pytester)
    found = verdict(run)
    assert found["finding"] == "improved" and found["verdict"] == "migrate"
    assert found["delta"]["estimate"] == pytest.approx(-0.5)
    assert found["improvement_p_adjusted"] is not None and found["improvement_p_adjusted"] <= 0.05
    rec = recommendation(run)
    assert rec["action"] == "migrate" and rec["improved"] == ["g"]
