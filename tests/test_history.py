"""The migration history: runs appended one JSON line each, rendered per prompt with what broke."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_reports import make_run

from pytest_modelmigrate.cli import main
from pytest_modelmigrate.emulator import Emulator
from pytest_modelmigrate.history import (
    HistoryError,
    append_entry,
    entry_from_run,
    find_breaks,
    load_history,
    render_history,
    run_id,
)
from pytest_modelmigrate.reports.migration_doc import render_migration_doc
from pytest_modelmigrate.reports.run import write_json

if TYPE_CHECKING:
    from pathlib import Path

StartEmulator = Callable[..., Emulator]

# emu-new writes four bullets when the prompt ends at "the refund ticket" (prompt v1).
SCRIPT = {
    "models": {
        "emu-old": {"default": "- one\n- two\n- three"},
        "emu-new": {
            "rules": [{"match": "refund ticket$", "reply": "- one\n- two\n- three\n- four"}],
            "default": "- one\n- two\n- three",
        },
    }
}

TESTS = """
import pytest
import app

pytestmark = pytest.mark.prompt("summary", purpose="three bullets for the agent", deterministic=True{marker})

@pytest.mark.regression_case("4 bullets on a refund ticket", fixed_in="v2")
def test_refund_ticket_has_three_bullets(model):
    assert app.chat(model, "summarize the {ask}").count("- ") == 3

def test_short_ticket(model):
    assert app.chat(model, "summarize the short ticket")
"""

V1 = {"marker": ', version="v1"', "ask": "refund ticket"}
V2 = {
    "marker": ', version="v2", target_model="emu-new", '
    'rationale="emu-new wrote four bullets; the prompt now asks for exactly three"',
    "ask": "refund ticket in exactly three bullets",
}


def _run(pytester: pytest.Pytester, out: str, *args: str) -> dict[str, Any]:
    pytester.runpytest("--models=emu-old,emu-new", f"--migration-json={out}", *args)
    run: dict[str, Any] = json.loads((pytester.path / out).read_text(encoding="utf-8"))
    return run


def test_a_prompt_that_broke_in_one_migration_and_was_fixed_in_v2(
    pytester: pytest.Pytester,
    start_emulator: StartEmulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    start_emulator(SCRIPT, test_s=TESTS.format(**V1))
    monkeypatch.chdir(pytester.path)
    history = pytester.path / "migrations" / "history.jsonl"

    # Migration 1: prompt v1; emu-new fails the regression case.
    first = _run(pytester, "run1.json", "--record-mode=once")
    assert first["gate"]["passed"] is False
    assert main(["history", "append", "run1.json", "--note", "first look at emu-new"]) == 0
    assert "(line 1, id " in capsys.readouterr().err

    # The prompt is re-engineered (v2, with its rationale) and recorded again: emu-new passes.
    pytester.makepyfile(test_s=TESTS.format(**V2))
    second = _run(pytester, "run2.json", "--record-mode=rewrite")
    assert second["gate"]["passed"] is True
    assert main(["history", "append", "run2.json"]) == 0
    capsys.readouterr()

    entries = load_history(history)
    assert [e["prompts"]["summary"]["version"] for e in entries] == ["v1", "v2"]
    case = entries[0]["prompts"]["summary"]["regression_cases"][0]
    assert case["description"] == "4 bullets on a refund ticket"
    assert case["results"]["emu-new"]["outcome"] == "failed"
    assert entries[0]["prompts"]["summary"]["verdicts"]["emu-new"]["verdict"] == "re-engineer"
    assert entries[1]["prompts"]["summary"]["verdicts"]["emu-new"]["verdict"] == "migrate"
    assert entries[0]["incumbent"] == {"alias": "emu-old", "model": "emu-old"}

    assert main(["history", "show", "--format", "text"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "migration history: 2 migration(s) in migrations/history.jsonl",
        "summary",
        f"  migration 1, {_day(first)}: emu-old → emu-new, prompt v1",
        "    verdict: emu-new re-engineer (regressed); pass rates emu-old 2/2, emu-new 1/2",
        "    broke: regression case failed: test_s.py::test_refund_ticket_has_three_bullets on emu-new "
        '("4 bullets on a refund ticket", 0/1); fixed in v2 (migration 2)',
        "    note: first look at emu-new",
        f"  migration 2, {_day(second)}: emu-old → emu-new, prompt v2",
        "    re-engineered v1 → v2, targets emu-new: emu-new wrote four bullets; "
        "the prompt now asks for exactly three",
        "    verdict: emu-new migrate (non-inferior); pass rates emu-old 2/2, emu-new 2/2",
        "    passed again: test_s.py::test_refund_ticket_has_three_bullets on emu-new (broke in migration 1)",
    ]

    # Appending the same run again is refused and leaves the file as it was.
    before = history.read_text(encoding="utf-8")
    assert main(["history", "append", "run2.json"]) == 1
    err = capsys.readouterr().err
    assert "migrations/history.jsonl: already holds this run (line 2" in err
    assert "nothing appended" in err
    assert history.read_text(encoding="utf-8") == before

    # The migration document of run 2 lists what broke in the earlier migration (run 2 left out).
    doc = render_migration_doc(second, history=entries)
    earlier = doc.split("### Earlier migrations", 1)[1].split("### Regression cases", 1)[0]
    assert "1. **" in earlier
    assert "fixed in v2 (this run)" in earlier
    assert "2. **" not in earlier


def _day(run: dict[str, Any]) -> str:
    from datetime import UTC, datetime

    return datetime.fromisoformat(run["created"]).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def test_without_explicit_versions_the_version_is_a_hash_of_the_recorded_prompt_text(
    pytester: pytest.Pytester, start_emulator: StartEmulator
) -> None:
    start_emulator(SCRIPT, test_s=TESTS.format(marker="", ask="refund ticket"))

    def version(*args: str) -> str:
        # read from the cassettes as they are now: append right after the run
        run = _run(pytester, "run.json", *args)
        prompt = entry_from_run(run, root=pytester.path)["prompts"]["summary"]
        assert prompt["version_source"] == "recordings"
        return str(prompt["version"])

    first = version("--record-mode=once")
    assert first.startswith("#")
    assert version() == first  # replayed from the same cassettes
    assert version("--models=emu-old") == first  # not the models compared
    pytester.makepyfile(test_s=TESTS.format(marker="", ask="refund ticket, three bullets"))
    assert version("--record-mode=rewrite") != first
    # without the recordings there is no version to give
    run = json.loads((pytester.path / "run.json").read_text(encoding="utf-8"))
    assert entry_from_run(run)["prompts"]["summary"]["version"] is None


# -- unit tests on runs built by hand -------------------------------------------------------------


def _runs() -> tuple[dict[str, Any], dict[str, Any]]:
    """A regressed run (json_strict fails on gpt-5) and the run after the fix, triage v1 then v2."""
    broken, fixed = make_run(), make_run(regress=False)
    for run, version in ((broken, "v1"), (fixed, "v2")):
        for o in run["outcomes"]:
            if o.get("prompt"):
                o["prompt"] = {**o["prompt"], "version": version}
                if version == "v2":
                    o["prompt"].update(rationale="gpt-5 fenced its JSON", target_model="gpt-5")
    fixed["created"] = "2026-02-01T10:00:00+00:00"
    return broken, fixed


def _write_history(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_rendering_names_the_change_what_broke_and_where_it_was_fixed() -> None:
    broken, fixed = _runs()
    entries = [entry_from_run(broken), entry_from_run(fixed)]
    text = render_history(entries, fmt="markdown", prompt="ticket-triage")
    assert "## ticket-triage" in text
    assert "re-engineered v1 → v2, targets gpt-5: gpt-5 fenced its JSON" in text
    assert "check failed: json\\_strict on gpt-5 (1/1 samples); fixed in v2 (migration 2)" in text
    assert "not fixed yet" not in text
    breaks = find_breaks(entries, "ticket-triage")
    assert {(b.kind, b.name, b.fixed_index) for b in breaks} == {
        ("check", "json_strict", 1),
        ("test", "tests/prompts/test_triage.py::test_refund", 1),
    }
    # a break with no later passing migration
    assert "not fixed yet" in render_history(entries[:1], fmt="text")


def test_the_same_run_and_its_baseline_have_one_id(tmp_path: Path) -> None:
    from pytest_modelmigrate.baseline import load_run, save_baseline

    broken, _ = _runs()
    save_baseline(broken, tmp_path / "baseline.json")
    assert run_id(load_run(tmp_path / "baseline.json")) == run_id(broken)
    path = tmp_path / "h.jsonl"
    append_entry(path, entry_from_run(broken))
    with pytest.raises(HistoryError, match="already holds this run"):
        append_entry(path, entry_from_run(load_run(tmp_path / "baseline.json")))


def test_append_and_show_through_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken, fixed = _runs()
    write_json(tmp_path / "a.json", broken)
    write_json(tmp_path / "b.json", fixed)
    history = tmp_path / "deep" / "history.jsonl"
    for name in ("a.json", "b.json"):
        assert main(["history", "append", str(tmp_path / name), "--to", str(history)]) == 0
    assert len(history.read_text(encoding="utf-8").splitlines()) == 2
    capsys.readouterr()
    assert main(["history", "show", str(history), "--prompt", "ticket-triage"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Migration history")
    assert "## summary" not in out  # another prompt group, left out by --prompt
    out_file = tmp_path / "doc.md"
    args = ["history", "show", str(history), "--format", "migration", "--run", str(tmp_path / "b.json")]
    assert main([*args, "-o", str(out_file)]) == 0
    assert "### Earlier migrations" in out_file.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{not json", "not JSON (column 2"),
        ("[1, 2]", "not a migration history entry (not a JSON object)"),
        ('{"history_version": 7}', "history_version 7 is not supported"),
        ('{"history_version": 1, "id": "x", "created": "", "candidates": []}', "'prompts' missing"),
        (
            '{"history_version": 1, "id": "x", "created": "", "candidates": [], "prompts": {"p": []}}',
            "prompt 'p': not an object",
        ),
    ],
)
def test_a_bad_line_is_named_with_its_line_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, problem: str
) -> None:
    good = json.dumps(entry_from_run(_runs()[0]))
    path = _write_history(tmp_path, [good, "", line])
    with pytest.raises(HistoryError, match=r"history\.jsonl:3: "):
        load_history(path)
    assert main(["history", "show", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{path}:3: " in err
    assert problem in err
    assert "Traceback" not in err
    # nothing is appended to a history that does not read
    write_json(tmp_path / "b.json", _runs()[1])
    assert main(["history", "append", str(tmp_path / "b.json"), "--to", str(path)]) == 2
    assert f"{path}:3: " in capsys.readouterr().err


def test_the_same_entry_twice_in_the_file_is_refused(tmp_path: Path) -> None:
    good = json.dumps(entry_from_run(_runs()[0]))
    with pytest.raises(HistoryError, match=r"history.jsonl:2: the same run as line 1"):
        load_history(_write_history(tmp_path, [good, good]))


def test_missing_files_and_unknown_prompts_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "show", str(tmp_path / "none.jsonl")]) == 2
    assert "none.jsonl: no such file" in capsys.readouterr().err
    assert main(["history", "append", str(tmp_path / "none.json"), "--to", str(tmp_path / "h.jsonl")]) == 2
    assert "none.json: no such file" in capsys.readouterr().err
    path = _write_history(tmp_path, [json.dumps(entry_from_run(_runs()[0]))])
    assert main(["history", "show", str(path), "--prompt", "nope"]) == 2
    assert "no prompt group 'nope' (known: ticket-triage, " in capsys.readouterr().err
    assert main(["history", "show", str(path), "--format", "migration"]) == 2
    assert "needs --run" in capsys.readouterr().err


def test_an_explicit_version_whose_recorded_text_changed_is_pointed_out() -> None:
    broken, _ = _runs()
    first, second = entry_from_run(broken), copy.deepcopy(entry_from_run(broken))
    first["prompts"]["ticket-triage"]["content_hash"] = "aaa"
    second["prompts"]["ticket-triage"]["content_hash"] = "bbb"
    second["id"] = "other"
    text = render_history([first, second], fmt="text", prompt="ticket-triage")
    assert "the prompt text changed, its version stayed v1" in text


def test_the_session_appends_its_run_with_migration_history(
    pytester: pytest.Pytester, start_emulator: StartEmulator, plugin_args: tuple[str, ...]
) -> None:
    start_emulator(SCRIPT, test_s=TESTS.format(**V1))
    pytester.makeini("[pytest]\nmodelmigrate_history = migrations/history.jsonl\n")
    result = pytester.runpytest("--models=emu-old,emu-new", "--record-mode=once", *plugin_args)
    result.stdout.fnmatch_lines(["migration report written: */migrations/history.jsonl"])
    # the command line wins over the ini file; a replay of the same cassettes is another run
    pytester.makepyfile(test_s=TESTS.format(**V2))
    pytester.runpytest("--models=emu-old,emu-new", "--record-mode=rewrite", "--migration-history=h2.jsonl")
    assert [e["prompts"]["summary"]["version"] for e in load_history(pytester.path / "h2.jsonl")] == ["v2"]
    entries = load_history(pytester.path / "migrations" / "history.jsonl")
    assert [e["prompts"]["summary"]["version"] for e in entries] == ["v1"]  # not once per xdist worker
    assert entries[0]["prompts"]["summary"]["content_hash"]  # the cassettes under the rootdir were read


def test_a_shard_appends_nothing(pytester: pytest.Pytester, start_emulator: StartEmulator) -> None:
    start_emulator(SCRIPT, test_s=TESTS.format(**V1))
    pytester.runpytest(
        "--models=emu-old,emu-new",
        "--record-mode=once",
        "--migration-shard=1/2",
        "--migration-history=h.jsonl",
    )
    assert not (pytester.path / "h.jsonl").exists()


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*prefix, index))
    return found


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2),
    max_leaves=4,
)
_ENTRIES = [entry_from_run(run) for run in _runs()]
_PATHS = [p for p in _paths(_ENTRIES[0]) if p]


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(_PATHS), value=JSON)
def test_a_hand_edited_line_is_refused_or_rendered_never_a_traceback(
    tmp_path: Path, path: tuple[Any, ...], value: Any
) -> None:
    edited = copy.deepcopy(_ENTRIES[0])
    target = edited
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    lines = [json.dumps(edited), json.dumps(_ENTRIES[1])]
    history = tmp_path / "edited.jsonl"
    history.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        entries = load_history(history)
    except HistoryError as exc:
        assert str(exc).startswith(f"{history}:")
        return
    for fmt in ("markdown", "text"):
        render_history(entries, fmt=fmt)
    render_migration_doc(make_run(regress=False), history=entries)


def test_a_test_left_out_of_a_later_run_is_not_counted_as_fixed() -> None:
    broken, fixed = _runs()
    fixed["outcomes"] = [o for o in fixed["outcomes"] if not o["test"].endswith("test_refund")]
    fixed["gate"]["regressions"] = []
    breaks = find_breaks([entry_from_run(broken), entry_from_run(fixed)], "ticket-triage")
    assert {(b.kind, b.name, b.fixed_index) for b in breaks} == {
        ("check", "json_strict", None),  # it ran only in test_refund
        ("test", "tests/prompts/test_triage.py::test_refund", None),
    }
