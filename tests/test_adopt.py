"""``modelmigrate adopt``: pytest-recording cassettes become one model's recordings."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pytest_modelmigrate.adopt import AdoptError, adopt_cassettes, check_model_id
from pytest_modelmigrate.cli import main
from pytest_modelmigrate.providers.parse import load_calls

REAL = Path(__file__).parent / "data" / "real_cassettes"
SAMPLE = REAL / "pydantic-ai/cassettes/test_openai/test_valid_response.yaml"
SAMPLE_2 = REAL / "llm/cassettes/test_tools/test_tool_use_basic.yaml"


@pytest.fixture
def cassettes(tmp_path: Path) -> Path:
    """A pytest-recording layout: tests/cassettes/<module>/<test>.yaml."""
    root = tmp_path / "tests" / "cassettes"
    (root / "test_triage").mkdir(parents=True)
    (root / "test_summary").mkdir()
    shutil.copy(SAMPLE, root / "test_triage" / "test_routes_refund.yaml")
    shutil.copy(SAMPLE_2, root / "test_triage" / "TestTools.test_multiply.yaml")
    shutil.copy(SAMPLE, root / "test_summary" / "test_summary[short].yaml")
    return root


def test_copies_into_the_model_folder(cassettes: Path) -> None:
    pairs = adopt_cassettes(cassettes, "gpt-4o")
    assert [(s.relative_to(cassettes).as_posix(), d.relative_to(cassettes).as_posix()) for s, d in pairs] == [
        ("test_summary/test_summary[short].yaml", "test_summary/gpt-4o/test_summary[short].yaml"),
        ("test_triage/TestTools.test_multiply.yaml", "test_triage/gpt-4o/TestTools.test_multiply.yaml"),
        ("test_triage/test_routes_refund.yaml", "test_triage/gpt-4o/test_routes_refund.yaml"),
    ]
    for source, target in pairs:
        assert source.exists()  # copied, not moved
        assert target.read_bytes() == source.read_bytes()
        assert load_calls(target)
    # Adopting the same files for a second model works; files already in a model folder are ignored.
    assert len(adopt_cassettes(cassettes, "gpt-5")) == 3


def test_module_folder_single_file_dest_and_move(cassettes: Path, tmp_path: Path) -> None:
    pairs = adopt_cassettes(cassettes / "test_triage", "claude-sonnet-4-5", dry_run=True)
    assert [d.relative_to(cassettes).as_posix() for _, d in pairs] == [
        "test_triage/claude-sonnet-4-5/TestTools.test_multiply.yaml",
        "test_triage/claude-sonnet-4-5/test_routes_refund.yaml",
    ]
    assert not (cassettes / "test_triage" / "claude-sonnet-4-5").exists()  # dry run writes nothing
    single = cassettes / "test_summary" / "test_summary[short].yaml"
    ((_, target),) = adopt_cassettes(single, "gpt-4o", dest=tmp_path / "elsewhere", move=True)
    assert target == tmp_path / "elsewhere" / "test_summary" / "gpt-4o" / "test_summary[short].yaml"
    assert target.exists()
    assert not single.exists()


def test_never_overwrites_and_writes_nothing_on_clash(cassettes: Path) -> None:
    existing = cassettes / "test_triage" / "gpt-4o" / "test_routes_refund.yaml"
    existing.parent.mkdir()
    existing.write_text("mine")
    with pytest.raises(AdoptError, match=r"1 destination\(s\) already exist.*\n.*test_routes_refund\.yaml"):
        adopt_cassettes(cassettes, "gpt-4o")
    assert existing.read_text() == "mine"
    assert sorted(p.name for p in existing.parent.iterdir()) == ["test_routes_refund.yaml"]
    assert not (cassettes / "test_summary" / "gpt-4o").exists()


def test_unreadable_cassettes_are_listed_and_nothing_written(cassettes: Path) -> None:
    (cassettes / "test_triage" / "test_broken.yaml").write_text("interactions: [ {request: \n  - :: ][")
    (cassettes / "test_triage" / "test_wrong.yaml").write_text("- not a cassette\n")
    with pytest.raises(AdoptError, match=r"2 of 5 files are not readable cassettes") as info:
        adopt_cassettes(cassettes, "gpt-4o")
    message = str(info.value)
    assert "test_broken.yaml: not a YAML cassette" in message
    assert "test_wrong.yaml: not a vcrpy cassette" in message
    assert not list(cassettes.rglob("gpt-4o"))


@pytest.mark.parametrize(
    "model", ["a/b", "..", "", "gpt-4o\\x", "llama3:8b", "x?", "bad\x00", " gpt", "con", "ends."]
)
def test_model_ids_that_cannot_name_a_folder(model: str, cassettes: Path) -> None:
    with pytest.raises(AdoptError, match="model id"):
        adopt_cassettes(cassettes, model)
    assert not any(p.is_dir() for p in (cassettes / "test_triage").iterdir())


def test_model_ids_that_can() -> None:
    for model in ["gpt-4o", "gpt-4o-2024-08-06", "claude-sonnet-4-5@20250929", "o3-mini", "ft.model_v1"]:
        assert check_model_id(model) == model


def test_empty_and_missing_sources(tmp_path: Path) -> None:
    with pytest.raises(AdoptError, match="no cassette files"):
        adopt_cassettes(tmp_path, "gpt-4o")
    with pytest.raises(AdoptError, match="neither a cassette file nor a folder"):
        adopt_cassettes(tmp_path / "missing", "gpt-4o")


def test_command_line(cassettes: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adopt", str(cassettes), "--model", "gpt-4o", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("would copy: ")
    assert out[0].endswith("gpt-4o/test_summary[short].yaml")
    assert out[-1] == "dry run: would copy 3 cassettes as model 'gpt-4o'; nothing written"
    assert main(["adopt", str(cassettes), "--model", "gpt-4o"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "adopted 3 cassettes as model 'gpt-4o' (copied)"
    assert main(["adopt", str(cassettes), "--model", "gpt-4o"]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("modelmigrate adopt: error: 3 destination(s) already exist")
    assert main(["adopt", str(cassettes), "--model", "a/b"]) == 1
    assert "cannot be part of a folder name" in capsys.readouterr().err
