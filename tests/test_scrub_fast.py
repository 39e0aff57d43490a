"""Scrubbing a run costs one search of its JSON text when nothing can be removed, and finds all the walk finds."""

from __future__ import annotations

import re

import pytest

from pytest_modelmigrate import scrub
from pytest_modelmigrate.scrub import REDACTED, Scrubber

KEY = "sk-proj-" + "Zq8" * 12


def _run(message: str) -> dict[str, object]:
    return {
        "outcomes": [
            {"nodeid": f"t.py::test_{i}[m]", "checks": [{"message": "fine"}], "samples": ["passed"]}
            for i in range(50)
        ]
        + [{"nodeid": "t.py::test_x[m]", "checks": [{"message": message}], "extra": ["a", message]}],
        message: "as a key",
    }


@pytest.mark.parametrize(
    "secret_env",
    [
        {},
        {"OPENAI_API_KEY": "s3cr3t-value-0123456789"},
        {"OPENAI_API_KEY": 'with"quote\\and-backslash-123456'},
    ],
    ids=["no-keys", "known-key", "key-json-escapes"],
)
def test_the_fast_path_finds_what_the_walk_finds(secret_env: dict[str, str]) -> None:
    scrubber = Scrubber.from_settings(environ=secret_env)
    clean = _run("nothing to see")
    if scrubber._json_searchable:  # the walk turns tuples into lists; the search leaves them
        assert scrubber.scrub_data(clean) is clean  # nothing removed: the very same object
    assert scrubber.scrub_data(clean) == scrubber._scrub_data(clean)
    for leak in [KEY, "org-" + "A1b2" * 6, *secret_env.values()]:
        dirty = _run(f"it said {leak} twice: {leak}")
        fast, walked = scrubber.scrub_data(dirty), scrubber._scrub_data(dirty)
        assert fast == walked
        assert leak not in repr(fast)
        assert REDACTED in repr(fast)


def test_every_shown_pattern_starts_with_a_listed_prefix() -> None:
    """The cheap test before the search must not skip a string the search would match."""
    for pattern in (*scrub.LIVE_KEY_PATTERNS, *scrub.ACCOUNT_ID_PATTERNS):
        source = re.sub(r"^\(\?<!\[[^\]]*\]\)", "", pattern.pattern)  # drop the lookbehind
        literal = re.match(r"[A-Za-z_ -]+", source)
        assert literal is not None, pattern.pattern
        assert any(literal.group(0).startswith(prefix) for prefix in scrub._SHOWN_PREFIXES), pattern.pattern
