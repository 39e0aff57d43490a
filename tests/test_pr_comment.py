"""The Markdown report as a sticky pull-request comment: decision first, details folded, bounded.

A GitHub comment holds at most 65,536 characters. A real pytest session of 500 tests on two
models writes a report that would pass that; the renderer keeps it under ``MAX_CHARS`` by
leaving out the least important parts first, and says so. The decision and every verdict stay.
The example project's workflow posts that file as one comment per pull request.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_reports import call, outcome

from pytest_modelmigrate.analysis import analyse
from pytest_modelmigrate.datasets import label_record
from pytest_modelmigrate.gate import GatePolicy
from pytest_modelmigrate.models import ModelSpec
from pytest_modelmigrate.reports.markdown import CUTS, MAX_CHARS, render_markdown
from pytest_modelmigrate.reports.run import validate_run

REPO = Path(__file__).resolve().parent.parent
WORKFLOW = REPO / "example_project" / ".github" / "workflows" / "model-migration.yml"
LEFT_OUT = re.compile(
    r"_Left out to keep this report under ([\d,]+) characters: (?P<what>.+?)\. See (?P<where>.+?)\._"
)

# 500 tests in 250 prompt groups; the candidate breaks every fourth. No HTTP: the model fixture only.
# The prompts are deterministic, so a one-sample pass -> fail flip is a regression and the gate fails.
BIG_SUITE = """
import pytest

TOPICS = ["refund-for-a-double-charge", "password-reset-link-expired", "outage-in-the-eu-region",
          "invoice-address-change", "upgrade-to-the-team-plan"]
CASES = [
    pytest.param(
        i,
        marks=pytest.mark.prompt(f"support-prompt-{i % 250:03d}", deterministic=True),
        id=f"ticket-{i:03d}-{TOPICS[i % 5]}",
    )
    for i in range(500)
]


@pytest.mark.parametrize("case", CASES)
def test_reply(model, case):
    reply = f"reply to ticket {case} from {model}: " + "thanks for reaching out, " * 20
    assert not (model == "gpt-new" and case % 4 == 0), f"the reply lost its greeting: {reply}"
"""

SMALL_SUITE = """
import pytest


@pytest.mark.prompt("greeting", deterministic=True)
@pytest.mark.parametrize("case", range(3))
def test_greets(model, case):
    assert not (model == "gpt-new" and case == 0), "no greeting"


@pytest.mark.prompt("farewell")
def test_says_bye(model):
    pass
"""

SESSION_ARGS = (
    "--models=gpt-old,gpt-new",
    "--migration-markdown=comment.md",
    "--migration-json=run.json",
    "--migration-gate=no-regression",
    "-p",
    "no:randomly",
)


# -- reading the comment as a reader does ------------------------------------------------------


def unescape(text: str) -> str:
    """Inline Markdown as it renders: backslash escapes and entities undone, bold markers dropped."""
    plain = re.sub(r"\\(.)|\*\*", lambda m: m.group(1) or "", text)
    return " ".join(html.unescape(plain).replace("\xa0", " ").split())


def cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def gate_statement(md: str) -> tuple[int, str]:
    """The line number and text of the gate statement."""
    for i, line in enumerate(md.splitlines()):
        if "**Migration gate" in line or "**No migration gate" in line:
            return i, line
    raise AssertionError(f"no gate statement in:\n{md[:2000]}")


def recommendation(md: str) -> tuple[int, list[str]]:
    """The line number of the Recommendation heading and its bullets, as they render."""
    lines = md.splitlines()
    start = lines.index("### Recommendation")
    bullets: list[str] = []
    for line in lines[start + 2 :]:
        if not line.startswith("- "):
            break
        bullets.append(unescape(line[2:]))
    return start, bullets


def verdict_table(md: str) -> tuple[int, dict[tuple[str, str], tuple[str, str]]]:
    """The line number of the verdict table's header and its rows: (group, candidate) -> (verdict, reason)."""
    lines = md.splitlines()
    start = lines.index("| prompt group | candidate | verdict | finding | drop, pts [interval] | reason |")
    rows: dict[tuple[str, str], tuple[str, str]] = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        group, cand, verdict, _finding, _drop, reason = (unescape(c) for c in cells(line))
        rows[group, cand] = (verdict.split()[-1], reason)
    return start, rows


def notes(md: str) -> list[str]:
    """What each cut says it left out, in the report's order."""
    return [m["what"] for m in LEFT_OUT.finditer(md)]


def assert_valid_folds(md: str) -> None:
    """Every ``<details>`` closes, with the blank lines GitHub needs to render the Markdown inside."""
    lines = md.splitlines()
    depth = 0
    for i, line in enumerate(lines):
        if line.startswith("<details>"):
            assert re.fullmatch(r"<details><summary>[^<>]+</summary>", line), line
            assert lines[i + 1] == "", f"line {i + 2}: no blank line after {line!r}"
            depth += 1
        elif line == "</details>":
            assert lines[i - 1] == "", f"line {i}: no blank line before </details>"
            depth -= 1
        assert depth in (0, 1), f"line {i + 1}: <details> nested or closed twice"
    assert depth == 0


def assert_decision_and_verdicts_intact(md: str, run: dict[str, Any]) -> None:
    """The recommendation, the gate statement with the JSON's reason, then every verdict, before any fold."""
    gate = run["gate"]
    gate_at, statement = gate_statement(md)
    rec_at, bullets = recommendation(md)
    assert rec_at < gate_at
    want_bullets = [f"{rec['headline']}: {'; '.join(rec['reasons'])}" for rec in gate["recommendations"]]
    if (gate.get("sunset") or {}).get("line"):
        want_bullets.append(gate["sunset"]["line"])
    assert len(bullets) == len(want_bullets)
    for bullet, want in zip(bullets, want_bullets, strict=True):
        assert bullet.endswith(" ".join(want.split())), (bullet, want)  # whole, never shortened
    word = "PASSED" if gate["passed"] else "FAILED"
    assert statement.startswith(("✅", "❌"))
    assert f"**Migration gate {word}**" in statement
    assert unescape(statement).split("): ", 1)[1] == " ".join(gate["reason"].split())
    table_at, rows = verdict_table(md)
    want = {
        (group, cand): (v["verdict"], " ".join(v["reason"].split()))
        for group, per in gate["verdicts"].items()
        for cand, v in per.items()
    }
    assert set(rows) == set(want)
    for key, (verdict, _reason) in want.items():
        assert rows[key][0] == verdict, key
    lines = md.splitlines()
    first_fold = next((i for i, line in enumerate(lines) if line.startswith("<details>")), len(lines))
    assert gate_at < table_at < first_fold


# -- a real session -----------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [[], ["-n", "0"], ["-n", "2"]], ids=["no-xdist", "n0", "n2"])
def test_a_thousand_results_fit_one_comment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: list[str]
) -> None:
    summary = pytester.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile(test_big=BIG_SUITE)
    result = pytester.runpytest(*SESSION_ARGS, *workers)
    result.assert_outcomes(passed=875, failed=125)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    md = (pytester.path / "comment.md").read_text(encoding="utf-8")
    run = json.loads((pytester.path / "run.json").read_text(encoding="utf-8"))
    validate_run(run)
    assert len(run["outcomes"]) == 1000

    # unbounded, the report would not fit a comment: the bound is what keeps it in
    unbounded = render_markdown(run, max_chars=None)
    assert len(unbounded) > 65_536
    assert len(md) <= MAX_CHARS
    assert md == render_markdown(run)  # what `modelmigrate show --format md` writes from the JSON
    assert summary.read_text(encoding="utf-8") == md + "\n"  # the step summary is bounded too

    assert_decision_and_verdicts_intact(md, run)
    _, rows = verdict_table(md)
    assert len(rows) == 250
    for group, per in run["gate"]["verdicts"].items():
        for cand, v in per.items():
            assert rows[group, cand] == (v["verdict"], " ".join(v["reason"].split()))  # reasons whole
    assert_valid_folds(md)
    assert "### Recommendation" in md and "125 group(s) regressed" in md
    assert notes(md)  # it says what it left out...
    assert all(m["where"] == "the HTML report artifact" for m in LEFT_OUT.finditer(md))  # ...and where
    assert all(m.group(1) == f"{MAX_CHARS:,}" for m in LEFT_OUT.finditer(md))
    # the least important first, and no more than needed: the failure messages, the list of failing
    # tests, the test rows, then the group rows (the recommendation names every regressed group and
    # takes the room the pass rates had); the notes follow the report's order
    assert "### Pass rates (500 test(s), 250 prompt group(s))" in md  # the heading, with its note
    assert "<details><summary>Pass rates" not in md
    assert notes(md) == [
        "the rows of the 250 prompt group(s) and 500 test(s)",
        "the list of the 125 failing test(s)",
    ]


def test_a_small_run_is_whole(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_small=SMALL_SUITE)
    result = pytester.runpytest(*SESSION_ARGS)
    result.assert_outcomes(passed=7, failed=1)
    md = (pytester.path / "comment.md").read_text(encoding="utf-8")
    run = json.loads((pytester.path / "run.json").read_text(encoding="utf-8"))
    assert md == render_markdown(run, max_chars=None)
    assert notes(md) == []
    assert "Left out" not in md
    assert_decision_and_verdicts_intact(md, run)
    assert_valid_folds(md)
    # short sections stay open; the failing tests are folded, with their message
    assert "### Pass rates (4 test(s), 2 prompt group(s))" in md
    assert "<details><summary>Failing tests (1)</summary>" in md
    assert "AssertionError: no greeting" in md


# -- every cut, in order ------------------------------------------------------------------------


def every_section_run() -> dict[str, Any]:
    """A run with every section the Markdown has, each long enough that cutting it saves room."""
    outcomes = []
    for i in range(24):
        test = f"tests/prompts/test_triage.py::test_ticket[case-{i:02d}]"
        bad = i % 3 == 0
        for model in ("gpt-old", "gpt-new"):
            broken = bad and model == "gpt-new"
            outcomes.append(
                outcome(
                    test,
                    model,
                    ["failed"] if broken else ["passed"],
                    group=f"triage-{i % 4}",
                    checks=[(f"check_{k:02d}", not (broken and k <= i // 3)) for k in range(12)],
                    calls=[call(model, 400.0 + 10 * i)],
                    message="AssertionError: " + "the label is not one of the queues; " * 30
                    if broken
                    else None,
                )
            )
    for i in range(6):  # recordings the cassettes could not answer
        o = outcome(
            f"tests/prompts/test_reply.py::test_reply[case-{i}]", "gpt-new", ["failed"], group="reply"
        )
        o.outcome = "missing"
        o.extra["missing"] = "no cassette: tests/cassettes/test_reply/gpt-new/test_reply.yaml"
        outcomes.append(o)
        outcomes.append(
            outcome(f"tests/prompts/test_reply.py::test_reply[case-{i}]", "gpt-old", group="reply")
        )
    for i in range(3):  # dataset tests with their prediction records
        for model in ("gpt-old", "gpt-new"):
            o = outcome(f"tests/prompts/test_routing.py::test_routes[set-{i}]", model, group="routing")
            o.extra["dataset"] = [
                label_record(f"ticket-{k}", "billing" if k % 2 else "tech", "billing" if k % 3 else "tech")
                for k in range(12)
            ]
            outcomes.append(o)
    models = [ModelSpec("gpt-old", "gpt-old"), ModelSpec("gpt-new", "gpt-new")]
    passing = [outcome(o.test, o.model, group=o.group) for o in outcomes if o.outcome != "missing"]
    baseline = analyse(passing, models=models, incumbent="gpt-old", policy=None).to_dict()
    run = analyse(
        outcomes,
        models=models,
        incumbent="gpt-old",
        policy=GatePolicy(mode="no-regression"),
        baseline=baseline,
    ).to_dict()
    validate_run(run)
    return run


def test_every_cut_in_order_and_never_the_decision() -> None:
    """Lowering the bound one character below the last report walks through every cut, in order."""
    run = every_section_run()
    full = render_markdown(run, max_chars=None)
    for heading in (
        "Pass rates",
        "Checks that failed",
        "Latency, tokens, cost",
        "Dataset metrics",
        "Against the baseline",
        "Missing recordings",
        "Failing tests",
    ):
        assert heading in full
    assert notes(full) == []
    seen: list[str] = []
    text = full
    while True:
        bound = len(text) - 1
        shorter = render_markdown(run, max_chars=bound)
        assert_decision_and_verdicts_intact(shorter, run)
        assert_valid_folds(shorter)
        said = notes(shorter)
        seen += [what for what in said if what not in seen]
        if len(shorter) > bound:  # nothing left to cut: the decision and the verdicts stay whole
            break
        text = shorter
    assert len(seen) >= len(CUTS)
    kinds = [
        "the failure messages",
        "the list of the 8 failing test(s)",
        "the rows of the 33 test(s); the group totals are complete",
        "the breakdown of 8 failing check(s)",
        "the metrics of 3 dataset test(s)",
        "latency, tokens and cost of the 2 model(s)",
        "the list of 8 regression(s) against the baseline",
        "the list of 6 recording(s)",
        "the rows of the 6 prompt group(s) and 33 test(s)",
        "the list of 6 recording(s) and the command that records them",
    ]
    assert seen[: len(kinds)] == kinds
    # then the verdict reasons, shorter and shorter, and at last none
    assert all(w.startswith("the verdict reasons past ") for w in seen[len(kinds) : -1])
    assert seen[-1] == "the verdict reasons"
    final_rows = verdict_table(text)[1]
    assert {reason for _, reason in final_rows.values()} == {""}


def test_a_bound_the_verdicts_alone_exceed_cuts_their_reasons_and_says_so() -> None:
    run = every_section_run()
    md = render_markdown(run, max_chars=200)
    assert len(md) > 200  # the decision and every verdict are never cut
    assert_decision_and_verdicts_intact(md, run)
    assert "the verdict reasons" in notes(md)
    assert "### Failing tests (8)" in md and "<details>" not in md


def test_notes_link_to_the_reports_when_given_a_url() -> None:
    run = every_section_run()
    full = len(render_markdown(run, max_chars=None))
    md = render_markdown(run, max_chars=full - 1, details_url="https://ci.example/runs/7 (artifacts)")
    found = list(LEFT_OUT.finditer(md))
    assert found
    assert found[0]["where"] == "[the HTML report](https://ci.example/runs/7%20%28artifacts%29)"


# -- the workflow that posts it -------------------------------------------------------------------


def workflow() -> dict[Any, Any]:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_the_example_workflow_posts_the_report_as_one_sticky_comment() -> None:
    flow = workflow()
    triggers = flow[True] if True in flow else flow["on"]  # YAML 1.1 reads a bare `on` as True
    assert "pull_request" in triggers  # opened, and every push to the branch (synchronize)
    assert flow["permissions"]["pull-requests"] == "write"
    job = flow["jobs"]["replay"]
    workdir = Path(job["defaults"]["run"]["working-directory"])
    steps = job["steps"]
    by_name = {s.get("name"): s for s in steps}

    replay = by_name["Replay the prompt tests against every model"]
    written = re.search(r"--migration-markdown=(\S+)", replay["run"])
    assert written is not None
    markdown = workdir / written.group(1)
    # the step summary comes from $GITHUB_STEP_SUMMARY, which pytest appends to; writing the report
    # over that file as well would show it twice
    assert "GITHUB_STEP_SUMMARY" not in replay["run"]

    comment = by_name["Post the report as a sticky pull-request comment"]
    assert comment["uses"].startswith("marocchino/sticky-pull-request-comment@v")
    assert Path(comment["with"]["path"]) == markdown  # `uses` steps run at the repository root
    assert comment["with"]["header"]
    assert comment["with"]["ignore_empty"] is True
    assert "always()" in comment["if"] and "pull_request" in comment["if"]
    assert steps.index(replay) < steps.index(comment)

    upload = by_name["Upload the report"]
    assert str(markdown) in upload["with"]["path"].split()
    assert "migration.html" in upload["with"]["path"]


@pytest.mark.parametrize("workflow", sorted(WORKFLOW.parent.glob("*.yml")), ids=lambda path: path.name)
def test_the_example_workflows_follow_the_github_workflow_schema(workflow: Path) -> None:
    """check-jsonschema (a test dependency) ships SchemaStore's schema of GitHub workflows: offline."""
    import subprocess
    import sys

    schema = ["--builtin-schema", "vendor.github-workflows"]
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", *schema, str(workflow)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
