"""Calibration analysis: the math (``pytest_modelmigrate.calibration``), the checks that record a
confidence, the recommendation's re-threshold note, and end to end: a project recorded against the
emulator with the real openai and anthropic SDKs (logprobs, and a self-reported confidence on the
Anthropic model), replayed, with the terminal, the run JSON, ``modelmigrate show`` and the
Markdown/HTML reports all showing the same calibration figures."""

from __future__ import annotations

import html
import json
import random
from collections.abc import Callable
from typing import Any

import openai
import pytest

from pytest_modelmigrate import calibration as cal
from pytest_modelmigrate.checks import ChecksConfigError, confidence, label_confidence
from pytest_modelmigrate.checks.collector import CheckCollector
from pytest_modelmigrate.emulator import Emulator
from pytest_modelmigrate.gate.recommend import RecommendPolicy, recommend
from pytest_modelmigrate.reports.run import validate_run
from pytest_modelmigrate.results import Outcome

StartEmulator = Callable[..., Emulator]


# -- helpers -------------------------------------------------------------------------------------


def outcome(model: str, values: list[float], correct: list[bool | None] | None = None, *, group: str = "g",
            threshold: float = 0.8, kind: str = "confidence") -> Outcome:  # fmt: skip
    checks = []
    for i, v in enumerate(values):
        ok = None if correct is None else correct[i]
        if kind == "confidence":
            checks.append(confidence(v, correct=ok, threshold=threshold, record_only=True).to_dict())
        else:
            details: dict[str, Any] = {"label": "billing", "threshold": threshold, "probability": v}
            if ok is not None:
                details["correct"] = ok
            checks.append({"name": "label_confidence", "passed": True, "message": "", "details": details})
    return Outcome(
        nodeid=f"t.py::test_{group}[{model}]", test=f"t.py::test_{group}", model=model, group=group,
        outcome="passed", checks=checks,
    )  # fmt: skip


def chat_call(text: str, logprobs: list[tuple[str, float]]) -> openai.types.chat.ChatCompletion:
    """An openai SDK chat completion carrying ``logprobs`` (what ``label_confidence`` reads)."""
    content = [{"token": t, "logprob": lp, "bytes": None, "top_logprobs": []} for t, lp in logprobs]
    return openai.types.chat.ChatCompletion.model_validate(
        {
            "id": "c1", "object": "chat.completion", "created": 0, "model": "gpt-4o",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text},
                         "logprobs": {"content": content, "refusal": None}}],
        }
    )  # fmt: skip


# -- the math ------------------------------------------------------------------------------------


def test_ece_and_reliability_on_a_known_input() -> None:
    # bin 0.9-1.0: 10 answers at 0.95, 9 right (accuracy 0.9); bin 0.6-0.7: 10 at 0.65, 5 right
    points = [(0.95, True)] * 9 + [(0.95, False)] + [(0.65, True)] * 5 + [(0.65, False)] * 5
    assert cal.expected_calibration_error(points) == pytest.approx(0.5 * 0.05 + 0.5 * 0.15)
    table = cal.reliability(points)
    assert [(b["low"], b["n"], b["accuracy"]) for b in table] == [(0.6, 10, 0.5), (0.9, 10, 0.9)]
    assert table[1]["confidence"] == pytest.approx(0.95)
    # perfectly calibrated: every answer at 1.0 right
    assert cal.expected_calibration_error([(1.0, True)] * 4) == 0.0
    assert cal.expected_calibration_error([]) is None


def test_quantiles_histogram_and_threshold_effect() -> None:
    values = [0.1 * i for i in range(1, 11)]  # 0.1 ... 1.0
    correct = [i >= 5 for i in range(1, 11)]  # right from 0.5 up
    summary = cal.summarise(
        [cal.Observation(v, c, 0.8, "confidence") for v, c in zip(values, correct, strict=True)], 0.8
    )
    assert summary["n"] == 10
    assert summary["quantiles"]["p50"] == pytest.approx(0.55)
    assert summary["quantiles"]["p10"] == pytest.approx(0.19)
    assert summary["histogram"] == [0, 1, 1, 1, 1, 1, 1, 1, 1, 2]  # 1.0 falls in the last bin
    assert summary["above"] == {"n": 3, "rate": 0.3, "accuracy": 1.0}  # 0.8, 0.9, 1.0
    assert summary["below"]["n"] == 7
    assert summary["below"]["accuracy"] == pytest.approx(3 / 7)  # 0.5, 0.6, 0.7 right
    assert summary["accuracy"] == 0.6


def test_rate_matching_keeps_the_incumbents_auto_route_rate() -> None:
    rng = random.Random(7)
    incumbent = [rng.betavariate(8, 2) for _ in range(400)]
    candidate = [v - 0.1 for v in incumbent]  # the same answers, 0.1 less sure
    match = cal.match_rate(incumbent, candidate, 0.85)
    assert match["threshold"] == pytest.approx(0.75, abs=0.006)
    assert match["candidate_rate"] == pytest.approx(match["incumbent_rate"])
    # every value tied: the threshold keeps its place in the gap (0.8 of 0.93 -> of 0.62)
    tied = cal.match_rate([0.93] * 4, [0.62] * 4, 0.8)
    assert tied == {"threshold": 0.53, "incumbent_rate": 1.0, "candidate_rate": 1.0}


def test_precision_matching_finds_the_lowest_threshold_as_precise() -> None:
    incumbent = [(0.9, True)] * 9 + [(0.9, False)] + [(0.5, False)] * 5  # precision 0.9 at 0.8
    candidate = [(0.7, True)] * 9 + [(0.7, False)] + [(0.6, False)] * 3 + [(0.4, True)] * 2
    match = cal.match_precision(incumbent, candidate, 0.8)
    assert match == {
        "incumbent_precision": 0.9, "threshold": 0.7, "candidate_precision": 0.9, "candidate_rate": 10 / 15,
    }  # fmt: skip
    # no candidate threshold is as precise
    worse = [(0.9, True), (0.9, False), (0.8, False)]
    assert cal.match_precision(incumbent, worse, 0.8) == {"incumbent_precision": 0.9, "threshold": None}
    # the incumbent auto-routes nothing: no precision to keep
    assert cal.match_precision([(0.5, True)], candidate, 0.8) is None


def test_mann_whitney_tells_apart_what_differs() -> None:
    assert cal.mann_whitney_p([0.93] * 9, [0.62] * 9) < 0.001
    assert cal.mann_whitney_p([0.93] * 2, [0.62] * 2) > 0.05  # too few samples to tell
    assert cal.mann_whitney_p([0.9] * 5, [0.9] * 5) == 1.0
    assert cal.mann_whitney_p([], [0.9]) == 1.0


@pytest.mark.parametrize(
    ("shift", "direction"), [(-0.1, "too conservative"), (0.05, "too aggressive")], ids=["lower", "higher"]
)
def test_a_shift_in_either_direction_is_a_finding_with_its_size(shift: float, direction: str) -> None:
    base = [0.85, 0.88, 0.9, 0.91, 0.92, 0.93, 0.94, 0.9, 0.89, 0.87]
    outcomes = [outcome("old", base), outcome("new", [min(1.0, v + shift) for v in base])]
    result = cal.analyse_calibration(outcomes, ["old", "new"], "old")
    assert result is not None
    comp = result["groups"]["g"]["comparisons"]["new"]
    assert comp["finding"] == "shift"
    assert comp["direction"] == direction
    assert comp["remedy"] == "re-threshold"
    assert comp["median_shift"] == pytest.approx(shift, abs=0.011)
    assert comp["p_value"] < 0.05
    assert f"is {direction} on new; remedy re-threshold" in comp["lines"][-1]
    notes = cal.rethreshold_notes(result)
    assert list(notes) == ["new"]
    assert notes["new"]["g"].startswith("calibration shift on new: median 0.90 → ")


def test_small_moves_are_stable_and_few_samples_only_possible() -> None:
    base = [0.9, 0.91, 0.92, 0.93]
    stable = cal.analyse_calibration(
        [outcome("a", base), outcome("b", [v - 0.02 for v in base])], ["a", "b"], "a"
    )
    assert stable is not None
    assert stable["groups"]["g"]["comparisons"]["b"]["finding"] == "stable"
    assert cal.rethreshold_notes(stable) == {}
    few = cal.analyse_calibration([outcome("a", [0.93, 0.93]), outcome("b", [0.62, 0.62])], ["a", "b"], "a")
    assert few is not None
    comp = few["groups"]["g"]["comparisons"]["b"]
    assert comp["finding"] == "possible shift"
    assert "too few samples to confirm" in comp["lines"][-1]
    assert "b" in cal.rethreshold_notes(few)


def test_a_deterministic_prompt_needs_no_test_to_call_a_move_a_shift() -> None:
    outcomes = [outcome("a", [0.93, 0.93]), outcome("b", [0.62, 0.62])]
    result = cal.analyse_calibration(outcomes, ["a", "b"], "a", deterministic=["g"])
    assert result is not None
    comp = result["groups"]["g"]["comparisons"]["b"]
    assert comp["finding"] == "shift"
    assert "(-0.31, deterministic prompt: exact, n 2 vs 2)" in comp["lines"][-1]
    # another group's flag changes nothing here
    other = cal.analyse_calibration(outcomes, ["a", "b"], "a", deterministic=["h"])
    assert other is not None
    assert other["groups"]["g"]["comparisons"]["b"]["finding"] == "possible shift"


def test_without_correctness_there_is_no_ece_nor_precision_match() -> None:
    result = cal.analyse_calibration(
        [outcome("a", [0.9, 0.95], kind="label"), outcome("b", [0.7, 0.75], kind="label")], ["a", "b"], "a"
    )
    assert result is not None
    model = result["groups"]["g"]["models"]["a"]
    assert model["correct_known"] == 0
    assert model["ece"] is None
    assert model["accuracy"] is None
    assert model["reliability"] == []
    assert model["above"]["accuracy"] is None
    comp = result["groups"]["g"]["comparisons"]["b"]
    assert comp["precision_match"] is None
    assert comp["rate_match"]["incumbent_rate"] == 1.0
    assert not any("precision" in line for line in comp["lines"])


def test_one_model_has_distributions_and_no_comparison() -> None:
    result = cal.analyse_calibration([outcome("a", [0.9, 0.7], [True, False])], ["a"], "a")
    assert result is not None
    entry = result["groups"]["g"]
    assert entry["comparisons"] == {}
    assert entry["models"]["a"]["ece"] == pytest.approx((0.1 + 0.7) / 2)
    lines = cal.calibration_lines({"calibration": result})
    assert lines[1] == "  g: threshold t = 0.80"
    assert lines[3].split()[:2] == ["a", "2"]


def test_nothing_recorded_is_no_section() -> None:
    plain = Outcome(nodeid="t.py::t[a]", test="t.py::t", model="a", group="g", outcome="passed", checks=[])
    assert cal.analyse_calibration([], ["a"], "a") is None
    assert cal.analyse_calibration([plain], ["a"], "a") is None
    assert cal.calibration_lines({}) == []
    skipped = outcome("a", [0.9])
    skipped.outcome = "skipped"  # no evidence: not counted
    assert cal.analyse_calibration([skipped], ["a"], "a") is None


def test_the_threshold_is_the_one_the_group_declares_most() -> None:
    result = cal.analyse_calibration(
        [outcome("a", [0.9, 0.9], threshold=0.8), outcome("a", [0.7], threshold=0.6)], ["a"], "a"
    )
    assert result is not None
    assert result["groups"]["g"]["threshold"] == 0.8
    assert result["groups"]["g"]["thresholds"] == [0.6, 0.8]
    assert "(tests declare 0.60, 0.80)" in cal.calibration_lines({"calibration": result})[1]


# -- the checks ----------------------------------------------------------------------------------


def test_confidence_check_records_value_correctness_and_threshold() -> None:
    right = confidence(0.9, correct=True, threshold=0.85)
    assert right.passed
    assert right.to_dict()["details"] == {"confidence": 0.9, "correct": True, "threshold": 0.85}
    assert right.score == 0.9
    assert not confidence(0.7, threshold=0.85)
    wrong = confidence(0.95, correct=False, threshold=0.85)
    assert not wrong.passed
    assert "confidently wrong" in wrong.message
    assert confidence("0.9").passed  # a numeric string from JSON
    assert confidence("90%").details["confidence"] == 0.9
    assert confidence(0.1, record_only=True).passed


@pytest.mark.parametrize(
    ("value", "message"),
    [(85, r"a percentage\? pass 0\.85"), ("high", "must be a number in [0, 1]"), (True, "got bool"),
     (-0.1, "probability in [0, 1]")],
)  # fmt: skip
def test_a_confidence_that_is_not_a_probability_says_how_to_fix_it(value: Any, message: str) -> None:
    with pytest.raises(ChecksConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        confidence(value)


def test_the_collector_names_the_test_and_model_in_a_confidence_error() -> None:
    collector = CheckCollector(test_id="t.py::test_x", model="m")
    with pytest.raises(ChecksConfigError, match=r"t\.py::test_x \[m\]: confidence: .*percentage"):
        collector.confidence(85)
    with pytest.raises(ChecksConfigError, match="correct= must be True, False or None"):
        collector.confidence(0.5, correct="yes")  # type: ignore[arg-type]
    collector.confidence(0.9, correct=True)
    assert collector.to_dicts()[0]["details"]["correct"] is True


def test_label_confidence_expected_records_correctness() -> None:
    import math

    call = chat_call("billing", [("billing", math.log(0.93))])
    right = label_confidence(call, threshold=0.8, expected="billing")
    assert right.passed
    assert right.details["correct"] is True
    wrong = label_confidence(call, threshold=0.8, expected="technical")
    assert not wrong.passed
    assert wrong.details["correct"] is False
    assert "expected label is 'technical' (confidently wrong" in wrong.message
    unsure_and_wrong = label_confidence(call, threshold=0.95, expected="technical")
    assert not unsure_and_wrong.passed
    assert "confidently" not in unsure_and_wrong.message
    # without expected=, nothing changes
    plain = label_confidence(call, threshold=0.8)
    assert plain.passed
    assert "correct" not in plain.details
    with pytest.raises(ChecksConfigError, match="expected= must be the right label as a string"):
        label_confidence(call, expected=3)  # type: ignore[arg-type]


# -- the recommendation --------------------------------------------------------------------------


def test_a_shift_on_a_migrate_candidate_is_named_in_the_headline_and_reasons() -> None:
    verdicts = {"g": {"new": {"finding": "improved", "scores": []}}}
    note = {"new": {"g": "calibration shift on new: median 0.93 → 0.86 (-0.07): 0.85 is too conservative"}}
    (plain,), _ = recommend(
        verdicts, incumbent="old", candidates=["new"], policy=RecommendPolicy(), deltas={}
    )
    (shifted,), _ = recommend(
        verdicts, incumbent="old", candidates=["new"], policy=RecommendPolicy(), deltas={}, calibration=note
    )
    assert plain.headline == "migrate to new"
    assert shifted.action == plain.action == "migrate"  # the verdict statistics are untouched
    assert shifted.headline == "migrate to new (re-threshold g)"
    assert shifted.reasons[-1] == f"re-threshold g (calibration, not the prompt): {note['new']['g']}"
    assert shifted.to_dict()["rethreshold"] == note["new"]


def test_a_regressed_confidence_score_is_re_threshold_not_re_engineer() -> None:
    verdicts = {
        "g": {
            "new": {"finding": "regressed", "scores": [{"check": "label_confidence", "finding": "regressed"}]}
        }
    }
    (r,), _ = recommend(verdicts, incumbent="old", candidates=["new"], policy=RecommendPolicy(), deltas={})
    assert r.regressed["g"] == {"checks": ["score of label_confidence"], "remedy": "re-threshold"}


# -- end to end: recorded with the real SDKs, replayed -------------------------------------------

TICKETS = [("refund", "Please refund my order", "billing"), ("invoice", "The invoice total is wrong", "billing"),
           ("charge", "I was charged twice", "billing"), ("crash", "Refund button crashes the app", "technical")]  # fmt: skip


def _choices(values: list[float], reply: str = "billing") -> list[dict[str, Any]]:
    return [{"reply": reply, "confidence": v} for v in values]


def _claude_choices(values: list[float]) -> list[dict[str, Any]]:
    return [{"json": {"queue": "billing", "confidence": v}} for v in values]


SCRIPT: dict[str, Any] = {
    "models": {
        # the incumbent: sure of its labels
        "emu-old": {"rules": [{"match": "(?i)^route", "choices": _choices([0.97, 0.95, 0.94, 0.93])}]},
        # a candidate less sure of the same labels, still above the 0.8 threshold: a silent shift
        "emu-new": {"rules": [{"match": "(?i)^route", "choices": _choices([0.86, 0.84, 0.83, 0.82])}]},
        # Anthropic: no logprobs; the app asks for a self-reported confidence
        "emu-claude": {
            "rules": [{"match": "(?i)^route", "choices": _claude_choices([0.99, 0.97, 0.98, 0.96])}]
        },
    }
}

TESTS = """
import json

import pytest

import app

TICKETS = {tickets!r}


def route(model, text):
    prompt = "Route this ticket to billing or technical: " + text
    if model.startswith("emu-claude"):
        reply = json.loads(app.claude(model, prompt))
        return reply["queue"], float(reply["confidence"]), None
    response = app.openai_client().chat.completions.create(
        model=model, messages=[{{"role": "user", "content": prompt}}], logprobs=True
    )
    return response.choices[0].message.content.strip(), None, response


@pytest.mark.prompt("queue-confidence")
@pytest.mark.samples(3)
@pytest.mark.parametrize("ticket", TICKETS, ids=[t[0] for t in TICKETS])
def test_auto_route(model, checks, ticket):
    _id, text, expected = ticket
    queue, self_reported, response = route(model, text)
    if response is None:
        checks.confidence(self_reported, correct=queue == expected, threshold=0.8)
    else:
        checks.label_confidence(response, threshold=0.8, expected=expected)
"""

MODELS = "--models=emu-old,emu-new,emu-claude"
REPORTS = ("--migration-json=run.json", "--migration-markdown=run.md", "--migration-html=run.html")


@pytest.fixture
def recorded(pytester: pytest.Pytester, start_emulator: StartEmulator) -> pytest.Pytester:
    emulator = start_emulator(SCRIPT, test_route=TESTS.format(tickets=TICKETS))
    pytester.makeini("[pytest]\nmodelmigrate_incumbent = emu-old\n")
    result = pytester.runpytest(MODELS, "--record-mode=once", "-p", "no:randomly")
    # the "crash" ticket is confidently wrong on every model (billing at >= 0.8): 3 failures
    result.assert_outcomes(passed=9, failed=3)
    emulator.stop()  # the replay below must not need it
    return pytester


def _calibration(run: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = run["calibration"]["groups"]["queue-confidence"]
    return entry


def test_recorded_confidences_replay_into_every_report(recorded: pytest.Pytester) -> None:
    from pytest_modelmigrate.cli import main

    result = recorded.runpytest(MODELS, "--record-mode=none", "-p", "no:randomly", *REPORTS)
    result.assert_outcomes(passed=9, failed=3)
    run = json.loads((recorded.path / "run.json").read_text(encoding="utf-8"))
    validate_run(run)
    entry = _calibration(run)
    assert entry["threshold"] == 0.8
    assert entry["checks"] == ["confidence", "label_confidence"]
    old, new, claude = (entry["models"][m] for m in ("emu-old", "emu-new", "emu-claude"))
    # 4 tickets x 3 samples; the emulator draws the k-th choice of each prompt per sample
    assert old["n"] == new["n"] == claude["n"] == 12
    assert old["quantiles"]["p50"] >= 0.93
    assert new["quantiles"]["p90"] <= 0.86
    assert old["above"]["rate"] == new["above"]["rate"] == 1.0  # the threshold check still passes
    assert old["accuracy"] == pytest.approx(0.75)  # the crash ticket is routed wrongly
    assert old["above"]["accuracy"] == pytest.approx(0.75)
    assert claude["correct_known"] == 12
    assert claude["ece"] == pytest.approx(abs(0.75 - claude["mean"]), abs=1e-9)  # one bin: 0.9-1.0
    assert sum(old["histogram"]) == 12
    assert old["histogram"][9] == 12 - old["histogram"][8]

    shift = entry["comparisons"]["emu-new"]
    assert shift["finding"] == "shift"
    assert shift["direction"] == "too conservative"
    assert shift["median_shift"] < -0.03
    assert shift["rate_match"]["incumbent_rate"] == 1.0
    assert shift["rate_match"]["threshold"] < 0.8  # 0.8 on emu-old means less on emu-new
    assert shift["precision_match"]["incumbent_precision"] == pytest.approx(0.75)
    assert entry["comparisons"]["emu-claude"]["direction"] in ("too aggressive", None)

    # the recommendation names the re-threshold, whatever its action
    rec = next(r for r in run["gate"]["recommendations"] if r["candidate"] == "emu-new")
    assert "queue-confidence" in rec["rethreshold"]
    assert rec["headline"].endswith("(re-threshold queue-confidence)")
    assert any(
        r.startswith("re-threshold queue-confidence (calibration, not the prompt): ") for r in rec["reasons"]
    )

    # the terminal section and `modelmigrate show --format text` print the same lines as the JSON
    out = result.outlines
    for line in shift["lines"]:
        assert any(o.strip() == line for o in out), line
    assert any(o.startswith("calibration (recorded confidences per prompt group") for o in out)
    assert any(o.split()[:2] == ["emu-new", "12"] for o in out)
    assert main(["show", str(recorded.path / "run.json"), "--format", "text", "-o", "show.txt"]) == 0
    shown = (recorded.path / "show.txt").read_text(encoding="utf-8").splitlines()
    section = [o for o in out if o.strip() in {s.strip() for s in cal.calibration_lines(run)}]
    assert [s for s in shown if s.strip() in {x.strip() for x in section}] == section

    md = (recorded.path / "run.md").read_text(encoding="utf-8")
    page = html.unescape((recorded.path / "run.html").read_text(encoding="utf-8"))
    assert main(["show", str(recorded.path / "run.json"), "--format", "migration", "-o", "doc.md"]) == 0
    doc = (recorded.path / "doc.md").read_text(encoding="utf-8")
    rate_line = shift["lines"][0]
    assert rate_line.startswith("0.80 on emu-old ≈ ") and "(same auto-route rate 100%)" in rate_line
    for text in (md, doc):
        unescaped = text.replace("\\", "")
        assert rate_line in unescaped
        assert shift["lines"][-1] in unescaped
        assert "ECE" in text
    assert rate_line in page
    assert shift["lines"][-1] in page
    assert page.count('class="calibration-histogram"') == 3  # one histogram per model
    assert f"{claude['ece']:.2f}" in page


def test_a_stable_candidate_has_no_re_threshold(
    pytester: pytest.Pytester, start_emulator: StartEmulator
) -> None:
    script = {
        "models": {
            "emu-old": {"rules": [{"match": "(?i)^route", "choices": _choices([0.95, 0.94, 0.93])}]},
            "emu-new": {"rules": [{"match": "(?i)^route", "choices": _choices([0.94, 0.95, 0.93])}]},
        }
    }
    emulator = start_emulator(script, test_route=TESTS.format(tickets=TICKETS[:3]))
    pytester.makeini("[pytest]\nmodelmigrate_incumbent = emu-old\n")
    pytester.runpytest("--models=emu-old,emu-new", "--record-mode=once", "-p", "no:randomly").assert_outcomes(
        passed=6
    )
    emulator.stop()
    result = pytester.runpytest("--models=emu-old,emu-new", "-p", "no:randomly", "--migration-json=run.json")
    result.assert_outcomes(passed=6)
    run = json.loads((pytester.path / "run.json").read_text(encoding="utf-8"))
    validate_run(run)
    comp = _calibration(run)["comparisons"]["emu-new"]
    assert comp["finding"] == "stable"
    assert comp["remedy"] is None
    rec = run["gate"]["recommendations"][0]
    assert rec["rethreshold"] == {}
    assert "re-threshold" not in rec["headline"]
    assert any(line.strip().startswith("no shift on emu-new: median ") for line in result.outlines)
