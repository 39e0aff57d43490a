"""Every report of one run tells the same story as its JSON run file.

Each scenario builds a small project, records it once against the emulator with the real SDKs,
then replays it in ONE pytest session that writes JSON, Markdown, HTML and JUnit XML, and
renders the JSON again with ``modelmigrate show`` in every format. Taking the JSON as the truth,
every format must agree on the gate (status, reason, the gate line), every verdict, every matrix
cell per (row, model) and the JUnit properties; the terminal section and ``show --format text``
must print the same matrix, verdict and gate lines.

What is compared, per scenario:

- the gate: the JSON's ``line`` is ``migration gate ({mode}): {PASSED|FAILED}: {reason}`` of its
  own fields; the terminal and ``show --format text`` print that exact line; the Markdown (the
  session's file and ``show --format md``), the HTML (both) and the migration document say the
  same status and contain the reason (as a reader sees it: escapes undone); the exit status is the
  one the gate asks for (every test of these projects is a model test);
- every verdict in ``run["gate"]["verdicts"]``: its verdict word per (group, candidate) in every
  format, its reason in the text formats and the Markdown;
- every cell of ``run["matrix"]`` (test rows, group totals, total) per (row, model), parsed from
  the terminal, ``show --format text``, both Markdown and both HTML reports: ``passed/total rate%``
  as the terminal prints it (``6/7  86%``), or for an empty cell ``missing``, ``xfail``,
  ``error`` or ``-`` from its outcomes. Text formats must match exactly; Markdown and HTML (which
  collapse spaces when rendered) after collapsing spaces and dropping their ✅/❌/✓/✗/~ marks and
  a trailing Wilson interval;
- JUnit XML: each outcome's testcase has the JSON's ``model`` and, as ``prompt``, its group;
- the terminal section and ``show --format text`` print the same matrix lines, verdict lines and
  gate line.

The checks collect every disagreement of a scenario before failing, so one failure lists all of
them.
"""

from __future__ import annotations

import copy
import html
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from typing import Any

import pytest

from pytest_modelmigrate.emulator import Emulator

VERDICT_WORDS = ("migrate", "re-engineer", "investigate")
REPORT_ARGS = (
    "--migration-json=run.json",
    "--migration-markdown=run.md",
    "--migration-html=run.html",
    "--junitxml=junit.xml",
    "-p",
    "no:randomly",
)
SHOW_FORMATS = ("text", "md", "html", "migration")


# -- the reports of one session ---------------------------------------------------------------


@dataclass
class Reports:
    """One pytest session's outputs and ``modelmigrate show`` on its JSON."""

    ret: int
    run: dict[str, Any]
    terminal: list[str]  # the "model migration matrix" section
    files: dict[str, str]  # "md", "html": what the session wrote
    show: dict[str, str]  # format -> what ``modelmigrate show`` wrote
    junit: ET.Element


def session_reports(pytester: pytest.Pytester, *args: str) -> Reports:
    """Run pytest once with every report on, then ``modelmigrate show`` in every format."""
    from pytest_modelmigrate.cli import main

    result = pytester.runpytest(*args, *REPORT_ARGS)
    path = pytester.path
    show: dict[str, str] = {}
    for fmt in SHOW_FORMATS:
        out = path / f"show.{fmt}"
        assert main(["show", str(path / "run.json"), "--format", fmt, "-o", str(out)]) == 0
        show[fmt] = out.read_text(encoding="utf-8")
    return Reports(
        ret=int(result.ret),
        run=json.loads((path / "run.json").read_text(encoding="utf-8")),
        terminal=terminal_section(result.outlines),
        files={
            "md": (path / "run.md").read_text(encoding="utf-8"),
            "html": (path / "run.html").read_text(encoding="utf-8"),
        },
        show=show,
        junit=ET.parse(path / "junit.xml").getroot(),
    )


_SEPARATOR = re.compile(r"^={3,}(?: .* ={3,})?$")


def terminal_section(lines: Sequence[str]) -> list[str]:
    """The lines under pytest's ``=== model migration matrix ===`` separator."""
    start = next(
        (i for i, line in enumerate(lines) if re.match(r"^=+ model migration matrix =+$", line)), None
    )
    assert start is not None, "no 'model migration matrix' section in the terminal output"
    section = []
    for line in lines[start + 1 :]:
        if _SEPARATOR.match(line):
            break
        section.append(line)
    return section


# -- what the JSON says a cell reads ----------------------------------------------------------


def cell_text(cell: Mapping[str, Any] | None) -> str:
    """A matrix cell as the terminal shows it: ``7/7 100%``, ``6/7  86%``, or why it is empty."""
    cell = cell or {}
    passed, total = int(cell.get("passed", 0)), int(cell.get("total", 0))
    if total:
        return f"{passed}/{total} {100.0 * passed / total:3.0f}%"
    outcomes = set(cell.get("outcomes") or [])
    for outcome, label in (("missing", "missing"), ("xfailed", "xfail"), ("error", "error")):
        if outcome in outcomes:
            return label
    return "-"


@dataclass(frozen=True)
class ExpectedRow:
    kind: str  # "group", "test" or "total"
    name: str  # group name, test id or "total"
    cells: dict[str, str]  # model -> cell text


def expected_rows(run: Mapping[str, Any]) -> list[ExpectedRow]:
    matrix = run["matrix"]
    models = list(matrix["models"])
    rows = []
    for group in matrix["groups"]:
        rows.append(
            ExpectedRow("group", group["name"], {m: cell_text(group["totals"].get(m)) for m in models})
        )
        for test in group["tests"]:
            rows.append(
                ExpectedRow("test", test["name"], {m: cell_text(test["cells"].get(m)) for m in models})
            )
    rows.append(ExpectedRow("total", "total", {m: cell_text(matrix["totals"].get(m)) for m in models}))
    return rows


def label_fits(row: ExpectedRow, label: str) -> bool:
    """A row label names its row: the group, a tail of the test id (its module may be cut), total."""
    label = label.strip()
    if row.kind == "test":
        return bool(label) and row.name.endswith(label)
    return label == row.name


# -- parsing each format ----------------------------------------------------------------------

_CELL = r"\d+/\d+ +\d+%(?: \(\d+[–-]\d+%\))?|not run|[a-z][a-z-]*|-"


def parse_text_matrix(
    lines: Sequence[str], models: Sequence[str]
) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The matrix of ``matrix_lines``: its lines (header to total) and (label, cells) per row."""
    start = next((i for i, line in enumerate(lines) if line.split()[-len(models) :] == list(models)), None)
    if start is None or not models:
        return [], []
    row_re = re.compile(rf"^(?P<label>\s*\S.*?)(?P<cells>(?: {{2,}}(?:{_CELL})){{{len(models)}}})$")
    block, rows = [lines[start]], []
    for line in lines[start + 1 :]:
        match = row_re.match(line)
        if match is None:
            break
        block.append(line)
        cells = re.findall(rf" {{2,}}({_CELL})(?= {{2,}}|$)", match["cells"])
        rows.append((match["label"], cells))
        if match["label"].strip() == "total":
            break
    return block, rows


def md_text(text: str) -> str:
    """Markdown inline text as a reader sees it: escapes undone, bold markers dropped, entities."""
    plain = re.sub(r"\\(.)|\*\*", lambda m: m.group(1) or "", text)
    return " ".join(html.unescape(plain).replace("\xa0", " ").split())


def md_tables(text: str) -> list[list[list[str]]]:
    """Every pipe table: rows of raw cells (header first, the ``:---`` row left out)."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if not all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def md_matrix(text: str, models: Sequence[str]) -> list[tuple[str, list[str]]] | None:
    header = ["test", *models]
    for table in md_tables(text):
        if [md_text(c) for c in table[0]] == header and any(md_text(r[0]) == "total" for r in table[1:]):
            return [(md_text(r[0]), [md_text(c) for c in r[1:]]) for r in table[1:]]
    return None


_BLOCKS = {"p", "div", "section", "h1", "h2", "h3", "h4", "li", "tr", "table", "summary", "pre", "br"}


class _HTMLReport(HTMLParser):
    """Tables as rows of cell texts, and the visible text as lines (one per block element)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self._text: list[str] = []
        self._cell: list[str] | None = None
        self._hidden = 0  # inside <head>, <style> or <title>

    @property
    def lines(self) -> list[str]:
        return [" ".join(line.split()) for line in "".join(self._text).splitlines() if line.strip()]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("head", "style", "title"):
            self._hidden += 1
        if tag in _BLOCKS:
            self._text.append("\n")
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th") and self.tables and self.tables[-1]:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("head", "style", "title"):
            self._hidden -= 1
        if tag in _BLOCKS:
            self._text.append("\n")
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if not self._hidden:
            self._text.append(data)


def parse_html(text: str) -> _HTMLReport:
    parser = _HTMLReport()
    parser.feed(text)
    parser.close()
    return parser


def html_matrix(doc: _HTMLReport, models: Sequence[str]) -> list[tuple[str, list[str]]] | None:
    header = ["test", *models]
    for table in doc.tables:
        if table and table[0] == header and any(r and r[0] == "total" for r in table[1:]):
            return [(r[0], r[1:]) for r in table[1:]]
    return None


def decoration_free(cell: str) -> str:
    """A cell without what the rich formats add around the counts: ✅/❌/✓/✗/~ and a Wilson interval."""
    cell = re.sub(r"^(?:✅|❌|✓|✗|~)\s*", "", cell.strip())
    cell = re.sub(r"\s*\(\d+[–-]\d+%\)$", "", cell)
    return " ".join(cell.split())


# -- the checks -------------------------------------------------------------------------------


@dataclass
class Disagreements:
    found: list[str] = field(default_factory=list)

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.found.append(message)


def gate_status(statement: str, reason: str) -> str | None:
    """What a gate statement says, ``passed`` or ``failed``, from the words and marks around its
    reason (the reason itself may say anything); None when it says neither or both."""
    text = statement.replace(reason, " ") if reason else statement
    passed = bool(re.search(r"\bpassed\b|✅|✓", text, re.IGNORECASE))
    failed = bool(re.search(r"\bfailed\b|❌|✗", text, re.IGNORECASE))
    if passed == failed:
        return None
    return "passed" if passed else "failed"


def check_gate(reports: Reports, found: Disagreements) -> None:
    gate = reports.run["gate"]
    status = "PASSED" if gate["passed"] else "FAILED"
    want_line = f"migration gate ({gate['mode']}): {status}: {gate['reason']}"
    found.check(
        gate.get("line") == want_line,
        f"JSON gate line {gate.get('line')!r} is not 'migration gate (mode): STATUS: reason' "
        f"of its own fields {want_line!r}",
    )
    line = str(gate.get("line"))
    for name, lines in (("terminal", reports.terminal), ("show text", reports.show["text"].splitlines())):
        gate_lines = [x for x in lines if x.lower().startswith("migration gate")]
        found.check(line in lines, f"{name}: no line {line!r}; its gate line(s): {gate_lines!r}")
    reason = " ".join(str(gate["reason"]).split())
    want = "passed" if gate["passed"] else "failed"
    for name, statement in gate_statements(reports).items():
        found.check(statement is not None, f"{name}: no migration gate statement")
        if statement is None:
            continue
        found.check(
            gate_status(statement, reason) == want,
            f"{name}: gate statement {statement!r} does not say {want} (JSON passed={gate['passed']})",
        )
        found.check(
            reason in statement, f"{name}: gate statement {statement!r} lacks the JSON reason {reason!r}"
        )
    # every test of these projects is a model test, so the gate alone decides the exit status
    exit_status = pytest.ExitCode.OK if gate["passed"] else pytest.ExitCode.TESTS_FAILED
    found.check(
        reports.ret == exit_status,
        f"exit status {reports.ret}, but the JSON gate passed={gate['passed']} asks for {int(exit_status)}",
    )


def gate_statements(reports: Reports) -> dict[str, str | None]:
    """The gate statement of each rich format, as a reader sees it (unescaped)."""
    out: dict[str, str | None] = {}
    for name, text in (("markdown", reports.files["md"]), ("show md", reports.show["md"])):
        out[name] = next(
            (md_text(x) for x in text.splitlines() if "migration gate" in md_text(x).lower()), None
        )
    out["show migration"] = next(
        (
            md_text(x)
            for x in reports.show["migration"].splitlines()
            if "migration gate" in md_text(x).lower()
        ),
        None,
    )
    for name, text in (("html", reports.files["html"]), ("show html", reports.show["html"])):
        out[name] = next((x for x in parse_html(text).lines if "migration gate" in x.lower()), None)
    return out


def json_verdicts(run: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    return [
        (group, cand, str(v["verdict"]), str(v.get("reason", "")))
        for group, per in (run["gate"].get("verdicts") or {}).items()
        for cand, v in per.items()
    ]


def verdict_line_re(group: str, cand: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(group)} +{re.escape(cand)}: (?P<verdict>\S+): (?P<reason>.*)$")


def text_verdict_lines(lines: Sequence[str], run: Mapping[str, Any]) -> list[str]:
    patterns = [verdict_line_re(g, c) for g, c, _, _ in json_verdicts(run)]
    return [line for line in lines if any(p.match(line) for p in patterns)]


def check_verdicts(reports: Reports, found: Disagreements) -> None:
    verdicts = json_verdicts(reports.run)
    for name, lines in (("terminal", reports.terminal), ("show text", reports.show["text"].splitlines())):
        for group, cand, verdict, reason in verdicts:
            matches = [m for m in map(verdict_line_re(group, cand).match, lines) if m]
            found.check(
                len(matches) == 1, f"{name}: {len(matches)} verdict line(s) for {group}/{cand}, not 1"
            )
            for m in matches[:1]:
                found.check(
                    (m["verdict"], m["reason"]) == (verdict, reason),
                    f"{name}: {group}/{cand} reads {m['verdict']}: {m['reason']!r}; JSON {verdict}: {reason!r}",
                )
    for name, text in (("markdown", reports.files["md"]), ("show md", reports.show["md"])):
        rows = md_verdict_rows(text)
        check_verdict_rows(name, rows, verdicts, found, reason=True)
    for name, text in (("html", reports.files["html"]), ("show html", reports.show["html"])):
        rows = html_verdict_rows(parse_html(text))
        check_verdict_rows(name, rows, verdicts, found, reason=False)
    check_verdict_rows(
        "show migration",
        migration_verdict_rows(reports.show["migration"], reports.run),
        verdicts,
        found,
        reason=False,
    )


def check_verdict_rows(
    name: str,
    rows: list[tuple[str, str, str, str]],
    verdicts: list[tuple[str, str, str, str]],
    found: Disagreements,
    *,
    reason: bool,
) -> None:
    seen = {(g, c): (v, r) for g, c, v, r in rows}
    found.check(len(seen) == len(rows), f"{name}: a verdict appears twice: {rows!r}")
    found.check(
        set(seen) == {(g, c) for g, c, _, _ in verdicts},
        f"{name}: verdicts for {sorted(seen)}; JSON has {sorted((g, c) for g, c, _, _ in verdicts)}",
    )
    for group, cand, verdict, why in verdicts:
        if (group, cand) not in seen:
            continue
        shown, shown_reason = seen[group, cand]
        found.check(shown == verdict, f"{name}: {group}/{cand} verdict {shown!r}; JSON {verdict!r}")
        if reason:
            want = " ".join(why.split())
            found.check(
                shown_reason == want, f"{name}: {group}/{cand} reason {shown_reason!r}; JSON {want!r}"
            )


def _verdict_word(text: str) -> str:
    words = [w for w in VERDICT_WORDS if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", text)]
    return words[0] if len(words) == 1 else text


def md_verdict_rows(text: str) -> list[tuple[str, str, str, str]]:
    for table in md_tables(text):
        header = [md_text(c).lower() for c in table[0]]
        if "verdict" in header and "candidate" in header:
            g, c, v, r = (header.index(k) for k in ("prompt group", "candidate", "verdict", "reason"))
            return [
                (md_text(row[g]), md_text(row[c]), _verdict_word(md_text(row[v])), md_text(row[r]))
                for row in table[1:]
            ]
    return []


def html_verdict_rows(doc: _HTMLReport) -> list[tuple[str, str, str, str]]:
    for table in doc.tables:
        header = [c.lower() for c in table[0]] if table else []
        if "verdict" in header and "candidate" in header:
            g, c, v, r = (header.index(k) for k in ("prompt group", "candidate", "verdict", "reason"))
            return [(row[g], row[c], _verdict_word(row[v]), row[r]) for row in table[1:]]
    return []


def migration_verdict_rows(text: str, run: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """``## group`` sections, each with ``- candidate: ✅ **verdict**: reason`` items."""
    rows = []
    group = None
    candidates = [m for m in run["matrix"]["models"] if m != run.get("incumbent")]
    for raw in text.splitlines():
        if raw.startswith("## "):
            group = md_text(raw[3:])
            continue
        line = md_text(raw)
        for cand in candidates:
            match = re.match(rf"^- {re.escape(cand)}: \W*(?P<verdict>[a-z-]+): (?P<reason>.*)$", line)
            if group is not None and match and match["verdict"] in VERDICT_WORDS:
                rows.append((group, cand, match["verdict"], match["reason"]))
    return rows


def check_matrix(reports: Reports, found: Disagreements) -> None:
    run = reports.run
    models = list(run["matrix"]["models"])
    want = expected_rows(run)
    parsed: dict[str, list[tuple[str, list[str]]] | None] = {
        "terminal": parse_text_matrix(reports.terminal, models)[1] or None,
        "show text": parse_text_matrix(reports.show["text"].splitlines(), models)[1] or None,
        "markdown": md_matrix(reports.files["md"], models),
        "show md": md_matrix(reports.show["md"], models),
        "html": html_matrix(parse_html(reports.files["html"]), models),
        "show html": html_matrix(parse_html(reports.show["html"]), models),
    }
    for name, rows in parsed.items():
        found.check(rows is not None, f"{name}: no pass-rate matrix with columns {models}")
        if rows is None:
            continue
        exact = name in ("terminal", "show text")  # rendered formats collapse spaces anyway
        found.check(
            len(rows) == len(want),
            f"{name}: {len(rows)} matrix rows {[r[0] for r in rows]}; JSON has {len(want)}",
        )
        for row, (label, cells) in zip(want, rows, strict=False):
            found.check(
                label_fits(row, label), f"{name}: row {label!r} where JSON has {row.kind} {row.name!r}"
            )
            found.check(len(cells) == len(models), f"{name}: row {label!r} has {len(cells)} cells: {cells!r}")
            for model, shown in zip(models, cells, strict=False):
                expected = row.cells[model]
                got = shown if exact else decoration_free(shown)
                if not exact:
                    expected = " ".join(expected.split())
                found.check(
                    got == expected,
                    f"{name}: cell ({row.name}, {model}) reads {shown!r}; JSON {row.cells[model]!r}",
                )


def check_terminal_is_show_text(reports: Reports, found: Disagreements) -> None:
    models = list(reports.run["matrix"]["models"])
    show = reports.show["text"].splitlines()
    term_matrix, _ = parse_text_matrix(reports.terminal, models)
    show_matrix, _ = parse_text_matrix(show, models)
    found.check(
        term_matrix == show_matrix,
        f"matrix lines differ: terminal {term_matrix!r}; show text {show_matrix!r}",
    )
    term_verdicts = text_verdict_lines(reports.terminal, reports.run)
    show_verdicts = text_verdict_lines(show, reports.run)
    found.check(
        term_verdicts == show_verdicts,
        f"verdict lines differ: terminal {term_verdicts!r}; show text {show_verdicts!r}",
    )
    term_gate = [x for x in reports.terminal if x.lower().startswith("migration gate")]
    show_gate = [x for x in show if x.lower().startswith("migration gate")]
    found.check(term_gate == show_gate, f"gate lines differ: terminal {term_gate!r}; show text {show_gate!r}")


def check_junit(reports: Reports, found: Disagreements) -> None:
    cases: dict[str, dict[str, str]] = {}
    for case in reports.junit.iter("testcase"):
        module = str(case.get("classname", "")).replace(".", "/") + ".py"
        nodeid = f"{module}::{case.get('name')}"
        cases[nodeid] = {str(p.get("name")): str(p.get("value")) for p in case.iter("property")}
    for outcome in reports.run["outcomes"]:
        nodeid = outcome["nodeid"]
        props = cases.get(nodeid)
        found.check(props is not None, f"JUnit XML: no testcase for {nodeid}")
        if props is None:
            continue
        for prop, value in (("model", outcome["model"]), ("prompt", outcome["group"])):
            found.check(
                props.get(prop) == value,
                f"JUnit XML: {nodeid} property {prop}={props.get(prop)!r}; JSON {value!r}",
            )


def disagreements(reports: Reports) -> list[str]:
    found = Disagreements()
    check_gate(reports, found)
    check_verdicts(reports, found)
    check_matrix(reports, found)
    check_terminal_is_show_text(reports, found)
    check_junit(reports, found)
    return found.found


def assert_consistent(reports: Reports) -> None:
    problems = disagreements(reports)
    assert not problems, f"{len(problems)} disagreement(s) with the JSON run file:\n" + "\n".join(problems)


# -- scenarios --------------------------------------------------------------------------------

StartEmulator = Callable[..., Emulator]
TWO = "--models=emu-a,emu-b"


def record(pytester: pytest.Pytester, *args: str) -> None:
    """Record every (test, model) against the running emulator."""
    pytester.runpytest(*args, "--record-mode=once", "-p", "no:randomly")


def test_baseline_only_regression_with_one_model(
    pytester: pytest.Pytester, start_emulator: StartEmulator
) -> None:
    """One model, no candidate: only the saved baseline can regress, and the gate fails on it."""
    script = {
        "models": {
            "emu-a": {
                "rules": [
                    {"match": "refund", "sequence": [{"reply": "billing"}, {"reply": "sales"}]},
                    {"match": "crash", "reply": "technical"},
                ]
            }
        }
    }
    tests = """
import pytest
import app

@pytest.mark.prompt("triage")
def test_refund(model, checks):
    checks.contains(app.chat(model, "route: refund please"), "billing")

@pytest.mark.prompt("triage")
def test_crash(model, checks):
    checks.contains(app.claude(model, "route: the app crashes"), "technical")
"""
    emulator = start_emulator(script, test_triage=tests)
    pytester.runpytest(
        "--models=emu-a", "--record-mode=once", "--migration-baseline-save=baseline.json", "-p", "no:randomly"
    ).assert_outcomes(passed=2)
    # the model changed under the same name: the refund prompt now routes to sales
    pytester.runpytest("--models=emu-a", "--record-mode=rewrite", "-p", "no:randomly").assert_outcomes(
        passed=1, failed=1
    )
    emulator.stop()

    reports = session_reports(
        pytester,
        "--models=emu-a",
        "--migration-baseline-compare=baseline.json",
        "--migration-gate=no-regression",
    )
    run = reports.run
    assert [c["test"] for c in run["baseline"]["regressions"]] == ["test_triage.py::test_refund"]
    assert run["gate"]["passed"] is False
    assert run["gate"]["candidates"] == []
    assert_consistent(reports)


TICKETS = [
    ("refund-1", "Please refund my last order", "billing"),
    ("invoice-1", "The invoice total is wrong", "billing"),
    ("charge-1", "I was charged twice", "billing"),
    ("crash-1", "The app crashes on start", "technical"),
    ("login-1", "I cannot log in since the update", "technical"),
    ("sync-1", "Sync stopped working", "technical"),
    ("edge-1", "Edge case: charged again after the app crashed", "billing"),
    ("edge-2", "Edge case: refund button crashes the page", "billing"),
]


def test_dataset_rule_fails_the_gate_on_a_small_accuracy_drop(
    pytester: pytest.Pytester, start_emulator: StartEmulator
) -> None:
    """emu-b routes one edge case of eight wrongly: too small for the statistics, but a dataset
    rule (accuracy may not drop) fails the no-regression gate."""
    billing = {"match": "(?i)refund|invoice|charged", "reply": "billing"}
    hello = {"match": "hello", "reply": "Hello!"}
    script = {
        "models": {
            "emu-a": {"rules": [hello, billing], "default": "technical"},
            "emu-b": {
                "rules": [hello, {"match": "crashed", "reply": "technical"}, billing],
                "default": "technical",
            },
        }
    }
    tests = """
import pytest
import app

@pytest.mark.prompt("ticket-triage", purpose="Route a ticket to one queue")
@pytest.mark.dataset("tickets.jsonl", labels=["billing", "technical"])
def test_routes_tickets(model, example, prediction):
    prediction.label(app.chat(model, "Route this ticket: " + example["text"]).strip())

@pytest.mark.prompt("greeting")
def test_greets(model, checks):
    checks.contains(app.claude(model, "Say hello"), "Hello")
"""
    pytester.makefile(
        ".jsonl",
        tickets="\n".join(json.dumps({"id": i, "text": t, "label": label}) for i, t, label in TICKETS),
    )
    emulator = start_emulator(script, test_triage=tests)
    record(pytester, TWO)
    emulator.stop()

    reports = session_reports(pytester, TWO, "--migration-gate=no-regression")
    run = reports.run
    accuracy = {m: d["accuracy"] for m, d in run["datasets"]["test_triage.py::test_routes_tickets"].items()}
    assert accuracy == {"emu-a": 1.0, "emu-b": 7 / 8}
    assert run["gate"]["passed"] is False
    assert_consistent(reports)


@pytest.mark.parametrize("gate", ["strict", "no-regression"])
def test_xfail_on_one_model(
    pytester: pytest.Pytester, start_emulator: StartEmulator, gate: str, plugin_args: tuple[str, ...]
) -> None:
    """A test known to fail on emu-b, marked xfail for that model only; beside it a test that
    does not run on emu-b at all (``skip=``), so one cell has no outcome."""
    script = {
        "models": {
            "emu-a": {"rules": [{"match": "bullets", "reply": "- one\n- two\n- three"}], "default": "short"},
            "emu-b": {
                "rules": [{"match": "bullets", "reply": "- one\n- two\n- three\n- four"}],
                "default": "short",
            },
        }
    }
    tests = """
import pytest
import app

@pytest.mark.prompt("summary")
@pytest.mark.models(xfail={"emu-b": "accepted"})
def test_three_bullets(model, checks):
    checks.bullets(app.chat(model, "Summarize the ticket in three bullets"), exactly=3)

@pytest.mark.prompt("summary")
def test_one_line(model, checks):
    checks.max_words(app.chat(model, "Summarize the ticket in one line"), 5)

@pytest.mark.prompt("summary")
@pytest.mark.models(skip=["emu-b"])
def test_legacy_format(model, checks):
    checks.max_words(app.chat(model, "Summarize the ticket in the legacy format"), 5)
"""
    emulator = start_emulator(script, test_summary=tests)
    record(pytester, TWO)
    emulator.stop()

    reports = session_reports(pytester, TWO, f"--migration-gate={gate}", *plugin_args)
    by_id = {o["nodeid"]: o for o in reports.run["outcomes"]}
    assert by_id["test_summary.py::test_three_bullets[emu-b]"]["outcome"] == "xfailed"
    assert by_id["test_summary.py::test_three_bullets[emu-a]"]["outcome"] == "passed"
    assert "test_summary.py::test_legacy_format[emu-b]" not in by_id
    assert_consistent(reports)


@pytest.mark.parametrize("unrecorded", ["emu-a", "emu-b"])
def test_missing_recording_for_one_test_and_model(
    pytester: pytest.Pytester, start_emulator: StartEmulator, unrecorded: str, plugin_args: tuple[str, ...]
) -> None:
    """Replay with no cassette for one (test, model): on the incumbent, or on the candidate."""
    script = {"models": {"emu-*": {"rules": [{"match": "order", "reply": "Order 1234 has shipped."}]}}}
    tests = """
import pytest
import app

@pytest.mark.prompt("order-lookup")
def test_lookup(model, checks):
    checks.contains(app.chat(model, "Where is order 1234?"), "shipped")

@pytest.mark.prompt("order-lookup")
def test_status(model, checks):
    checks.contains(app.claude(model, "Status of order 1234?"), "1234")
"""
    emulator = start_emulator(script, test_orders=tests)
    record(pytester, TWO)
    emulator.stop()
    cassette = pytester.path / "cassettes" / "test_orders" / unrecorded / "test_status.yaml"
    cassette.unlink()

    reports = session_reports(pytester, TWO, "--migration-gate=report", *plugin_args)
    by_id = {o["nodeid"]: o for o in reports.run["outcomes"]}
    gap = by_id[f"test_orders.py::test_status[{unrecorded}]"]
    assert gap["outcome"] == "missing"
    assert [m["nodeid"] for m in reports.run["missing"]["recordings"]] == [gap["nodeid"]]
    assert "record" in str(gap["message"])
    assert_consistent(reports)


def test_a_prompt_that_errors_on_every_model(
    pytester: pytest.Pytester, start_emulator: StartEmulator
) -> None:
    """Every call of the outage prompt gets an HTTP error from the provider, on both models and
    both SDKs: in the test itself (the test fails) and in a fixture (the test errors in setup).

    The plugin never saves a cassette when a fixture fails before the test ran, so the fixture's
    error cannot be replayed: this session runs with the emulator up and ``--record-mode=once``,
    replaying what was recorded and calling the emulator for the rest, as a laptop run does.
    """
    script = {
        "models": {
            "emu-*": {
                "rules": [
                    {"match": "outage", "error": {"status": 500, "message": "upstream exploded"}},
                    {"match": "incident", "error": 529},
                    {"match": "hello", "reply": "Hello there"},
                ]
            }
        }
    }
    tests = """
import pytest
import app

pytestmark = pytest.mark.record_provider_errors  # the provider's errors are the answers here

@pytest.mark.prompt("outage-notice")
def test_outage_notice(model, checks):
    checks.contains(app.chat(model, "Write the outage notice"), "outage")

@pytest.mark.prompt("outage-notice")
def test_incident_summary(model, checks):
    checks.contains(app.claude(model, "Summarize the incident"), "incident")

@pytest.fixture
def drafted_notice(model):
    return app.chat(model, "Draft the outage notice for the status page")

@pytest.mark.prompt("outage-notice")
def test_status_page_notice(drafted_notice, checks):
    checks.contains(drafted_notice, "outage")

@pytest.mark.prompt("greeting")
def test_greets(model, checks):
    checks.contains(app.chat(model, "Say hello"), "Hello")
"""
    start_emulator(script, test_outage=tests)
    record(pytester, TWO)

    reports = session_reports(pytester, TWO, "--record-mode=once", "--migration-gate=no-regression")
    by_test: dict[str, list[dict[str, Any]]] = {}
    for o in reports.run["outcomes"]:
        by_test.setdefault(o["test"].rpartition("::")[2], []).append(o)
    for name in ("test_outage_notice", "test_incident_summary"):
        assert [o["outcome"] for o in by_test[name]] == ["failed", "failed"]
        assert [c["status"] for o in by_test[name] for c in o["calls"]] in ([500, 500], [529, 529])
    assert [o["outcome"] for o in by_test["test_status_page_notice"]] == ["error", "error"]
    assert all("500" in str(o["message"]) for o in by_test["test_status_page_notice"])
    assert_consistent(reports)


def test_sequential_decisions(pytester: pytest.Pytester, start_emulator: StartEmulator) -> None:
    """--samples=auto: the sequential decisions make the verdicts and the no-regression gate."""
    script = {
        "models": {
            "emu-a": {"rules": [{"match": "same|stable|drop", "reply": "ok"}]},
            "emu-b": {"rules": [{"match": "same|stable", "reply": "ok"}, {"match": "drop", "reply": "bad"}]},
        }
    }
    tests = """
import pytest
import app

@pytest.mark.prompt("unchanged-prompt")
def test_same(model, checks):
    checks.contains(app.chat(model, "same prompt"), "ok")

@pytest.mark.prompt("stable-prompt", deterministic=True)
def test_stable(model, checks):
    checks.contains(app.chat(model, "stable prompt"), "ok")

@pytest.mark.prompt("drop")
def test_drop(model, checks):
    checks.contains(app.chat(model, "drop prompt"), "ok")
"""
    # 8 rounds: 8 losses of 8 cross the boundary at alpha / (2 * K * T) = 0.05 / 6
    auto = (TWO, "--samples=auto", "--samples-min=8", "--samples-max=12")
    emulator = start_emulator(script, test_auto=tests)
    pytester.runpytest(*auto, "--record-mode=new_episodes", "-p", "no:randomly")
    emulator.stop()

    reports = session_reports(pytester, *auto, "--migration-gate=no-regression")
    adaptive = reports.run["adaptive"]["tests"]
    assert adaptive["test_auto.py::test_drop"]["emu-b"]["status"] == "regressed"
    assert adaptive["test_auto.py::test_same"]["emu-b"]["status"] == "not-regressed"
    assert adaptive["test_auto.py::test_stable"]["emu-b"]["status"] == "not-regressed"
    verdicts = reports.run["gate"]["verdicts"]
    assert verdicts["drop"]["emu-b"]["verdict"] == "re-engineer"
    # a futility stop is "not shown to regress": 8/8 vs 8/8 does not bound the drop below the
    # margin, so investigate; the deterministic prompt is non-inferior as recorded, so migrate
    unchanged = verdicts["unchanged-prompt"]["emu-b"]
    assert (unchanged["verdict"], unchanged["finding"]) == ("investigate", "undecided"), unchanged["reason"]
    assert "not shown non-inferior" in unchanged["reason"]
    stable = verdicts["stable-prompt"]["emu-b"]
    assert (stable["verdict"], stable["finding"]) == ("migrate", "non-inferior"), stable["reason"]
    assert reports.run["gate"]["passed"] is False
    assert_consistent(reports)


def test_each_check_reads_every_format(pytester: pytest.Pytester) -> None:
    """The checks are not vacuous: change the truth (the JSON) and every format disagrees with it,
    at the (row, model) cell, the (group, candidate) verdict, the gate and the JUnit property."""
    pytester.makepyfile(
        test_p="""
import pytest

@pytest.mark.prompt("p")
def test_a(model):
    pass

@pytest.mark.prompt("p")
def test_b(model):
    assert model != "b"
"""
    )
    reports = session_reports(pytester, "--models=a,b", "--migration-gate=no-regression")
    before = set(disagreements(reports))

    def new_problems(change: Callable[[dict[str, Any]], None]) -> list[str]:
        run = copy.deepcopy(reports.run)
        change(run)
        return [p for p in disagreements(replace(reports, run=run)) if p not in before]

    def cell(run: dict[str, Any]) -> None:
        run["matrix"]["groups"][0]["tests"][0]["cells"]["b"].update(passed=0, rate=0.0)

    found = new_problems(cell)
    for name in ("terminal", "show text", "markdown", "show md", "html", "show html"):
        assert any(p.startswith(f"{name}: cell (test_p.py::test_a, b) reads ") for p in found), (name, found)
    assert not any("test_b" in p or ", a)" in p for p in found), found

    def verdict(run: dict[str, Any]) -> None:
        run["gate"]["verdicts"]["p"]["b"]["verdict"] = "migrate"

    found = new_problems(verdict)
    for name in ("terminal", "show text", "markdown", "show md", "html", "show html", "show migration"):
        assert any(p.startswith(f"{name}: p/b ") for p in found), (name, found)

    def gate(run: dict[str, Any]) -> None:
        run["gate"]["passed"] = not run["gate"]["passed"]

    found = new_problems(gate)
    for name in ("markdown", "show md", "html", "show html", "show migration"):
        assert any(p.startswith(f"{name}: gate statement ") for p in found), (name, found)
    assert any(p.startswith("exit status ") for p in found), found

    def junit(run: dict[str, Any]) -> None:
        run["outcomes"][0]["group"] = "elsewhere"

    found = new_problems(junit)
    assert [p for p in found if p.startswith("JUnit XML:")] == [
        "JUnit XML: test_p.py::test_a[a] property prompt='p'; JSON 'elsewhere'"
    ]


# -- the analyses beside the matrix: calibration, prompt variants, drift, under-evidence -----

ANALYSES_SCRIPT = {
    "models": {
        "emu-a": {
            "rules": [
                {"match": "route", "reply": '{"queue": "billing", "confidence": 0.93}'},
                {"match": "exactly three", "reply": "- refund\n- order 1234\n- five days"},
                {"match": "Summarize", "reply": "- refund\n- order 1234\n- five days"},
                {"match": "greet", "reply": "Hello, how can I help you with your order today?"},
            ]
        },
        "emu-b": {
            "rules": [
                {"match": "route", "reply": '{"queue": "billing", "confidence": 0.62}'},
                {"match": "exactly three", "reply": "- refund\n- order 1234\n- five days"},
                {"match": "Summarize", "reply": "- refund\n- order 1234\n- five days\n- customer"},
                {"match": "greet", "reply": "Hi there! How may I help with the order?"},
            ]
        },
    }
}

ANALYSES_TESTS = """
import json
import pytest
import app

@pytest.mark.prompt("routing", deterministic=True)
def test_route(model, checks):
    reply = json.loads(app.chat(model, "route: where is my invoice"))
    checks.confidence(reply["confidence"], correct=reply["queue"] == "billing", threshold=0.85)

PROMPTS = {"v1": "Summarize the ticket", "v2": "Summarize the ticket in exactly three bullets"}

@pytest.mark.prompt("summary", deterministic=True)
@pytest.mark.prompt_variants("v1", "v2", targets={"v2": ["emu-b"]}, rationale={"v2": "four bullets on emu-b"})
def test_summary(model, prompt_variant, checks):
    checks.bullets(app.chat(model, PROMPTS[prompt_variant]), exactly=3)

@pytest.mark.prompt("greeting")
def test_greet(model, checks):
    checks.drift(app.chat(model, "greet the customer"), min_score=0.1)
"""


def visible_texts(reports: Reports) -> dict[str, str]:
    """What a reader sees in each format: the terminal, Markdown, HTML and the migration document."""
    doc = parse_html(reports.files["html"])
    return {
        "terminal": "\n".join(reports.terminal),
        "md": md_text(reports.files["md"]),
        "html": "\n".join([*doc.lines, *(" ".join(row) for table in doc.tables for row in table)]),
        "migration": md_text(reports.show["migration"]),
    }


def test_calibration_variants_drift_and_flags_say_the_same_in_every_format(
    pytester: pytest.Pytester, start_emulator: StartEmulator
) -> None:
    emulator = start_emulator(ANALYSES_SCRIPT, test_analyses=ANALYSES_TESTS)
    record(pytester, TWO)
    emulator.stop()
    reports = session_reports(pytester, TWO, "--migration-gate=no-regression")
    assert_consistent(reports)
    run = reports.run
    texts = visible_texts(reports)

    # calibration: the candidate's median and the shift, in every format
    assert "re-threshold" in json.dumps(run["calibration"])
    for where in ("terminal", "md", "html", "migration"):
        assert "median 0.93 → 0.62" in texts[where], where  # the shift, not the failing check's 0.62
        assert "re-threshold" in texts[where], where

    # prompt variants: the variant each model ships, wherever the decision is shown
    (summary,) = run["variants"]["tests"]
    assert {model: entry["ship"] for model, entry in summary["models"].items()} == {
        "emu-a": "v1",
        "emu-b": "v2",
    }
    for where in ("terminal", "migration"):
        assert "ship v2" in texts[where] and "keeps v1" in texts[where], where
    for where in ("md", "html"):  # the recommendation carries the ship line
        assert "ship v2" in texts[where], where

    # drift: the candidate's row, with its median, in every format
    (row,) = run["drift"]
    assert (row["group"], row["model"]) == ("greeting", "emu-b")
    median = f"{row['median']:.2f}"
    for where in ("terminal", "md", "html", "migration"):
        assert median in texts[where], (where, median)

    # under-evidence: one sample per test on a sampled group, flagged in every format
    flags = [f["line"] for f in run["under_evidence"]["flags"]]
    assert any("1 sample per test" in m for m in flags), flags
    for where in ("terminal", "md", "html", "migration"):
        assert "1 sample per test" in texts[where], where
