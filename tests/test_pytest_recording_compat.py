"""A user who leaves the plugin keeps their cassettes: plain pytest-recording replays them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml

from pytest_modelmigrate.cli import main
from pytest_modelmigrate.emulator import Emulator

StartEmulator = Callable[..., Emulator]

SAMPLED = """
import app

def test_sampled(model):
    assert app.chat(model, "a sampled question")
"""

PLAIN = """
import os
import openai
import pytest

@pytest.fixture(scope="module")
def vcr_cassette_dir():
    return os.path.join(os.path.dirname(__file__), "cassettes", "test_s", "emu-a")

@pytest.mark.vcr
def test_sampled():
    client = openai.OpenAI(base_url=os.environ["EMU_URL"] + "/v1", api_key="x", max_retries=0)
    answers = [
        client.chat.completions.create(
            model="emu-a", messages=[{"role": "user", "content": "a sampled question"}]
        ).choices[0].message.content
        for _ in range(3)
    ]
    assert answers == ["one", "two", "three"]
"""


def test_pytest_recording_replays_a_sampled_cassette_with_its_metadata(
    pytester: pytest.Pytester, start_emulator: StartEmulator
) -> None:
    emulator = start_emulator(
        {"models": {"emu-a": {"rules": [{"match": "sampled", "sequence": ["one", "two", "three"]}]}}},
        test_s=SAMPLED,
    )
    pytester.runpytest("--models=emu-a", "--samples=3", "--record-mode=once").assert_outcomes(passed=1)
    cassette = pytester.path / "cassettes" / "test_s" / "emu-a" / "test_sampled.yaml"
    data = yaml.safe_load(cassette.read_text())
    assert data["metadata"]["modelmigrate"] == {"samples": ["passed"] * 3, "episodes": [1, 1, 1]}
    emulator.stop()
    before = cassette.read_bytes()
    # the plugin is not loaded at all: pytest-recording and vcrpy alone
    pytester.makepyfile(test_s=PLAIN)
    plain = ("-p", "no:modelmigrate", "--block-network")
    refused = pytester.runpytest(*plain)
    refused.assert_outcomes(errors=1)  # pytest-recording 0.14 cannot read vcrpy's metadata block
    refused.stdout.fnmatch_lines(["*ValueError: too many values to unpack*"])

    copies = pytester.path / "exported"
    assert main(["export", "cassettes", "--to", str(copies)]) == 0
    assert cassette.read_bytes() == before  # the plugin's own files are untouched
    exported = yaml.safe_load((copies / "test_s" / "emu-a" / "test_sampled.yaml").read_text())
    assert "metadata" not in exported
    assert exported["interactions"] == data["interactions"]
    assert main(["export", "cassettes", "--in-place"]) == 0
    pytester.runpytest(*plain).assert_outcomes(passed=1)
    assert main(["export", "cassettes"]) == 2  # neither --to nor --in-place: nothing written


MIXED = """
import os
import openai
import pytest
import app
from pytest_modelmigrate.cassettes import DEFAULT_MATCH_ON

QUESTION = os.environ.get("QUESTION", "a mixed question")

@pytest.fixture(scope="module")
def vcr_config():
    return {"match_on": list(DEFAULT_MATCH_ON)}  # the plugin's matchers, for both tests

def test_model(model):
    assert app.chat(model, "a mixed question") == "fine"

@pytest.mark.vcr
def test_plain():
    client = openai.OpenAI(base_url=os.environ["EMU_URL"] + "/v1", api_key="x", max_retries=0)
    answer = client.chat.completions.create(
        model="emu-a", messages=[{"role": "user", "content": QUESTION}]
    ).choices[0].message.content
    assert answer == "fine"
"""


def test_a_vcr_config_naming_the_plugins_matchers_serves_plain_vcr_tests_too(
    pytester: pytest.Pytester, start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One module-level ``vcr_config`` for a model test and a ``@pytest.mark.vcr`` test: the
    plain test records and replays with the plugin's matchers, where vcrpy alone raised
    ``KeyError: Matcher modelmigrate_body doesn't exist``."""
    emulator = start_emulator(
        {"models": {"emu-a": {"rules": [{"match": "mixed", "reply": "fine"}]}}}, test_mixed=MIXED
    )
    recorded = pytester.runpytest("--models=emu-a", "--record-mode=once")
    recorded.assert_outcomes(passed=2)
    plain = pytester.path / "cassettes" / "test_mixed" / "test_plain.yaml"
    assert "a mixed question" in plain.read_text()
    emulator.stop()
    pytester.runpytest("--models=emu-a", "--record-mode=none").assert_outcomes(passed=2)
    # the body is matched, and by the plugin's matcher: another question is not served
    monkeypatch.setenv("QUESTION", "another mixed question")
    changed = pytester.runpytest("--models=emu-a", "--record-mode=none")
    changed.assert_outcomes(passed=1, failed=1)
    changed.stdout.fnmatch_lines(["*test_plain*"])
    assert "Matcher modelmigrate_body" not in changed.stdout.str()
