"""Structural and format checks on outputs that show the ways a new model breaks a prompt."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_modelmigrate.checks import (
    ChecksConfigError,
    bullets,
    contains,
    extract_json,
    json_lenient,
    json_schema,
    json_strict,
    max_chars,
    max_lines,
    max_words,
    min_words,
    not_contains,
    numbered,
    one_of,
    regex,
)

SCHEMA = {
    "type": "object",
    "required": ["queue", "priority"],
    "properties": {
        "queue": {"enum": ["billing", "tech", "sales"]},
        "priority": {"type": "integer", "minimum": 1, "maximum": 3},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
}


def test_json_strict_passes_bare_json_and_returns_value() -> None:
    result = json_strict('  {"queue": "billing", "priority": 2}\n')
    assert result
    assert result.value == {"queue": "billing", "priority": 2}
    assert result.to_dict()["name"] == "json_strict"


def test_json_strict_fails_on_commentary_and_quotes_it() -> None:
    result = json_strict('Sure! Here is the JSON:\n{"queue": "billing"}\nLet me know if you need more.')
    assert not result
    assert "Sure! Here is the JSON:" in result.message
    assert "Let me know" in result.message
    assert result.details["wrapper"] == "prose"


def test_json_strict_fails_on_code_fence() -> None:
    result = json_strict('```json\n{"queue": "billing"}\n```')
    assert not result
    assert "code fence" in result.message


def test_json_strict_rejects_python_quoting_and_nan() -> None:
    assert not json_strict("{'queue': 'billing'}")
    assert not json_strict('{"score": NaN}')


def test_json_lenient_finds_value_in_fence_or_prose() -> None:
    fenced = json_lenient('Here you go:\n```json\n{"a": [1, 2]}\n```\nDone.')
    assert fenced
    assert fenced.value == {"a": [1, 2]}
    assert fenced.details["found_in"] == "fence"
    prose = json_lenient('The answer is {"a": 1} as requested.')
    assert prose
    assert prose.value == {"a": 1}
    assert prose.details["found_in"] == "prose"
    assert not json_lenient("no json here, sorry")


def test_json_lenient_skips_broken_braces_before_the_value() -> None:
    result = json_lenient('Use {braces} like this: {"ok": true}')
    assert result.value == {"ok": True}


def test_json_schema_lists_every_error_with_path() -> None:
    result = json_schema('{"queue": "refunds", "priority": "high", "tags": [1], "extra": 1}', SCHEMA)
    assert not result
    paths = {e["path"] for e in result.details["errors"]}
    assert {"$.queue", "$.priority", "$.tags[0]", "$"} <= paths
    assert "4 schema error(s)" in result.message
    json.dumps(result.to_dict())


def test_json_schema_accepts_parsed_value_and_lenient_mode() -> None:
    assert json_schema({"queue": "tech", "priority": 1}, SCHEMA)
    strict = json_schema('```json\n{"queue": "tech", "priority": 1}\n```', SCHEMA)
    assert not strict
    assert "cannot validate" in strict.message
    assert json_schema('```json\n{"queue": "tech", "priority": 1}\n```', SCHEMA, lenient=True)


def test_json_schema_invalid_schema_is_a_config_error() -> None:
    with pytest.raises(ChecksConfigError, match=r"^json_schema: invalid schema"):
        json_schema('{"a": 1}', {"type": "objekt"})
    with pytest.raises(ChecksConfigError, match="no schema"):
        json_schema('{"a": 1}')


def test_json_schema_with_pydantic_model() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Ticket(pydantic.BaseModel):
        queue: str
        priority: int

    ok = json_schema('{"queue": "tech", "priority": 2}', Ticket)
    assert ok
    assert isinstance(ok.value, Ticket)
    assert ok.details["validator"] == "pydantic:Ticket"
    bad = json_schema('{"queue": "tech", "priority": "urgent"}', Ticket)
    assert not bad
    assert bad.details["errors"][0]["path"] == "$.priority"


FOUR_BULLETS = "Reasons:\n- price\n- speed\n  - nested detail\n- support\n- docs\n"


def test_bullets_counts_top_level_and_reports_four_vs_three() -> None:
    result = bullets(FOUR_BULLETS, 3)
    assert not result
    assert result.message == "expected exactly 3 bullet points, found 4"
    assert bullets(FOUR_BULLETS, 5, nested=True)
    assert bullets("* a\n* b\n* c", at_least=2, at_most=3)


def test_bullets_ignore_code_fences() -> None:
    text = "- one\n- two\n```\n- not a bullet\n```\n- three"
    assert bullets(text, 3)


def test_numbered_items() -> None:
    text = "1. first\n2) second\n3. third\nSome closing line."
    assert numbered(text, 3)
    assert not numbered(text, at_most=2)
    with pytest.raises(ChecksConfigError, match="numbered: give exactly="):
        numbered(text)


def test_limits() -> None:
    text = "one two three four five\nsix\n\nseven"
    assert max_words(text, 7)
    assert not max_words(text, 6)
    assert min_words(text, 7)
    assert not min_words(text, 8)
    assert max_lines(text, 3)
    assert not max_lines(text, 2)
    assert not max_lines(text, 3, skip_blank=False)
    assert max_chars("abc", 3)
    assert not max_chars("abcd", 3)
    with pytest.raises(ChecksConfigError, match="max_words"):
        max_words(text)


def test_regex_contains_not_contains() -> None:
    text = "Your ticket ID is TCK-1234. Thanks!"
    assert regex(text, r"TCK-\d{4}")
    assert not regex(text, r"TCK-\d{4}", full=True)
    with pytest.raises(ChecksConfigError, match="regex: invalid pattern"):
        regex(text, "(")
    assert contains(text, ["ticket", "TCK"])
    missing = contains(text, ["ticket", "refund"])
    assert not missing
    assert missing.details["missing"] == ["refund"]
    found = not_contains(text, ["THANKS", "sorry"])
    assert not found
    assert "THANKS" in found.message
    assert "Thanks!" in found.message


def test_one_of_flags_shifted_label() -> None:
    labels = ["billing", "tech", "sales"]
    assert one_of(" billing\n", labels)
    shifted = one_of("Billing.", labels)
    assert not shifted
    assert shifted.details["nearest"] == "billing"
    assert "nearest label 'billing'" in shifted.message
    assert one_of("Tech", labels, case_sensitive=False)
    with pytest.raises(ChecksConfigError, match="one_of"):
        one_of("billing", "billing")


def test_name_override_keeps_the_kind() -> None:
    result = contains("abc", "z", name="mentions_z")
    d = result.to_dict()
    assert d["name"] == "mentions_z"
    assert d["details"]["check"] == "contains"
    assert set(d) == {"name", "passed", "message", "details", "score"}
    assert "mentions_z FAILED" in repr(result)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


@given(
    value=json_values, before=st.sampled_from(["", "Here:\n", "Sure! "]), after=st.sampled_from(["", "\nok"])
)
def test_lenient_recovers_any_container_value(value: object, before: str, after: str) -> None:
    wrapped = {"v": value}
    text = before + json.dumps(wrapped) + after
    found = extract_json(text)
    assert found is not None
    assert found[0] == wrapped
    assert bool(json_strict(text)) == (before == "" and after == "")
