"""The soft-check collector: every check runs, failures are listed at the end."""

from __future__ import annotations

import json

import pytest

from pytest_modelmigrate.checks import CheckCollector, ChecksConfigError, LexicalScorer
from pytest_modelmigrate.providers.base import Call


def make_call(text: str, **kw: object) -> Call:
    return Call(
        provider="openai",
        endpoint="chat.completions",
        method="POST",
        url="",
        status=200,
        streaming=False,
        text=text,
        **kw,
    )  # type: ignore[arg-type]


def test_records_every_check_and_summarises_failures() -> None:
    call = make_call(
        'Here:\n{"queue": "refunds"}',
        finish_reason="length",
        model_requested="gpt-4o",
        model_echoed="gpt-4o-mini-2024-07-18",
    )
    checks = CheckCollector(
        test_id="tests/test_triage.py::test_refund[gpt-4o]", model="gpt-4o", last_call=lambda: call
    )
    assert not checks.json_strict()
    parsed = checks.json_lenient()
    assert parsed.value == {"queue": "refunds"}
    checks.one_of(parsed.value["queue"], ["billing", "tech"])
    checks.finish_reason()
    checks.model_echo()
    checks.no_refusal()
    checks.contains(needles="queue", name="mentions_queue")
    assert len(checks) == 7
    assert [r.name for r in checks.failures()] == ["json_strict", "one_of", "finish_reason", "model_echo"]
    message = checks.summary_message()
    assert message.splitlines()[0] == (
        "4 of 7 checks failed for tests/test_triage.py::test_refund[gpt-4o] (model gpt-4o):"
    )
    assert "  - finish_reason: truncated by the token limit" in message
    dicts = checks.to_dicts()
    json.dumps(dicts)
    assert dicts[-1]["name"] == "mentions_queue"


def test_all_passed_gives_empty_summary() -> None:
    checks = CheckCollector(test_id="t", model="m")
    checks.bullets("- a\n- b", 2)
    assert checks.passed
    assert checks.summary_message() == ""


def test_no_output_and_no_recorded_call_names_test_and_check() -> None:
    checks = CheckCollector(test_id="tests/test_x.py::test_a[gpt-4o]", model="gpt-4o", last_call=lambda: None)
    with pytest.raises(
        ChecksConfigError, match=r"^tests/test_x.py::test_a\[gpt-4o\] \[gpt-4o\]: bullets: no output"
    ):
        checks.bullets(exactly=3)


def test_config_errors_propagate_with_test_id() -> None:
    checks = CheckCollector(test_id="t1", model="m")
    with pytest.raises(ChecksConfigError, match=r"^t1 \[m\]: json_schema: invalid schema"):
        checks.json_schema('{"a": 1}', {"type": 12})
    with pytest.raises(ChecksConfigError, match="judge: no judge configured"):
        checks.judge("text", "rubric")
    with pytest.raises(ChecksConfigError, match="scorer='embedding' but no embedder"):
        checks.similar("a", "a", scorer="embedding")
    assert checks.results == []


def test_model_echo_defaults_to_collector_model() -> None:
    checks = CheckCollector(
        test_id="t", model="gpt-4o", last_call=lambda: make_call("x", model_echoed="gpt-4o-2024-08-06")
    )
    assert checks.model_echo()


def test_drift_uses_incumbent_callable_and_configured_embedder() -> None:
    checks = CheckCollector(
        test_id="t", model="new", incumbent_output=lambda: "alpha beta gamma", embedder=LexicalScorer()
    )
    result = checks.drift("alpha beta delta")
    assert result
    assert result.details["available"] is True
    assert result.details["kind"] == "lexical"
    assert not checks.drift("zzz", min_score=0.9)
    assert checks.similar("alpha", "alpha", scorer="lexical")


def test_custom_result_can_be_added() -> None:
    from pytest_modelmigrate.checks import CheckResult

    checks = CheckCollector(test_id="t", model="m")
    checks.add(CheckResult("custom", False, "my own check"))
    assert "custom: my own check" in checks.summary_message()
