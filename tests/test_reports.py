"""Markdown, HTML, the per-check breakdown, the terminal additions and the migration document."""

from __future__ import annotations

import html.parser
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_modelmigrate.analysis import analyse, prompt_flags
from pytest_modelmigrate.gate import GatePolicy, gate_lines
from pytest_modelmigrate.models import ModelSpec
from pytest_modelmigrate.pricing import Price
from pytest_modelmigrate.reports.breakdown import breakdown_lines, check_breakdown
from pytest_modelmigrate.reports.html import rate_colour, render_html
from pytest_modelmigrate.reports.markdown import escape, render_markdown
from pytest_modelmigrate.reports.migration_doc import render_migration_doc
from pytest_modelmigrate.reports.run import validate_run
from pytest_modelmigrate.reports.terminal import fmt_usd, metrics_lines
from pytest_modelmigrate.results import Outcome

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

REPO = Path(__file__).resolve().parent.parent
PRICES = {"gpt-4o": Price(input=2.5, output=10.0), "gpt-5": Price(input=1.25, output=10.0)}


# -- building realistic runs ------------------------------------------------------------------


def call(
    model: str, latency: float | None, inp: int | None = 100, out: int | None = 20, **extra: Any
) -> dict[str, Any]:
    """A ``Call.summary()`` dict."""
    data: dict[str, Any] = {
        "provider": "openai",
        "endpoint": "chat.completions",
        "status": 200,
        "streaming": False,
        "model_requested": model,
        "model_echoed": f"{model}-2026-01-01",
        "finish_reason": "stop",
        "usage": {
            "input_tokens": inp,
            "output_tokens": out,
            "cached_input_tokens": None,
            "reasoning_tokens": None,
        },
        "latency_ms": latency,
        "error": None,
        "refusal": False,
    }
    data.update(extra)
    return data


def outcome(
    test: str,
    model: str,
    samples: Sequence[str] = ("passed",),
    *,
    group: str | None = None,
    checks: Iterable[tuple[str, bool]] = (),
    calls: Sequence[dict[str, Any]] | None = None,
    message: str | None = None,
    prompt: Mapping[str, Any] | None = None,
) -> Outcome:
    """One (test, model); ``checks`` are (name, passed) per sample (repeated for each sample)."""
    check_list = list(checks)
    worst = "failed" if "failed" in samples else samples[0]
    o = Outcome(
        nodeid=f"{test}[{model}]",
        test=test,
        model=model,
        group=group or test.split("::", 1)[0],
        outcome=worst,
        samples=list(samples) if len(samples) > 1 else [],
        checks=[
            {
                "name": name,
                "passed": ok,
                "message": None if ok else f"{name} failed",
                "score": None,
                "sample": i,
            }
            for i in range(len(samples))
            for name, ok in check_list
        ],
        calls=list(calls if calls is not None else [call(model, 500.0)]),
        duration=0.5,
        cassette=f"cassettes/{model}/{test}.yaml",
        message=message,
    )
    if prompt is not None:
        o.extra["prompt"] = dict(prompt)
    return o


def finish_run(
    outcomes: Sequence[Outcome], models: Sequence[str], *, samples: int = 1, gate: bool = True
) -> dict[str, Any]:
    """What the plugin builds: the analysis step, then the run as every report reads it."""
    run = analyse(
        outcomes,
        models=[ModelSpec(m, m) for m in models],
        incumbent=models[0],
        # as the plugin does: groups whose @pytest.mark.prompt says deterministic=True
        policy=GatePolicy(mode="no-regression", deterministic_groups=prompt_flags(outcomes, "deterministic"))
        if gate
        else None,
        samples=samples,
        prices=PRICES,
    )
    return run.to_dict()


TRIAGE = {
    "name": "ticket-triage",
    "purpose": "Route a ticket to one queue",
    "sensitivities": ["label set", "JSON only"],
}
# temperature 0: one recorded answer is the behaviour, so a single pass -> fail flip is a regression
TRIAGE_DETERMINISTIC = {**TRIAGE, "deterministic": True}


def make_run(*, regress: bool = True, evil: bool = False) -> dict[str, Any]:
    """gpt-4o against gpt-5: a triage prompt (2 tests) and a summary module (1 test)."""
    name = "tests/prompts/test_triage.py::test_refund"
    evil_name = "tests/prompts/test_triage.py::test_<script>alert(1)</script>"
    outcomes = [
        outcome(
            name,
            "gpt-4o",
            group="ticket-triage",
            checks=[("json_strict", True), ("one_of", True)],
            prompt=TRIAGE_DETERMINISTIC,
        ),
        outcome(
            name,
            "gpt-5",
            ["failed"] if regress else ["passed"],
            group="ticket-triage",
            checks=[("json_strict", not regress), ("one_of", True)],
            calls=[call("gpt-5", 900.0, 120, 40)],
            message="AssertionError: json_strict: output is not JSON: ```fenced``` | <b>bold</b>"
            if regress
            else None,
            prompt=TRIAGE_DETERMINISTIC,
        ),
        outcome(
            evil_name if evil else "tests/prompts/test_triage.py::test_tech",
            "gpt-4o",
            group="ticket-triage",
            prompt=TRIAGE_DETERMINISTIC,
            checks=[("one_of", True)],
        ),
        outcome(
            evil_name if evil else "tests/prompts/test_triage.py::test_tech",
            "gpt-5",
            group="ticket-triage",
            prompt=TRIAGE_DETERMINISTIC,
            checks=[("one_of", True)],
            calls=[call("gpt-5", 700.0, 120, 40)],
        ),
        outcome("tests/prompts/test_summary.py::test_short", "gpt-4o", checks=[("bullets", True)]),
        outcome(
            "tests/prompts/test_summary.py::test_short",
            "gpt-5",
            checks=[("bullets", True)],
            calls=[call("gpt-5", 800.0, 120, 40)],
        ),
    ]
    return finish_run(outcomes, ["gpt-4o", "gpt-5"])


def make_sampled_run(n: int = 20) -> dict[str, Any]:
    """Five samples-based tests: gpt-5 breaks ``bullets`` in every sample of one test."""
    outcomes = []
    for i in range(3):
        test = f"tests/prompts/test_summary.py::test_case_{i}"
        outcomes.append(
            outcome(test, "gpt-4o", ["passed"] * n, checks=[("json_strict", True), ("bullets", True)])
        )
        bad = i == 0
        samples = ["failed"] * n if bad else ["passed"] * (n - 1) + ["failed"]
        checks: list[tuple[str, bool]] = [("json_strict", True), ("bullets", not bad)]
        outcomes.append(
            outcome(test, "gpt-5", samples, checks=checks, message="bullets: expected 3" if bad else None)
        )
    return finish_run(outcomes, ["gpt-4o", "gpt-5"], samples=n)


def make_demo_run(n: int = 10) -> dict[str, Any]:
    """A small but varied run for the screenshot: a prompt group and a module, 10 samples."""

    def calls(model: str, base: float, inp: int, out: int) -> list[dict[str, Any]]:
        return [call(model, base + 37 * (i % 5), inp, out + i) for i in range(n)]

    outcomes = []
    triage = [("test_refund", 10, 10), ("test_outage", 9, 4), ("test_sales_lead", 10, 10)]
    for name, inc_ok, cand_ok in triage:
        test = f"tests/prompts/test_triage.py::{name}"
        for model, ok, base in (("gpt-4o", inc_ok, 620.0), ("gpt-5", cand_ok, 910.0)):
            samples = ["passed"] * ok + ["failed"] * (n - ok)
            o = outcome(
                test, model, samples, group="ticket-triage", prompt=TRIAGE, calls=calls(model, base, 180, 22)
            )
            o.checks = [{"name": "json_strict", "passed": True, "sample": i} for i in range(n)] + [
                {"name": "one_of", "passed": i < ok, "sample": i} for i in range(n)
            ]
            if ok < n:
                o.message = "one_of: 'outage' is not one of ['billing', 'tech', 'sales']"
            outcomes.append(o)
    for i, (inc_ok, cand_ok) in enumerate([(10, 10), (10, 9)]):
        test = f"tests/prompts/test_summary.py::test_summary[case{i}]"
        for model, ok, base in (("gpt-4o", inc_ok, 1400.0), ("gpt-5", cand_ok, 1650.0)):
            samples = ["passed"] * ok + ["failed"] * (n - ok)
            o = outcome(test, model, samples, checks=[], calls=calls(model, base, 900, 140))
            o.checks = [
                {"name": "bullets", "passed": s == "passed", "sample": j} for j, s in enumerate(samples)
            ]
            if ok < n:
                o.message = "bullets: expected 3 bullet points, got 2"
            outcomes.append(o)
    return finish_run(outcomes, ["gpt-4o", "gpt-5"], samples=n)


# -- HTML helpers --------------------------------------------------------------------------------


class _Checker(html.parser.HTMLParser):
    """Well-formedness of the tags we write: every non-void tag closed in order; collects text."""

    VOID = frozenset({"meta", "br", "hr", "img", "link", "input"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(doc: str) -> _Checker:
    checker = _Checker()
    checker.feed(doc)
    checker.close()
    assert checker.errors == []
    assert checker.stack == []
    return checker


# -- the run dicts are valid ------------------------------------------------------------------------


def test_built_runs_follow_the_schema() -> None:
    for run in (make_run(), make_run(regress=False, evil=True), make_sampled_run(), make_demo_run()):
        validate_run(run)


# -- breakdown --------------------------------------------------------------------------------------


def test_breakdown_counts_per_sample() -> None:
    run = make_sampled_run(n=20)
    checks = run["checks"]["checks"]
    assert checks["bullets"]["gpt-4o"]["failed"] == 0
    assert checks["bullets"]["gpt-4o"]["total"] == 60
    assert checks["bullets"]["gpt-5"]["failed"] == 20
    assert checks["bullets"]["gpt-5"]["tests"] == ["tests/prompts/test_summary.py::test_case_0"]
    assert checks["json_strict"]["gpt-5"] == {"failed": 0, "total": 60, "tests": []}
    assert list(checks) == ["bullets", "json_strict"]  # worst first
    lines = breakdown_lines(run["checks"])
    assert lines[0].split() == ["check", "gpt-4o", "gpt-5"]
    assert lines[1].split() == ["bullets", "0/60", "20/60"]
    assert lines[2].split() == ["json_strict", "0/60", "0/60"]
    assert [line.split() for line in breakdown_lines(run["checks"], failing_only=True)] == [
        ["check", "gpt-4o", "gpt-5"],
        ["bullets", "0/60", "20/60"],
    ]


def test_breakdown_check_run_twice_in_one_sample_counts_once() -> None:
    o = outcome("t.py::test_a", "m", checks=[("json", True)]).to_dict()
    o["checks"].append({"name": "json", "passed": False, "sample": 0})
    result = check_breakdown([o], ["m"])
    assert result["checks"]["json"]["m"]["failed"] == 1
    assert result["checks"]["json"]["m"]["total"] == 1


def test_breakdown_lines_cap_rows() -> None:
    outcomes = [outcome("t.py::test_a", "m", checks=[(f"c{i}", False) for i in range(5)]).to_dict()]
    lines = breakdown_lines(check_breakdown(outcomes, ["m"]), max_rows=2)
    assert len(lines) == 4
    assert lines[-1] == "... 3 more check(s) not shown"
    assert breakdown_lines(check_breakdown([], ["m"])) == []


# -- Markdown -----------------------------------------------------------------------------------


def test_markdown_gate_line_comes_first_and_tables_follow() -> None:
    md = render_markdown(make_run())
    lines = md.splitlines()
    assert lines[0] == "## Model migration: gpt-4o → gpt-5"
    # the recommendation first, then the gate line
    assert lines[2] == "### Recommendation"
    assert lines[4].startswith("- 🛠️ **gpt-5: re-engineer first**: 1 group(s) regressed: ticket-triage")
    assert lines[6].startswith("❌ **Migration gate FAILED** (no-regression): 1 regression(s) against gpt-4o")
    assert "(deterministic)" in lines[6]
    assert md.index("### Recommendation") < md.index("**Migration gate") < md.index("### Verdicts")
    assert "| prompt group | candidate | verdict | finding | drop, pts [interval] | reason |" in md
    assert "| ticket-triage | gpt-5 | ❌ re-engineer | regressed | +50.0 |" in md
    assert "| test | gpt-4o | gpt-5 |" in md
    assert "| &nbsp;&nbsp;test\\_triage.py::test\\_refund | ✅ 1/1 100% | ❌ 0/1 0% |" in md
    assert "| **total** | **3/3 100%** | **2/3 67%** |" in md
    assert "| json\\_strict | 0/1 | 1/1 |" in md  # only failing checks
    assert "bullets" not in md.split("### Checks that failed")[1].split("###")[0]
    assert "<details><summary>Failing tests (1)</summary>" in md
    # the message holds ``` so the fence is longer; its HTML stays inside the code block
    assert "````text\nAssertionError: json_strict: output is not JSON: ```fenced``` | <b>bold</b>\n````" in md


def test_markdown_passing_run_and_no_gate() -> None:
    run = make_run(regress=False)
    md = render_markdown(run)
    assert "✅ **Migration gate PASSED** (no-regression): no regression against gpt-4o" in md
    assert "<details>" not in md
    del run["gate"]
    assert "⚪ **No migration gate evaluated**" in render_markdown(run)


def test_markdown_intervals_with_samples_and_metrics() -> None:
    md = render_markdown(make_sampled_run(n=20))
    assert "20/20 100% (84–100%)" in md  # Wilson 95% for 20/20
    assert "0/20 0% (0–16%)" in md
    assert "_Pass rate over samples, with its 95% Wilson interval._" in md
    assert "| model | calls | p50 | p95 |" in md
    assert "- **gpt-5** vs gpt-4o: latency p50 ×1.00 (+0 ms)" in md


def test_markdown_escapes_user_text() -> None:
    md = render_markdown(make_run(regress=False, evil=True))
    assert "<script>" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert escape("a|b\nc_d") == "a\\|b c\\_d"


def test_markdown_caps_rows_for_big_suites() -> None:
    outcomes = []
    for i in range(200):
        for m in ("a", "b"):
            bad = m == "b" and i % 50 == 0
            outcomes.append(
                outcome(
                    f"t.py::test_{i}", m, ["failed" if bad else "passed"], message="boom" if bad else None
                )
            )
    md = render_markdown(finish_run(outcomes, ["a", "b"]), max_rows=10, max_failures=2)
    assert "test\\_0 |" in md
    assert "test\\_50 |" in md
    assert "test\\_1 |" not in md
    assert "_196 test row(s) not shown (tests that pass on every model, and beyond 10 rows)" in md
    assert "_2 more failing test(s) not shown._" in md
    assert len(md) < 10_000


# -- HTML -------------------------------------------------------------------------------------------


def test_html_is_well_formed_and_self_contained() -> None:
    doc = render_html(make_run())
    checker = parse_html(doc)
    assert checker.tags.count("html") == 1
    assert "script" not in checker.tags
    assert "link" not in checker.tags
    assert "img" not in checker.tags
    # the inline SVG's namespace is an identifier, never fetched; nothing else may point outside
    assert doc.count('<svg xmlns="http://www.w3.org/2000/svg"') == doc.count("<svg")
    external = doc.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "http://" not in external
    assert "https://" not in external
    text = " ".join(checker.text)
    # the decision first: the recommendation, the gate, then the forest plot of the drops
    assert doc.index("Recommendation") < doc.index("Migration gate") < doc.index('<figure class="forest">')
    assert "gpt-5: re-engineer first" in text
    assert "✗ Migration gate FAILED (no-regression)" in text
    assert "✗ 0/1 0%" in text
    assert "✓ 1/1 100%" in text
    assert "re-engineer" in text
    assert "AssertionError: json_strict: output is not JSON: ```fenced``` | <b>bold</b>" in text  # as text


def test_html_escapes_script_in_test_names() -> None:
    doc = render_html(make_run(regress=False, evil=True))
    checker = parse_html(doc)
    assert "script" not in checker.tags
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in doc
    assert "test_<script>alert(1)</script>" in " ".join(checker.text)


def test_rate_colour_goes_red_to_green() -> None:
    assert rate_colour(0.0) == "hsl(0, 65%, 82%)"
    assert rate_colour(1.0) == "hsl(120, 65%, 82%)"
    assert rate_colour(0.5) == "hsl(15, 65%, 82%)"
    assert rate_colour(0.8) == "hsl(61, 65%, 82%)"
    assert rate_colour(None) == "#f6f8fa"


# -- terminal and migration document ------------------------------------------------------------------


def test_verdict_lines_from_the_gate_dict() -> None:
    lines = gate_lines(make_run()["gate"])
    assert lines[-1].startswith("migration gate (no-regression): FAILED: 1 regression(s) against gpt-4o")
    assert any(line.startswith("ticket-triage") and "gpt-5: re-engineer" in line for line in lines)


def test_metrics_lines() -> None:
    lines = metrics_lines(make_run()["metrics"])
    assert lines[0].split()[:4] == ["model", "calls", "p50", "p95"]
    assert lines[1].split()[:4] == ["gpt-4o", "3", "500", "ms"]
    # gpt-5: latencies 700, 800, 900 → p50 800; cost per test (120·1.25 + 40·10)/1e6
    assert "gpt-5" in lines[2]
    assert "800 ms" in lines[2]
    assert "$0.00055" in lines[2]
    assert lines[3].startswith("gpt-5 vs gpt-4o: latency p50 ×1.60 (+300 ms)")
    assert fmt_usd(None) == "n/a"


def test_migration_doc() -> None:
    doc = render_migration_doc(make_run())
    assert doc.startswith("# Prompt migration matrix\n")
    assert "## ticket-triage" in doc
    assert "**Purpose:** Route a ticket to one queue" in doc
    assert "- label set\n- JSON only" in doc
    assert "- gpt-5: ❌ **re-engineer**:" in doc
    # the recommendation bullets come before the gate line, both before the first prompt group
    rec = doc.index("- **gpt-5: re-engineer first**: 1 group(s) regressed: ticket-triage")
    assert (
        rec
        < doc.index("❌ Migration gate (no-regression): 1 regression(s) against gpt-4o")
        < doc.index("## ")
    )
    assert "### Regression cases" in doc
    assert "| test\\_triage.py::test\\_refund | 1/1 100% | 0/1 0% |" in doc
    assert "| gpt-5 | 1/2 50% | 700 ms | 900 ms | 120 | 40 | $0.00055 |" in doc
    summary = doc.split("## tests/prompts/test\\_summary.py")[1]
    assert "**Purpose:** _not stated_" in summary
    assert "_none recorded_" in summary


def test_the_forest_plot_draws_at_most_its_limit_of_rows() -> None:
    """Hundreds of groups: the most worrying pairs are drawn and the note says how many exist."""
    from pytest_modelmigrate.reports import html

    run = make_run()
    verdicts = run["gate"]["verdicts"]
    template = next(iter(next(iter(verdicts.values())).values()))
    many = {}
    for i in range(html.MAX_FOREST_ROWS + 25):
        v = dict(template)
        v["delta"] = {"estimate": i / 1000, "low": i / 1000 - 0.01, "high": i / 1000 + 0.01}
        many[f"group-{i:03d}"] = {"gpt-5": v}
    run["gate"]["verdicts"] = many
    doc = html.render_html(run)
    assert doc.count('class="row"') == html.MAX_FOREST_ROWS
    assert (
        f"The {html.MAX_FOREST_ROWS} pairs with the highest upper bound of {html.MAX_FOREST_ROWS + 25}" in doc
    )
    assert "group-064" in doc.split('<figure class="forest">')[1].split("</figure>")[0]  # the worst kept
    assert "group-000" not in doc.split('<figure class="forest">')[1].split("</figure>")[0]


def test_the_run_file_is_the_run_a_section_item_a_line(tmp_path: Path) -> None:
    """``write_json`` lays out the run's keys and each section's items a line, each line
    encoded whole; what it writes reads back as exactly the run, odd values included."""
    from pytest_modelmigrate.reports.run import write_json

    run = {
        "schema_version": 1,
        "outcomes": [{"nodeid": "t.py::a[m]", "checks": [{"name": "x", "passed": True}]}, {"nodeid": "b"}],
        "matrix": {"rows": [], "empty": {}},
        "shard": {"index": 1, "count": 2, "nodeids": ["t.py::a[m]", "t.py::b[m]"]},
        "odd": {
            1: "int key",
            2.5: "float key",
            None: "none key",
            False: "bool key",
            "nan": float("nan"),
            "u": "é\u2028",
        },
    }
    path = tmp_path / "run.json"
    write_json(path, run)
    text = path.read_text(encoding="utf-8")
    back = json.loads(text)
    expected = json.loads(json.dumps(run))  # what json itself makes of the odd keys and NaN
    assert json.dumps(back, sort_keys=True) == json.dumps(expected, sort_keys=True)
    lines = text.splitlines()
    assert '    {"nodeid": "t.py::a[m]", "checks": [{"name": "x", "passed": true}]},' in lines
    assert '      "t.py::b[m]"' in lines  # a list of names stays one a line at any depth
    assert '    "empty": {}' in lines and '    "rows": [],' in lines
    assert text.endswith("}\n")


def test_the_values_that_grow_with_the_suite_are_laid_out_an_item_a_line(tmp_path: Path) -> None:
    """A matrix group's test rows and a verdict's tests get a line each, so no line (and no
    text held to write it) grows with the suite; the rest of a verdict keeps a line a key."""
    from pytest_modelmigrate.reports.run import write_json

    tests = [{"test": f"t.py::test_{i:04d}", "incumbent": [1, 1], "candidate": [1, 0]} for i in range(3000)]
    verdict = {"verdict": "investigate", "rates": {"incumbent": 1.0, "candidate": 0.5}, "tests": tests}
    run = {
        "gate": {"mode": "strict", "verdicts": {"t.py": {"gpt-5": verdict, "gpt-4.1": {"verdict": "defer"}}}},
        "matrix": {
            "groups": [{"name": "t.py", "tests": [{"name": f"t{i}", "cells": {}} for i in range(3000)]}]
        },
        "datasets": {"t.py::d": {"gpt-5": {"examples": list(range(5))}}},
        "missing": {
            "recordings": [{"nodeid": f"t.py::m{i}[gpt-5]"} for i in range(3000)],
            "command": "pytest",
        },
        "under_evidence": {"min_dataset_examples": 100, "flags": [{"kind": "samples", "test": "t"}] * 3000},
        "baseline": {"alpha": 0.05, "appeared": [{"test": f"t{i}"} for i in range(3000)], "unchanged": 0},
    }
    path = tmp_path / "run.json"
    write_json(path, run)
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == run
    lines = text.splitlines()
    assert '            {"test": "t.py::test_0007", "incumbent": [1, 1], "candidate": [1, 0]},' in lines
    assert '          "rates": {"incumbent": 1.0, "candidate": 0.5},' in lines
    assert '          "verdict": "defer"' in lines  # a verdict is laid out a key a line
    assert '          {"name": "t7", "cells": {}},' in lines
    assert '    "t.py::d": {"gpt-5": {"examples": [0, 1, 2, 3, 4]}}' in lines  # elsewhere: as before
    assert '      {"nodeid": "t.py::m7[gpt-5]"},' in lines
    assert '      {"kind": "samples", "test": "t"},' in lines
    assert '      {"test": "t7"},' in lines and '    "alpha": 0.05,' in lines
    assert max(len(line) for line in lines) < 100


_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["tests", "groups", "verdicts", "x", "*"]) | st.text(max_size=4),
            inner,
            max_size=4,
        )
    ),
    max_leaves=40,
)


_LAID_OUT = st.fixed_dictionaries(
    {
        "matrix": st.fixed_dictionaries(
            {
                "groups": st.lists(
                    st.fixed_dictionaries({"name": _SCALARS, "tests": st.lists(_VALUES, max_size=4)})
                )
            }
        ),
        "gate": st.fixed_dictionaries(
            {
                "verdicts": st.dictionaries(
                    st.text(max_size=3),
                    st.dictionaries(
                        st.text(max_size=3),
                        st.fixed_dictionaries({"tests": _VALUES}, optional={"v": _VALUES}),
                    ),
                    max_size=3,
                )
            }
        ),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    run=st.dictionaries(
        st.sampled_from(["matrix", "gate", "missing", "under_evidence", "baseline", "shard", "*"])
        | st.text(max_size=4),
        _VALUES,
        max_size=5,
    )
    | _LAID_OUT
)
def test_the_run_file_reads_back_as_the_run_whatever_its_shape(run: dict[str, Any], tmp_path: Path) -> None:
    """Whatever the layout lays out (the sections, the matrix and verdict paths, names), the
    file is one JSON document that reads back as ``json.dumps`` would write the run."""
    from pytest_modelmigrate.reports.run import write_json

    path = tmp_path / "run.json"  # the same file for every example: each write replaces it
    write_json(path, run)
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == json.loads(json.dumps(run))
    assert text.endswith("\n")


def test_equal_cells_and_tallies_are_shared_within_one_run_dict_only() -> None:
    """A run dict holds one dict per distinct cell and per distinct verdict tally (a large suite's
    repeat); another run's dict has its own, so changing one run dict leaves the next alone."""
    first, second = make_run(regress=False), make_run(regress=False)
    rows = [r for g in first["matrix"]["groups"] for r in g["tests"]]
    triage = [r for r in rows if "test_triage" in r["name"]]
    assert len(triage) == 2 and triage[0]["cells"]["gpt-5"] is triage[1]["cells"]["gpt-5"]  # 1/1 passed both
    tests = first["gate"]["verdicts"]["ticket-triage"]["gpt-5"]["tests"]
    assert len(tests) == 2 and tests[0]["incumbent"] is tests[1]["incumbent"]
    triage[0]["cells"]["gpt-5"]["passed"] = 99
    tests[0]["incumbent"]["passed"] = 99
    again = [r for g in second["matrix"]["groups"] for r in g["tests"] if "test_triage" in r["name"]]
    assert again[0]["cells"]["gpt-5"]["passed"] == 1
    assert second["gate"]["verdicts"]["ticket-triage"]["gpt-5"]["tests"][0]["incumbent"]["passed"] == 1
    assert (
        make_run(regress=False)["gate"]["verdicts"]["ticket-triage"]["gpt-5"]["tests"][0]["incumbent"][
            "passed"
        ]
        == 1
    )
