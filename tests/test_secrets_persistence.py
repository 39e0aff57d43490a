"""No secret reaches a cassette; an interrupted or failed recording keeps the previous cassette."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_modelmigrate.cassettes import AtomicPersister, write_atomically
from pytest_modelmigrate.scrub import Scrubber, SecretInCassetteError, assert_no_live_keys, find_live_keys

OPENAI_KEY = "sk-proj-" + "Zq8" * 15
ANTHROPIC_KEY = "sk-ant-api03-" + "Kx7" * 14
CUSTOM_SECRET = "corp-secret-" + "9f" * 10

LEAKY_TESTS = """
import os
import openai, anthropic

URL = os.environ["EMU_URL"]

def test_openai(model):
    client = openai.OpenAI(
        base_url=URL + "/v1", api_key=os.environ["OPENAI_API_KEY"], max_retries=0,
        organization="org-secretorg123", project="proj_secretproject",
        default_headers={"X-Corp-Token": os.environ["CORP_TOKEN"]},
        default_query={"api_key": os.environ["OPENAI_API_KEY"]},
    )
    r = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "my key is " + os.environ["OPENAI_API_KEY"]}],
    )
    assert r.choices[0].message.content

def test_anthropic(model):
    client = anthropic.Anthropic(base_url=URL, api_key=os.environ["ANTHROPIC_API_KEY"], max_retries=0)
    r = client.messages.create(model=model, max_tokens=50, messages=[{"role": "user", "content": "hello"}])
    assert r.content
"""


def test_no_secret_reaches_any_cassette(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.setenv("CORP_TOKEN", CUSTOM_SECRET)
    project.makeini("[pytest]\nmodelmigrate_secret_headers = x-corp-token\n")
    project.makepyfile(test_leaky=LEAKY_TESTS)
    result = project.runpytest("--models=emu-a", "--record-mode=once", "--migration-json=run.json")
    result.assert_outcomes(passed=2)
    files = sorted((project.path / "cassettes").rglob("*.yaml"))
    assert len(files) == 2
    text = "\n".join(p.read_text() for p in files) + (project.path / "run.json").read_text()
    for secret in (OPENAI_KEY, ANTHROPIC_KEY, CUSTOM_SECRET, "org-secretorg123", "proj_secretproject"):
        assert secret not in text
    lowered = text.lower()
    for header in (
        "authorization:",
        "x-api-key:",
        "openai-organization:",
        "openai-project:",
        "x-corp-token:",
    ):
        assert header not in lowered
    assert "api_key=" not in text
    assert "<redacted>" in text  # the key in the prompt body was replaced, not dropped
    assert find_live_keys(text) == []

    # the scrubbed cassettes still replay (the key is gone from the body the app sends in CI)
    monkeypatch.setenv("OPENAI_API_KEY", "<redacted>")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "x")
    monkeypatch.setenv("CORP_TOKEN", "x")
    project.runpytest("--models=emu-a").assert_outcomes(passed=2)


def test_response_headers_with_account_ids_are_dropped() -> None:
    scrubber = Scrubber.from_settings(environ={})
    response = {
        "status": {"code": 200, "message": "OK"},
        "headers": {
            "Set-Cookie": ["__cf_bm=abc"],
            "openai-organization": ["org-xyz"],
            "anthropic-organization-id": ["9c1e"],
            "content-type": ["application/json"],
        },
        "body": {"string": b"{}"},
    }
    cleaned = scrubber.response(response)
    assert set(cleaned["headers"]) == {"content-type"}


def test_scan_refuses_to_write_a_cassette_holding_a_live_looking_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("old cassette\n")
    with pytest.raises(SecretInCassetteError, match=r"refusing to write .*c\.yaml.*line\(s\) 2"):
        assert_no_live_keys(f"interactions:\n- body: {OPENAI_KEY}\n", path=str(path))
    assert path.read_text() == "old cassette\n"
    # look-alikes inside words are not keys
    assert find_live_keys("risk-assessment-framework-for-llm-applications") == []


def test_interrupted_write_keeps_the_old_cassette(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cassettes" / "m" / "gpt" / "test_x.yaml"
    write_atomically(path, "version: 1\ninteractions: []\n")

    def crash(fd: int) -> None:
        raise KeyboardInterrupt  # Ctrl-C in the middle of the write

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(path, "version: 1\ninteractions: [half")
    assert path.read_text() == "version: 1\ninteractions: []\n"
    assert [p.name for p in path.parent.iterdir()] == ["test_x.yaml"]  # no temp file left behind


def test_unreadable_cassette_is_reported_and_left_alone(tmp_path: Path) -> None:
    from vcr.serializers import yamlserializer

    from pytest_modelmigrate.cassettes import CassetteReadError

    path = tmp_path / "broken.yaml"
    path.write_text("interactions:\n- request: {uri: [unclosed\n")
    with pytest.raises(CassetteReadError, match=r"broken\.yaml: cannot be parsed.*left as it is"):
        AtomicPersister.load_cassette(path, yamlserializer)
    assert path.read_text().startswith("interactions:")


def test_failed_rerecord_leaves_the_old_cassette(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(
        test_r="""
        import os, app

        def test_it(model):
            app.chat(model, "hello")
            if os.environ.get("BREAK"):
                raise ConnectionError("network went away half-way")
        """
    )
    project.runpytest("--models=emu-a", "--record-mode=once").assert_outcomes(passed=1)
    cassette = project.path / "cassettes" / "test_r" / "emu-a" / "test_it.yaml"
    before = cassette.read_text()
    monkeypatch.setenv("BREAK", "1")
    project.runpytest("--models=emu-a", "--record-mode=rewrite").assert_outcomes(failed=1)
    assert cassette.read_text() == before


def test_corrupt_cassette_fails_the_test_naming_the_file(project: pytest.Pytester) -> None:
    project.makepyfile(test_c="import app\ndef test_it(model):\n    app.chat(model, 'hi')\n")
    cassette = project.path / "cassettes" / "test_c" / "emu-a" / "test_it.yaml"
    cassette.parent.mkdir(parents=True)
    cassette.write_text("interactions: [ {request: \n")
    result = project.runpytest("--models=emu-a", "--record-mode=once")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*test_it.yaml: cannot be parsed*git checkout it*"])
    assert cassette.read_text() == "interactions: [ {request: \n"


def test_atomic_write_gives_the_file_an_ordinary_mode(tmp_path: Path) -> None:
    path = tmp_path / "new.yaml"
    write_atomically(path, "x: 1\n")
    assert path.stat().st_mode & 0o777 == 0o666 & ~_current_umask()
    path.chmod(0o640)
    write_atomically(path, "x: 2\n")  # an existing file keeps its mode
    assert path.stat().st_mode & 0o777 == 0o640


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
