"""Drift scores per prompt and candidate, and the under-evidence flags, in every report.

Unit tests of the two pure modules (``drift_scores``, ``under_evidence``) on hand-made outcomes,
then pytester projects recorded against the emulator through the real openai SDK and replayed
from their cassettes: a drift check over two models, a dataset of 5 examples, a single-sample
run and a ``--samples=3`` run. Each asserts the terminal, the JSON (validated against the
schema), the Markdown, the HTML and the migration document.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from pytest_modelmigrate.cli import main as cli_main
from pytest_modelmigrate.drift_scores import drift_lines, drift_scores
from pytest_modelmigrate.emulator import Emulator
from pytest_modelmigrate.reports.run import validate_run
from pytest_modelmigrate.results import Outcome
from pytest_modelmigrate.settings import SettingsError, resolve
from pytest_modelmigrate.under_evidence import flag_lines, under_evidence

StartEmulator = Callable[..., Emulator]


# -- unit: drift scores -------------------------------------------------------------------------


def drift_check(
    score: float | None, sample: int, *, min_score: float | None = 0.5, label: str = ""
) -> dict[str, Any]:
    details: dict[str, Any] = {"available": score is not None, "scorer": "lexical", "kind": "lexical"}
    details["min_score"] = min_score
    if label:
        details = {"check": "drift", **details}
    passed = score is not None and (min_score is None or score >= min_score)
    return {
        "name": label or "drift",
        "passed": passed,
        "message": "",
        "details": details,
        "score": score,
        "sample": sample,
    }


def outcome(
    test: str,
    model: str,
    checks: list[dict[str, Any]],
    *,
    samples: int = 1,
    group: str = "reply",
    **extra: Any,
) -> Outcome:
    return Outcome(
        nodeid=f"{test}[{model}]",
        test=test,
        model=model,
        group=group,
        outcome="passed",
        samples=["passed"] * samples if samples > 1 else [],
        checks=checks,
        extra=dict(extra),
    )


def test_drift_scores_are_a_distribution_per_group_and_candidate() -> None:
    scores = [0.2, 0.4, 0.6, 0.8, 1.0]
    new = [drift_check(s, i) for i, s in enumerate(scores)]
    new.append(drift_check(0.6, 4))  # scored twice in sample 4: the sample counts as (1.0 + 0.6) / 2
    outcomes = [
        outcome("t.py::test_a", "old", [drift_check(1.0, 0)]),  # the incumbent: left out
        outcome("t.py::test_a", "new", new[:3], samples=3),
        outcome("t.py::test_b", "new", new[3:], samples=2),
        outcome(
            "t.py::test_a",
            "other",
            [
                drift_check(0.9, 0, min_score=None, label="tone"),
                drift_check(None, 1, min_score=None, label="tone"),
            ],
        ),
        Outcome(
            nodeid="t.py::test_c[new]",
            test="t.py::test_c",
            model="new",
            group="reply",
            outcome="skipped",
            checks=[drift_check(0.0, 0)],
        ),
    ]
    rows = [r.to_dict() for r in drift_scores(outcomes, "old", ["old", "new", "other"])]
    assert [(r["group"], r["model"], r["check"]) for r in rows] == [
        ("reply", "new", "drift"),
        ("reply", "other", "tone"),
    ]
    new_row, other_row = rows
    # samples: 0.2 0.4 0.6 | 0.8 0.8 (the mean of 1.0 and 0.6); the skipped test adds nothing
    assert new_row["samples"] == 5 and new_row["tests"] == 2 and new_row["unscored"] == 0
    assert new_row["min"] == pytest.approx(0.2) and new_row["max"] == pytest.approx(0.8)
    assert new_row["p10"] == pytest.approx(0.2)  # nearest rank: ceil(0.1 * 5) = the first
    assert new_row["median"] == pytest.approx(0.6)
    assert new_row["mean"] == pytest.approx((0.2 + 0.4 + 0.6 + 0.8 + 0.8) / 5)
    assert new_row["min_score"] == 0.5 and new_row["below"] == 2
    assert other_row["samples"] == 1 and other_row["unscored"] == 1
    assert other_row["min_score"] is None and other_row["below"] == 0
    assert drift_lines(rows) == [
        "drift from the incumbent, per prompt group and candidate:",
        "  prompt group  candidate  check  scorer   samples   min   p10  median  mean   max  below min_score",
        "  reply         new        drift  lexical        5  0.20  0.20    0.60  0.56  0.80     2 of 5 < 0.5",
        "  reply         other      tone   lexical        1  0.90  0.90    0.90  0.90  0.90                -",
        "  Similarity of each candidate answer to the incumbent's answer for the same test "
        "(1 = the same; lexical = shared wording, not meaning); p10 nearest-rank.",
        "  reply on other (tone): 1 sample(s) not scored, no incumbent answer recorded for them "
        "(record the incumbent's cassettes)",
    ]


def test_without_an_incumbent_every_model_has_its_drift_row() -> None:
    outcomes = [outcome("t.py::test_a", m, [drift_check(0.7, 0)]) for m in ("a", "b")]
    assert [r.model for r in drift_scores(outcomes, None, ["a", "b"])] == ["a", "b"]
    assert drift_scores([outcome("t.py::test_a", "a", [])], None, ["a"]) == []


# -- unit: under-evidence flags -----------------------------------------------------------------


def examples(n: int, model: str, *, file: str | None = "cases.jsonl") -> list[Outcome]:
    settings = {"file": file} if file else {"labels": ["a"]}
    return [
        Outcome(
            nodeid=f"t.py::test_ds[e{i}-{model}]",
            test="t.py::test_ds",
            model=model,
            group="triage",
            outcome="passed",
            extra={"dataset_settings": settings},
        )
        for i in range(n)
    ]


def test_a_dataset_smaller_than_the_minimum_is_flagged_with_how_many_to_add() -> None:
    flags = under_evidence([*examples(40, "old"), *examples(38, "new")], min_dataset_examples=100)
    assert [f.to_dict() for f in flags] == [
        {
            "kind": "dataset",
            "group": "triage",
            "test": "t.py::test_ds",
            "dataset": "cases.jsonl",
            "candidate": None,
            "tests": 0,
            "have": 40,
            "minimum": 100,
            "reason": "dataset cases.jsonl has 40 example(s) in this run; the minimum is 100",
            "fix": "add 60",
            "line": "dataset cases.jsonl has 40 example(s) in this run; the minimum is 100: add 60",
        }
    ]
    assert under_evidence(examples(40, "old"), min_dataset_examples=40) == []
    unnamed = under_evidence(examples(3, "old", file=None))
    assert (
        unnamed[0].line
        == "dataset test t.py::test_ds has 3 example(s) in this run; the minimum is 100: add 97"
    )
    with pytest.raises(ValueError, match="modelmigrate_min_dataset_examples: must be at least 1"):
        under_evidence([], min_dataset_examples=0)


def test_a_verdict_on_one_sample_per_test_is_flagged_and_three_samples_are_not() -> None:
    def run(old: int, new: int) -> list[Outcome]:
        return [
            outcome(f"t.py::test_{i}", m, [], samples=n)
            for i in range(2)
            for m, n in (("old", old), ("new", new))
        ]

    one = under_evidence(run(1, 1), verdicts=[("reply", "new")], incumbent="old")
    assert [f.line for f in one] == [
        "verdict on new rests on 1 sample per test (2 test(s)): --samples=N or --samples=auto"
    ]
    assert (one[0].kind, one[0].group, one[0].candidate, one[0].tests) == ("samples", "reply", "new", 2)
    assert under_evidence(run(3, 3), verdicts=[("reply", "new")], incumbent="old") == []
    # a long incumbent history does not help a candidate that took one sample
    assert len(under_evidence(run(10, 1), verdicts=[("reply", "new")], incumbent="old")) == 1
    held = under_evidence(run(1, 1), verdicts=[("reply", "new")], incumbent="old", samples=5)
    assert "the run asked for 5" in held[0].fix
    # a deterministic group is compared on its one recorded answer, by design
    assert (
        under_evidence(run(1, 1), verdicts=[("reply", "new")], incumbent="old", deterministic={"reply"}) == []
    )
    # no verdict, nothing flagged; dataset tests rest on their examples, not on samples
    assert under_evidence(run(1, 1), incumbent="old") == []
    datasets = [*examples(200, "old"), *examples(200, "new")]
    assert under_evidence(datasets, verdicts=[("triage", "new")], incumbent="old") == []


def test_the_flag_lines_read_the_run_file() -> None:
    flags = under_evidence(examples(5, "old"))
    run = {"under_evidence": {"min_dataset_examples": 100, "flags": [f.to_dict() for f in flags]}}
    assert flag_lines(run) == [
        "under-evidenced (information only: the verdicts and the gate do not change):",
        "  triage: dataset cases.jsonl has 5 example(s) in this run; the minimum is 100: add 95",
    ]
    assert flag_lines({"under_evidence": {"min_dataset_examples": 100, "flags": []}}) == []
    assert flag_lines({}) == []


def test_merged_shards_are_flagged_against_the_minimum_the_shards_ran_with(tmp_path: Path) -> None:
    from pytest_modelmigrate.analysis import Shard, analyse
    from pytest_modelmigrate.models import ModelSpec
    from pytest_modelmigrate.reports.run import write_json

    models = (ModelSpec("old", "gpt-old"), ModelSpec("new", "gpt-new"))
    everything = [*examples(4, "old"), *examples(4, "new")]

    def shards(minimum: int) -> list[str]:
        paths = []
        for k, model in enumerate(("old", "new"), start=1):
            part = [o for o in everything if o.model == model]
            shard = Shard(k, 2, tuple(sorted(o.nodeid for o in part)))
            run = analyse(
                part, models=models, incumbent="old", policy=None, shard=shard, min_dataset_examples=minimum
            )
            path = tmp_path / f"min{minimum}-shard-{k}.json"
            write_json(path, run.to_dict())
            paths.append(str(path))
        return paths

    for minimum, lines in (
        (3, []),
        (5, ["dataset cases.jsonl has 4 example(s) in this run; the minimum is 5: add 1"]),
    ):
        out = tmp_path / f"merged-{minimum}.json"
        cli_main(["merge", *shards(minimum), "-o", str(out), "--gate=report"])
        merged = json.loads(out.read_text(encoding="utf-8"))
        validate_run(merged)
        assert merged["under_evidence"]["min_dataset_examples"] == minimum
        assert [f["line"] for f in merged["under_evidence"]["flags"]] == lines


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "ini modelmigrate_min_dataset_examples: must be at least 1, got 0"),
        ("many", "ini modelmigrate_min_dataset_examples: 'many' is not a whole number; use e.g. 5"),
    ],
)
def test_a_bad_minimum_is_a_usage_error_naming_the_ini_key(value: str, message: str, tmp_path: Path) -> None:
    ini = {"modelmigrate_min_dataset_examples": value}
    with pytest.raises(SettingsError) as info:
        resolve(lambda key: None, lambda name: ini.get(name), rootpath=tmp_path, record_mode="none")
    assert str(info.value) == message


def test_the_minimum_defaults_to_100_and_the_ini_file_sets_it(tmp_path: Path) -> None:
    default = resolve(lambda key: None, lambda name: None, rootpath=tmp_path, record_mode="none")
    assert default.min_dataset_examples == 100
    ini = {"modelmigrate_min_dataset_examples": "20"}
    assert (
        resolve(lambda key: None, ini.get, rootpath=tmp_path, record_mode="none").min_dataset_examples == 20
    )


# -- end to end: recorded against the emulator, replayed from the cassettes ------------------------

REPORTS = (
    "--migration-json=run.json",
    "--migration-markdown=run.md",
    "--migration-html=run.html",
    "-p",
    "no:randomly",
)


def reports(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any], dict[str, str]]:
    """Replay with every report on; the run file (validated) and every rendering of it."""
    result = pytester.runpytest(*args, *REPORTS)
    path = pytester.path
    run = json.loads((path / "run.json").read_text(encoding="utf-8"))
    validate_run(run)
    out = path / "run.migration.md"
    assert cli_main(["show", str(path / "run.json"), "--format", "migration", "-o", str(out)]) == 0
    texts = {
        "md": (path / "run.md").read_text(encoding="utf-8"),
        "html": (path / "run.html").read_text(encoding="utf-8"),
        "migration": out.read_text(encoding="utf-8"),
    }
    return result, run, texts


def terminal(result: pytest.RunResult) -> list[str]:
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if "model migration matrix" in line)
    return lines[start + 1 :]


def md_unescape(text: str) -> str:
    return unescape(text.replace("\\", ""))


DRIFT_SCRIPT = {
    "models": {
        "emu-old": {
            "rules": [
                {"match": "(?i)refund", "reply": "We will refund your order within five days."},
                {"match": "(?i)summar", "reply": "The customer wants a refund for order 1234."},
            ]
        },
        "emu-new": {
            "rules": [
                {
                    "match": "(?i)refund",
                    "sequence": [
                        {"reply": "We will refund your order within five days."},
                        {"reply": "We will refund your order soon."},
                        {"reply": "Refunds are not possible. Goodbye."},
                    ],
                },
                {"match": "(?i)summar", "reply": "Customer asks for a refund of order 1234."},
            ]
        },
    }
}

DRIFT_TESTS = """
import pytest
import app

@pytest.mark.prompt("refund-reply")
def test_reply(model, checks):
    checks.drift(app.chat(model, "Write a reply to a customer who wants a refund"), min_score=0.5)

@pytest.mark.prompt("summary")
def test_summary(model, checks):
    checks.drift(app.chat(model, "Summarize the ticket: order 1234"))
"""

MODELS = "--models=emu-old,emu-new"


@pytest.fixture
def drift_project(pytester: pytest.Pytester, start_emulator: StartEmulator) -> pytest.Pytester:
    """The drift project recorded with three samples per test, the emulator stopped after."""
    emulator = start_emulator(DRIFT_SCRIPT, test_drift=DRIFT_TESTS)
    pytester.runpytest(MODELS, "--samples=3", "--record-mode=once", "-p", "no:randomly").assert_outcomes(
        passed=3, failed=1
    )
    emulator.stop()
    return pytester


def test_drift_over_two_models_recorded_and_replayed_in_every_report(drift_project: pytest.Pytester) -> None:
    result, run, texts = reports(drift_project, MODELS, "--samples=3")
    result.assert_outcomes(passed=3, failed=1)
    rows = {r["group"]: r for r in run["drift"]}
    assert set(rows) == {"refund-reply", "summary"}  # the incumbent has no row: 1.0 by construction
    refund = rows["refund-reply"]
    assert (refund["model"], refund["samples"], refund["tests"], refund["min_score"]) == (
        "emu-new",
        3,
        1,
        0.5,
    )
    assert refund["max"] == pytest.approx(1.0)  # sample 1 answers word for word like the incumbent
    assert refund["min"] < 0.5 and refund["below"] == 1
    outcome = next(o for o in run["outcomes"] if o["model"] == "emu-new" and o["group"] == "refund-reply")
    scores = sorted(c["score"] for c in outcome["checks"] if c["name"] == "drift")
    assert refund["min"] == pytest.approx(scores[0]) and refund["median"] == pytest.approx(scores[1])
    assert refund["mean"] == pytest.approx(sum(scores) / 3)
    assert rows["summary"]["min_score"] is None and rows["summary"]["below"] == 0

    lines = terminal(result)
    heading = lines.index("drift from the incumbent, per prompt group and candidate:")
    table = lines[heading + 1 : heading + 4]
    assert table[0].split() == [
        "prompt",
        "group",
        "candidate",
        "check",
        "scorer",
        "samples",
        "min",
        "p10",
        "median",
        "mean",
        "max",
        "below",
        "min_score",
    ]

    def cells(row: dict[str, Any]) -> list[str]:
        numbers = [f"{row[k]:.2f}" for k in ("min", "p10", "median", "mean", "max")]
        return [row["group"], "emu-new", "drift", "lexical", str(row["samples"]), *numbers]

    assert table[1].split()[:10] == cells(refund) and table[1].endswith("1 of 3 < 0.5")
    assert table[2].split()[:10] == cells(rows["summary"]) and table[2].endswith(" -")

    md = texts["md"]
    assert "### Drift from the incumbent" in md
    md_row = "| " + " | ".join([*cells(refund), "1 of 3 < 0.5"]) + " |"
    assert md_row in md_unescape(md)
    html = unescape(texts["html"])
    assert "<h2>Drift from the incumbent</h2>" in html
    assert "".join(f"<td>{c}</td>" for c in cells(refund)[:4]) in html
    assert '<td class="num">1 of 3 < 0.5</td>' in html
    doc = md_unescape(texts["migration"])
    refund_section = doc[doc.index("## refund-reply") : doc.index("## summary")]
    assert "### Drift from the incumbent" in refund_section
    assert "| " + " | ".join([*cells(refund)[1:], "1 of 3 < 0.5"]) + " |" in refund_section
    assert "| emu-new | drift | lexical | 3 |" in doc[doc.index("## summary") :]

    # three samples per test: no verdict rests on one, nothing is flagged
    assert run["under_evidence"] == {"min_dataset_examples": 100, "flags": []}
    assert not any(line.startswith("under-evidenced") for line in lines)
    assert "Under-evidenced" not in md + texts["html"] + texts["migration"]


def test_a_single_sample_run_is_flagged_in_every_report(
    drift_project: pytest.Pytester, plugin_args: tuple[str, ...]
) -> None:
    result, run, texts = reports(drift_project, MODELS, *plugin_args)
    flags = run["under_evidence"]["flags"]
    assert [(f["kind"], f["group"], f["candidate"]) for f in flags] == [
        ("samples", "refund-reply", "emu-new"),
        ("samples", "summary", "emu-new"),
    ]
    line = "verdict on emu-new rests on 1 sample per test (1 test(s)): --samples=N or --samples=auto"
    assert {f["line"] for f in flags} == {line}
    verdicts = run["gate"]["verdicts"]
    assert set(verdicts) == {"refund-reply", "summary"}  # flags only: every verdict is still there

    lines = terminal(result)
    start = lines.index("under-evidenced (information only: the verdicts and the gate do not change):")
    assert lines[start + 1 : start + 3] == [f"  refund-reply: {line}", f"  summary: {line}"]
    gate = next(i for i, text in enumerate(lines) if text.startswith("migration gate"))
    assert start < gate  # the gate line stays last

    md = md_unescape(texts["md"])
    assert md.index("### Verdicts") < md.index("### Under-evidenced") < md.index("Pass rates")
    assert f"- ⚠️ **refund-reply**: {line}" in md and f"- ⚠️ **summary**: {line}" in md
    html = unescape(texts["html"])
    assert f"<li><strong>refund-reply</strong>: {line}</li>" in html
    assert html.index("<h2>Verdicts</h2>") < html.index("<h2>Under-evidenced</h2>")
    doc = md_unescape(texts["migration"])
    for group, end in (("refund-reply", "## summary"), ("summary", None)):
        section = doc[doc.index(f"## {group}") : doc.index(end) if end else None]
        assert f"**Under-evidenced** (information only; the verdict stands):\n\n- ⚠️ {line}" in section


DATASET_SCRIPT = {
    "models": {
        "emu-old": {
            "rules": [{"match": "(?i)refund|invoice|charged", "reply": "billing"}],
            "default": "technical",
        },
        "emu-new": {
            "rules": [
                {"match": "crashed", "reply": "technical"},
                {"match": "(?i)refund|invoice|charged", "reply": "billing"},
            ],
            "default": "technical",
        },
    }
}
TICKETS = [
    ("refund-1", "Please refund my last order", "billing"),
    ("invoice-1", "The invoice total is wrong", "billing"),
    ("crash-1", "The app crashes on start", "technical"),
    ("login-1", "I cannot log in since the update", "technical"),
    ("edge-1", "Edge case: charged again after the app crashed", "billing"),
]
DATASET_TESTS = """
import pytest
import app

@pytest.mark.prompt("ticket-triage", purpose="Route a ticket to one queue")
@pytest.mark.dataset("tickets.jsonl", labels=["billing", "technical"])
def test_routes_tickets(model, example, prediction):
    prediction.label(app.chat(model, "Route this ticket: " + example["text"]).strip())
"""


def test_a_dataset_of_five_examples_is_flagged_and_the_gate_does_not_change(
    pytester: pytest.Pytester, start_emulator: StartEmulator
) -> None:
    pytester.makefile(
        ".jsonl",
        tickets="\n".join(json.dumps({"id": i, "text": t, "label": label}) for i, t, label in TICKETS),
    )
    emulator = start_emulator(DATASET_SCRIPT, test_triage=DATASET_TESTS)
    pytester.runpytest(MODELS, "--record-mode=once", "-p", "no:randomly").assert_outcomes(passed=9, failed=1)
    emulator.stop()

    result, run, texts = reports(pytester, MODELS)
    line = "dataset tickets.jsonl has 5 example(s) in this run; the minimum is 100: add 95"
    assert run["under_evidence"]["min_dataset_examples"] == 100
    assert [
        (f["kind"], f["group"], f["test"], f["dataset"], f["have"], f["line"])
        for f in run["under_evidence"]["flags"]
    ] == [("dataset", "ticket-triage", "test_triage.py::test_routes_tickets", "tickets.jsonl", 5, line)]
    assert f"  ticket-triage: {line}" in terminal(result)
    assert f"- ⚠️ **ticket-triage**: {line}" in md_unescape(texts["md"])
    assert f"<li><strong>ticket-triage</strong>: {line}</li>" in unescape(texts["html"])
    assert f"- ⚠️ {line}" in md_unescape(texts["migration"])

    # the minimum is a setting; meeting it removes the flag and changes nothing else
    met, met_run, met_texts = reports(pytester, MODELS, "-o", "modelmigrate_min_dataset_examples=5")
    assert met_run["under_evidence"] == {"min_dataset_examples": 5, "flags": []}
    assert "Under-evidenced" not in met_texts["md"] + met_texts["html"] + met_texts["migration"]
    assert met.ret == result.ret == pytest.ExitCode.TESTS_FAILED
    assert met_run["gate"] == run["gate"]
