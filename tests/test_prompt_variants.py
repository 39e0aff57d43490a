"""Prompt variants per target model (``@pytest.mark.prompt_variants``), end to end.

A pytester project drives the real openai SDK against the emulator: the candidate writes four
bullets for prompt v1 and three for v2 (which asks for "exactly three"). Each variant runs on the
models it targets, is recorded in its own cassette, replayed offline, shown as its own matrix
row, and the decision compares the candidate's best variant with the incumbent's shipped one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from pytest_modelmigrate.cli import main
from pytest_modelmigrate.history import load_history, render_history
from pytest_modelmigrate.reports.migration_doc import render_migration_doc
from pytest_modelmigrate.reports.run import validate_run

if TYPE_CHECKING:
    from pytest_modelmigrate.emulator import Emulator

StartEmulator = Callable[..., "Emulator"]

INCUMBENT, CANDIDATE = "emu-gpt-2025", "emu-gpt-2026"
MODELS = f"--models={INCUMBENT},{CANDIDATE}"
THREE = "- one\n- two\n- three"
FOUR = "- one\n- two\n- three\n- four"

# The candidate follows "exactly three" (v2) and writes four bullets otherwise (v1).
SCRIPT = {
    "models": {
        INCUMBENT: {"default": THREE},
        CANDIDATE: {"rules": [{"match": "exactly three", "reply": THREE}], "default": FOUR},
    }
}

PROMPTS = {
    "v1": "Summarize the refund ticket in bullets.",
    "v2-gpt5": "Summarize the refund ticket in exactly three bullets.",
}

TESTS = """
import pytest
import app

PROMPTS = {prompts!r}

pytestmark = pytest.mark.prompt("summary", purpose="three bullets for the agent", deterministic=True)

@pytest.mark.prompt_variants(
    "v1", "v2-gpt5",
    targets={targets!r},
    rationale={{"v2-gpt5": "emu-gpt-2026 wrote four bullets; v2 asks for exactly three"}},
)
def test_summary(model, prompt_variant, checks):
    checks.bullets(app.chat(model, PROMPTS[prompt_variant]), exactly=3)

def test_short(model):
    assert app.chat(model, "Say hi.")
"""


def _tests(targets: dict[str, list[str]], prompts: dict[str, str] | None = None) -> str:
    return TESTS.format(targets=targets, prompts=prompts or PROMPTS)


def _run(pytester: pytest.Pytester, out: str, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    result = pytester.runpytest(
        MODELS, "--samples=3", "--migration-gate=no-regression", f"--migration-json={out}", *args
    )
    run: dict[str, Any] = json.loads((pytester.path / out).read_text(encoding="utf-8"))
    validate_run(run)
    return result, run


def _rows(run: dict[str, Any]) -> dict[str, dict[str, str]]:
    """matrix row -> model -> "passed/total" (models with no evidence left out)."""
    return {
        row["name"]: {m: f"{c['passed']}/{c['total']}" for m, c in row["cells"].items() if c["total"]}
        for group in run["matrix"]["groups"]
        for row in group["tests"]
    }


def test_a_targeted_variant_fixes_the_regression_recorded_then_replayed(
    pytester: pytest.Pytester, start_emulator: StartEmulator
) -> None:
    emulator = start_emulator(SCRIPT, test_v=_tests({"v2-gpt5": [CANDIDATE]}))
    result, run = _run(pytester, "recorded.json", "--record-mode=once", "-v")
    # v1 on both models, v2-gpt5 on the candidate only: readable ids, one cassette each
    ids = [line.split(" ")[0] for line in result.outlines if line.startswith("test_v.py::test_summary[")]
    assert ids == [
        f"test_v.py::test_summary[v1-{INCUMBENT}]",
        f"test_v.py::test_summary[v1-{CANDIDATE}]",
        f"test_v.py::test_summary[v2-gpt5-{CANDIDATE}]",
    ]
    result.assert_outcomes(passed=4, failed=1)  # v1 on the candidate: four bullets
    assert result.ret == pytest.ExitCode.OK  # no-regression: the targeted variant fixes it
    cassettes = sorted(p.relative_to(pytester.path).as_posix() for p in pytester.path.rglob("*summary*.yaml"))
    assert cassettes == [
        f"cassettes/test_v/{INCUMBENT}/test_summary[v1].yaml",
        f"cassettes/test_v/{CANDIDATE}/test_summary[v1].yaml",
        f"cassettes/test_v/{CANDIDATE}/test_summary[v2-gpt5].yaml",
    ]
    served = [r.prompt for r in emulator.requests]
    assert served.count(PROMPTS["v2-gpt5"]) == 3  # three samples, the candidate only
    assert (
        f"  test_v.py::test_summary: {CANDIDATE}: ship v2-gpt5 (3/3, 100% [44-100]); v1: 0/3, 0% [0-56], "
        "fails bullets"
    ) in result.outlines

    emulator.stop()  # replay: nothing listens any more
    replayed, run2 = _run(pytester, "replayed.json", "--record-mode=none")
    replayed.assert_outcomes(passed=4, failed=1)
    workers, run3 = _run(pytester, "workers.json", "--record-mode=none", "-n", "2")  # under xdist too
    workers.assert_outcomes(passed=4, failed=1)
    # the strict gate counts every variant's failure, as pytest does
    strict, run4 = _run(pytester, "strict.json", "--record-mode=none", "--migration-gate=strict")
    assert strict.ret == pytest.ExitCode.TESTS_FAILED
    assert run4["gate"]["reason"] == f"strict: failing tests on {CANDIDATE} (1 test)"
    for current in (run, run2, run3):
        assert _rows(current) == {
            "test_v.py::test_summary[v1]": {INCUMBENT: "3/3", CANDIDATE: "0/3"},
            "test_v.py::test_summary[v2-gpt5]": {CANDIDATE: "3/3"},
            "test_v.py::test_short": {INCUMBENT: "3/3", CANDIDATE: "3/3"},
        }
        gate = current["gate"]
        assert gate["passed"] is True, gate["reason"]
        assert gate["verdicts"]["summary"][CANDIDATE]["verdict"] == "migrate"
        (test,) = current["variants"]["tests"]
        assert test["test"] == "test_v.py::test_summary"
        assert [v["name"] for v in test["variants"]] == ["v1", "v2-gpt5"]
        assert test["variants"][1]["targets"] == [CANDIDATE]
        assert test["models"][CANDIDATE]["ship"] == "v2-gpt5"
        assert test["models"][INCUMBENT]["ship"] == "v1"
        assert test["models"][CANDIDATE]["evidence"]["v1"]["failing_checks"] == ["bullets"]
        line = f"{CANDIDATE}: ship v2-gpt5 (3/3, 100% [44-100]); v1: 0/3, 0% [0-56], fails bullets"
        assert test["models"][CANDIDATE]["line"] == line
        (rec,) = gate["recommendations"]
        assert f"test_v.py::test_summary: {line}" in rec["line"]
        doc = re.sub(r"\\([\\`*_\[\]|#~-])", r"\1", render_migration_doc(current))  # Markdown escapes undone
        assert "### Prompt variants" in doc
        assert "ship v2-gpt5 (3/3, 100% [44-100])" in doc
    # every outcome carries its variant; the outcome of a test without variants carries none
    variants = {(o["test"], o["model"]): o.get("variant", {}).get("name") for o in run2["outcomes"]}
    assert variants[("test_v.py::test_summary[v2-gpt5]", CANDIDATE)] == "v2-gpt5"
    assert variants[("test_v.py::test_short", CANDIDATE)] is None


def test_the_gate_fails_when_no_variant_fixes_the_regression(
    pytester: pytest.Pytester, start_emulator: StartEmulator
) -> None:
    # v2 forgets to ask for "exactly three": both variants get four bullets from the candidate
    prompts = {"v1": PROMPTS["v1"], "v2-gpt5": "Summarize the refund ticket, briefly, in bullets."}
    start_emulator(SCRIPT, test_v=_tests({"v2-gpt5": [CANDIDATE]}, prompts))
    result, run = _run(pytester, "run.json", "--record-mode=once")
    result.assert_outcomes(passed=3, failed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    gate = run["gate"]
    assert gate["passed"] is False
    assert gate["verdicts"]["summary"][CANDIDATE]["verdict"] == "re-engineer"
    (regression,) = [r for r in gate["regressions"] if r["candidate"] == CANDIDATE]
    assert regression["test"] == "test_v.py::test_summary"
    entry = run["variants"]["tests"][0]["models"][CANDIDATE]
    assert entry["ship"] == "v2-gpt5"  # a tie at 0/3: the variant targeting the candidate
    assert entry["evidence"]["v1"]["passed"] == entry["evidence"]["v2-gpt5"]["passed"] == 0
    assert entry["line"] == (
        f"{CANDIDATE}: best v2-gpt5 (0/3, 0% [0-56]), fails bullets; v1: 0/3, 0% [0-56], fails bullets"
    )


def test_a_variant_for_every_model_is_compared_on_the_incumbent_too(
    pytester: pytest.Pytester, start_emulator: StartEmulator
) -> None:
    start_emulator(SCRIPT, test_v=_tests({}))  # both variants on both models
    result, run = _run(pytester, "run.json", "--record-mode=once")
    result.assert_outcomes(passed=5, failed=1)
    assert _rows(run)["test_v.py::test_summary[v2-gpt5]"] == {INCUMBENT: "3/3", CANDIDATE: "3/3"}
    models = run["variants"]["tests"][0]["models"]
    assert models[INCUMBENT]["ship"] == "v1"  # the first variant for every model is the shipped one
    assert models[INCUMBENT]["line"].startswith(f"{INCUMBENT}: keeps v1 (3/3")
    assert models[CANDIDATE]["ship"] == "v2-gpt5"
    assert run["gate"]["passed"] is True


def test_the_history_records_the_adopted_variant_and_why(
    pytester: pytest.Pytester,
    start_emulator: StartEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    start_emulator(SCRIPT, test_v=_tests({"v2-gpt5": [CANDIDATE]}))
    monkeypatch.chdir(pytester.path)
    _run(pytester, "run.json", "--record-mode=once")
    assert main(["history", "append", "run.json"]) == 0
    capsys.readouterr()
    (entry,) = load_history(pytester.path / "migrations" / "history.jsonl")
    adopted = entry["prompts"]["summary"]["variants"]
    assert adopted == [
        {
            "test": "test_v.py::test_summary",
            "model": INCUMBENT,
            "variant": "v1",
            "rationale": None,
            "evidence": "3/3, 100% [44-100]",
        },
        {
            "test": "test_v.py::test_summary",
            "model": CANDIDATE,
            "variant": "v2-gpt5",
            "rationale": "emu-gpt-2026 wrote four bullets; v2 asks for exactly three",
            "evidence": "3/3, 100% [44-100]",
        },
    ]
    # the prompt as adopted: the candidate's rates and failures are v2-gpt5's (and test_short's)
    summary = entry["prompts"]["summary"]
    assert {m: (r["passed"], r["total"]) for m, r in summary["rates"].items()} == {
        INCUMBENT: (6, 6),
        CANDIDATE: (6, 6),
    }
    assert summary["failing_tests"] == {}
    text = render_history([entry], fmt="text")
    assert not [line for line in text.splitlines() if "broke:" in line]
    assert (
        f"    adopted variant v2-gpt5 of test_v.py::test_summary for {CANDIDATE} (3/3, 100% [44-100]): "
        "emu-gpt-2026 wrote four bullets; v2 asks for exactly three"
    ) in text.splitlines()


BAD = """
import pytest

@pytest.mark.prompt_variants({args})
def test_bad(model, prompt_variant):
    pass
"""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ('"v1", "v2", targets={"v2": ["emu-gpt-2099"]}', "targets unknown model(s) emu-gpt-2099"),
        ('"v1", "v1"', "the variant 'v1' is declared twice"),
        ('"v1", "v2", targets={"v2": []}', "the variant 'v2' targets no model"),
        ('"v1", targets={"v3": ["emu-gpt-2026"]}', "targets= names undeclared variant(s) v3"),
        ("", "needs the variant names"),
        ('"v 1"', "is not a variant name"),
    ],
    ids=["unknown-model", "duplicate", "empty-targets", "undeclared", "no-names", "bad-name"],
)
def test_a_bad_declaration_names_the_test(pytester: pytest.Pytester, args: str, expected: str) -> None:
    pytester.makepyfile(test_bad=BAD.format(args=args))
    result = pytester.runpytest(MODELS)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    text = result.stdout.str()
    assert "test_bad.py::test_bad: @pytest.mark.prompt_variants" in text
    assert expected in text


def test_a_variant_targeting_a_model_the_test_skips_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bad=f"""
import pytest

@pytest.mark.models(skip=["{CANDIDATE}"])
@pytest.mark.prompt_variants("v1", "v2", targets={{"v2": ["{CANDIDATE}"]}})
def test_bad(model, prompt_variant):
    pass
"""
    )
    result = pytester.runpytest(MODELS)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            f"*test_bad.py::test_bad: the prompt variant 'v2' targets {CANDIDATE}, but this test runs on {INCUMBENT}*"
        ]
    )


def test_the_marker_needs_the_fixture_and_the_fixture_needs_the_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_a="""
import pytest

@pytest.mark.prompt_variants("v1", "v2")
def test_no_fixture(model):
    pass
""",
        test_b="""
def test_no_marker(model, prompt_variant):
    pass
""",
    )
    result = pytester.runpytest(MODELS, "test_a.py")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["*test_a.py::test_no_fixture: @pytest.mark.prompt_variants needs*`prompt_variant`*"]
    )
    result = pytester.runpytest(MODELS, "test_b.py")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*uses the `prompt_variant` fixture without @pytest.mark.prompt_variants*"])


def test_without_variants_the_decision_reads_what_it_read_before() -> None:
    from pytest_modelmigrate.analysis import outcome_from_dict
    from pytest_modelmigrate.gate import Tally
    from pytest_modelmigrate.variants import for_decision, variant_report

    # an outcome record of a run file written before variants existed
    record = {
        "nodeid": "t.py::test_a[m1]",
        "test": "t.py::test_a",
        "model": "m1",
        "group": "g",
        "outcome": "passed",
    }
    outcomes = [outcome_from_dict(record)]
    tallies = {"g": {"t.py::test_a": {"m1": Tally(1, 1)}}}
    scores: dict[str, Any] = {}
    designs: dict[str, Any] = {}
    folded = for_decision(tallies, scores, designs, outcomes, "m1")
    assert folded[0] is tallies and folded[1] is scores and folded[2] is designs
    assert variant_report(outcomes, ["m1"], "m1") is None
    # with a variant record, its rows fold into the test without the variant id
    varied = [
        outcome_from_dict(
            {**record, "nodeid": f"t.py::test_a[{v}-{m}]", "test": f"t.py::test_a[{v}]", "model": m,
             "outcome": outcome, "variant": {"name": v, "of": "t.py::test_a", "targets": targets, "index": i}}
        )
        for v, m, outcome, targets, i in (
            ("v1", "m1", "passed", None, 0), ("v1", "m2", "failed", None, 0), ("v2", "m2", "passed", ["m2"], 1)
        )
    ]  # fmt: skip
    rows = {
        "g": {
            "t.py::test_a[v1]": {"m1": Tally(1, 1), "m2": Tally(0, 1)},
            "t.py::test_a[v2]": {"m2": Tally(1, 1)},
        }
    }
    assert for_decision(rows, {}, {}, varied, "m1")[0] == {
        "g": {"t.py::test_a": {"m1": Tally(1, 1), "m2": Tally(1, 1)}}
    }
