"""Similarity, drift, the judge and the prompt client, against the emulator with the real SDKs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import openai
import pytest

from pytest_modelmigrate.checks import (
    ChecksConfigError,
    CheckUnavailable,
    Judge,
    LexicalScorer,
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
    diff_summary,
    drift,
    json_strict,
    judge,
    parse_verdict,
    similar,
)
from pytest_modelmigrate.emulator import Emulator
from pytest_modelmigrate.prompting import PromptClient, resolve_provider

if TYPE_CHECKING:
    from collections.abc import Iterator

SCRIPT: dict[str, Any] = {
    "models": {
        "judge-ok": {"default": {"reply": '{"pass": true, "score": 0.9, "reason": "on topic"}'}},
        "judge-fenced": {
            "default": {"reply": 'Verdict:\n```json\n{"pass": false, "score": 0.2, "reason": "off"}\n```'}
        },
        "judge-garbled": {"default": {"reply": "I think it is fine overall."}},
        "emu-json": {"default": {"json": {"queue": "billing"}}},
        "claude-emu": {"default": {"reply": "Hello from Claude"}},
    }
}


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(SCRIPT, time_scale=0.0) as emulator:
        yield emulator


def client_for(emu: Emulator, model: str) -> PromptClient:
    provider = resolve_provider(model)
    base = emu.url + "/v1" if provider == "openai" else emu.url
    return PromptClient(model, base_url=base, api_key="x", max_retries=0)


def test_lexical_similarity_is_labelled_lexical() -> None:
    result = similar("The customer wants a refund for order 42", "Customer wants a refund", min_score=0.5)
    assert result
    assert result.details["kind"] == "lexical"
    assert result.details["scorer"] == "lexical"
    assert "not an embedding" in result.message
    far = similar("The weather is nice", "Customer wants a refund", min_score=0.5)
    assert not far
    assert far.score is not None
    assert far.score < 0.5


def test_similar_missing_reference_is_config_error() -> None:
    with pytest.raises(ChecksConfigError, match="similar: missing reference"):
        similar("text", None)


def test_lexical_scorer_is_deterministic_and_bounded() -> None:
    vectors = LexicalScorer().embed(["a b c", "a b c", ""])
    assert vectors[0] == vectors[1]
    assert similar("same words", "same words").score == pytest.approx(1.0)


def test_openai_embedder_through_the_sdk(emu: Emulator) -> None:
    embedder = OpenAIEmbedder(
        "text-embedding-3-small", client=openai.OpenAI(base_url=emu.url + "/v1", api_key="x", max_retries=0)
    )
    result = similar("refund please", "refund please", min_score=0.99, scorer=embedder)
    assert result
    assert result.details == {
        "scorer": "openai:text-embedding-3-small",
        "kind": "embedding",
        "reference": "refund please",
        "min_score": 0.99,
    }
    again = similar(
        "refund please", "a totally unrelated sentence about boats", scorer=embedder, min_score=0.0
    )
    assert again.score is not None
    assert again.score < 1.0


def test_sentence_transformers_missing_is_clear() -> None:
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        with pytest.raises(CheckUnavailable, match="sentence-transformers"):
            similar("a", "b", scorer=SentenceTransformerEmbedder())
    else:  # pragma: no cover - only where the extra is installed
        pytest.skip("sentence-transformers is installed")


def test_drift_reports_and_fails_only_below_threshold() -> None:
    old = "- price\n- speed\n- support"
    new = "- price\n- speed\n- support\n- documentation"
    reported = drift(new, old)
    assert reported
    assert reported.score is not None
    assert reported.score < 1.0
    assert "lines 3→4" in reported.message
    assert "+'- documentation'" in reported.message
    assert not drift(new, lambda: old, min_score=0.99)
    assert drift(new, lambda: None)
    missing = drift(new, None, min_score=0.5)
    assert not missing
    assert "no incumbent output" in missing.message


def test_diff_summary_counts() -> None:
    d = diff_summary("a b c", "a x c d")
    assert d["inserted"] == 2
    assert d["deleted"] == 1


def test_parse_verdict_variants() -> None:
    assert parse_verdict('{"pass": true, "score": 1, "reason": "ok"}').passed is True
    assert parse_verdict('{"score": 0.3}').score == 0.3
    assert parse_verdict("nothing").error is not None
    assert "outside [0, 1]" in (parse_verdict('{"pass": true, "score": 7}').error or "")


def test_judge_through_the_emulator(emu: Emulator) -> None:
    j = Judge("judge-ok", client=client_for(emu, "judge-ok"))
    result = judge("Customer wants a refund", "Summarises the request", judge=j, min_score=0.8)
    assert result
    assert result.score == 0.9
    assert result.details["judge_model"] == "judge-ok"
    assert not judge("x", "rubric", judge=j, min_score=0.95)


def test_judge_fenced_and_unparseable_replies(emu: Emulator) -> None:
    fenced = judge("x", "rubric", judge=Judge("judge-fenced", client=client_for(emu, "judge-fenced")))
    assert not fenced
    assert fenced.details["reason"] == "off"
    garbled = judge("x", "rubric", judge=Judge("judge-garbled", client=client_for(emu, "judge-garbled")))
    assert not garbled
    assert "unreadable verdict" in garbled.message
    assert "fine overall" in garbled.message


def test_judge_not_configured() -> None:
    with pytest.raises(ChecksConfigError, match="judge: no judge configured"):
        judge("x", "rubric")
    with pytest.raises(ChecksConfigError, match="judge: no judge model"):
        Judge("")


def test_prompt_client_openai_json(emu: Emulator) -> None:
    response = client_for(emu, "emu-json").ask("Route this ticket", system="You route tickets", json=True)
    assert response.json == {"queue": "billing"}
    assert response.call.provider == "openai"
    assert response.call.model_requested == "emu-json"
    assert response.call.request_json["response_format"] == {"type": "json_object"}
    assert json_strict(response)


def test_prompt_client_anthropic(emu: Emulator) -> None:
    client = client_for(emu, "claude-emu")
    assert client.provider == "anthropic"
    response = client.ask([{"role": "user", "content": "hi"}], system="Be brief", max_tokens=50)
    assert response.text == "Hello from Claude"
    assert response.call.request_json["system"] == "Be brief"
    assert response.usage.output_tokens is not None


def test_provider_mapping() -> None:
    assert resolve_provider("claude-3-5-sonnet-latest") == "anthropic"
    assert resolve_provider("gpt-5") == "openai"
    assert resolve_provider("llama3", [("llama*", "openai")]) == "openai"
    with pytest.raises(ChecksConfigError, match="no provider pattern"):
        resolve_provider("x", [("gpt*", "openai")])


def test_prompt_client_base_url_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    assert PromptClient("claude-x").base_url == "http://127.0.0.1:9"
