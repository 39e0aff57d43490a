"""``modelmigrate show`` and ``modelmigrate compare`` on saved runs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from test_reports import make_run, parse_html

from pytest_modelmigrate.cli import main
from pytest_modelmigrate.reports.run import write_json

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path]:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    write_json(old, make_run(regress=False))
    write_json(new, make_run())
    return old, new


def test_show_text(runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", str(runs[1])]) == 0
    out = capsys.readouterr().out
    assert "ticket-triage" in out
    assert "0/1   0%" in out
    assert "checks that failed (failed samples / samples, per model):" in out
    assert out.rstrip().splitlines()[-1].startswith("migration gate (no-regression): FAILED")


@pytest.mark.parametrize(
    ("fmt", "start"),
    [("md", "## Model migration"), ("html", "<!DOCTYPE html>"), ("migration", "# Prompt migration matrix")],
)
def test_show_formats_to_a_file(runs: tuple[Path, Path], tmp_path: Path, fmt: str, start: str) -> None:
    out = tmp_path / "out" / f"report.{fmt}"
    assert main(["show", str(runs[1]), "--format", fmt, "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith(start)
    if fmt == "html":
        parse_html(text)


def test_show_reprices(runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"gpt-4o": {"input": 1000000, "output": 0}}))
    assert main(["show", str(runs[1]), "--prices", str(prices)]) == 0
    out = capsys.readouterr().out
    assert "$300.00" in out  # 3 calls × 100 input tokens at $1 per token
    assert "n/a" in out  # gpt-5 has no price now


def test_compare_exit_codes(runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    old, new = runs
    assert main(["compare", str(old), str(new)]) == 1
    assert (
        "regressed: tests/prompts/test_triage.py::test_refund [gpt-5] 1/1 -> 0/1" in capsys.readouterr().out
    )
    assert main(["compare", str(new), str(old)]) == 0
    assert main(["compare", str(old), str(old), "--format", "md"]) == 0
    assert "✅ **0 regression(s)**" in capsys.readouterr().out


def test_compare_markdown_to_file(runs: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "cmp.md"
    assert main(["compare", str(runs[0]), str(runs[1]), "--format", "md", "-o", str(out)]) == 1
    assert "### Regressions" in out.read_text(encoding="utf-8")


def test_not_a_run_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["show", str(bad)]) == 2
    assert f"modelmigrate show: {bad}: not a pytest-modelmigrate run" in capsys.readouterr().err
    assert main(["compare", str(bad), str(bad)]) == 2
    assert "modelmigrate compare:" in capsys.readouterr().err
