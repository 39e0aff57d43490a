"""The judge, embedding similarity, drift and the `prompt` fixture: their calls land in the test's cassette."""

from __future__ import annotations

import json

import pytest
import yaml

from pytest_modelmigrate.emulator import Emulator

SCRIPT = {
    "models": {
        "emu-judge": {"default": {"reply": '{"pass": true, "score": 0.9, "reason": "polite and on topic"}'}},
        "emu-old": {
            "rules": [{"match": "(?i)refund", "reply": "We will refund your order within five days."}]
        },
        "emu-new": {"rules": [{"match": "(?i)refund", "reply": "Refunds are not possible. Goodbye."}]},
    }
}

TESTS = """
import os
import pytest

@pytest.mark.prompt("reply")
def test_reply(model, prompt, checks):
    answer = prompt.ask("Write a reply to a customer who wants a refund")
    checks.judge(answer.text, "The reply is polite and answers the refund request", min_score=0.5)
    checks.similar(answer.text, "We will refund your order", min_score=0.3, scorer="embedding")
    checks.drift(answer.text, min_score=0.5)
"""


@pytest.fixture
def recorded(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    from conftest import free_port

    emulator = Emulator(SCRIPT, port=free_port(), time_scale=0)
    emulator.start()
    monkeypatch.setenv("OPENAI_BASE_URL", emulator.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "emulated")
    pytester.makeini(
        "[pytest]\n"
        "modelmigrate_models = emu-old, emu-new\n"
        "modelmigrate_judge_model = emu-judge\n"
        "modelmigrate_embedder = openai:emu-embed\n"
    )
    pytester.makepyfile(test_semantic=TESTS)
    result = pytester.runpytest("--record-mode=once")
    result.assert_outcomes(passed=1, failed=1)
    emulator.stop()
    return pytester


def test_judge_and_embedding_calls_are_recorded_in_the_tests_cassette_and_replay(
    recorded: pytest.Pytester,
) -> None:
    cassette = recorded.path / "cassettes" / "test_semantic" / "emu-new" / "test_reply.yaml"
    interactions = yaml.safe_load(cassette.read_text())["interactions"]
    paths = [i["request"]["uri"].rsplit("/v1", 1)[1] for i in interactions]
    # the answer, the judge, then the embeddings of similar() and drift()
    assert paths == ["/chat/completions", "/chat/completions", "/embeddings", "/embeddings"]
    bodies = [json.loads(i["request"]["body"]) for i in interactions]
    assert bodies[1]["model"] == "emu-judge"  # pinned, not parametrized over --models

    result = recorded.runpytest("--migration-json=run.json", "--block-network")
    result.assert_outcomes(passed=1, failed=1)
    run = json.loads((recorded.path / "run.json").read_text())
    checks = {o["model"]: {c["name"]: c for c in o["checks"]} for o in run["outcomes"]}
    assert checks["emu-old"]["judge"]["passed"] and checks["emu-old"]["judge"]["score"] == 0.9
    assert checks["emu-old"]["similar"]["details"]["kind"] == "embedding"
    # the incumbent compared with itself does not drift; the candidate drifted far from it
    assert checks["emu-old"]["drift"]["score"] == pytest.approx(1.0)
    assert not checks["emu-new"]["drift"]["passed"]
    assert checks["emu-new"]["drift"]["score"] < 0.5
