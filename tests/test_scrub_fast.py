"""Scrubbing a run costs a search of its JSON text, in pieces, when nothing can be removed, and finds all the walk finds."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_modelmigrate import scrub
from pytest_modelmigrate.jsontext import node_count
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


def _large_run(leak: str | None, where: str) -> dict[str, object]:
    """A run whose bulk sits two levels down (a candidate's verdicts, as in a real gate), more
    nodes than one search covers; ``leak`` in a deep key, a deep value or a top-level key."""
    verdicts: dict[str, object] = {
        f"t.py::test_{i:04d}": {"verdict": "migrate", "interval": [0.8, 1.0], "note": "fine"}
        for i in range(2000)
    }
    run: dict[str, object] = {
        "gate": {"mode": "strict", "verdicts": {"gpt-5": verdicts}},
        "matrix": {"rows": []},
    }
    if leak is not None:
        if where == "deep key":
            verdicts[f"t.py::test_x[said {leak}]"] = {"verdict": "investigate"}
        elif where == "deep value":
            verdicts["t.py::test_1999"] = {"verdict": "investigate", "note": f"it said {leak}"}
        else:
            run[f"said {leak}"] = 1
    return run


@pytest.mark.parametrize("where", ["deep key", "deep value", "top key"])
@pytest.mark.parametrize(
    "secret_env",
    [{}, {"OPENAI_API_KEY": "s3cr3t-value-0123456789"}],
    ids=["no-keys", "known-key"],
)
def test_a_large_run_is_searched_in_pieces_and_nothing_is_missed(
    secret_env: dict[str, str], where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scrub, "_WHOLE_TEXT", 300)  # pieces of 300 nodes: a twentieth of this run
    scrubber = Scrubber.from_settings(environ=secret_env)
    clean = _large_run(None, where)
    assert more_nodes_than(clean, 20 * scrub._WHOLE_TEXT)
    whole = len(scrub.json.dumps(clean, ensure_ascii=False, separators=(",", ":")))
    longest = 0
    dumps = scrub.json.dumps

    def measured(value: object, **kwargs: object) -> str:
        nonlocal longest
        text: str = dumps(value, **kwargs)  # type: ignore[arg-type]
        longest = max(longest, len(text))
        return text

    monkeypatch.setattr(scrub.json, "dumps", measured)
    assert scrubber.scrub_data(clean) is clean  # nothing removed: the very same object
    assert 0 < longest < whole // 10  # never the whole run as one text
    for leak in [KEY, *secret_env.values()]:
        dirty = _large_run(leak, where)
        fast = scrubber.scrub_data(dirty)
        assert fast == scrubber._scrub_data(dirty)
        assert leak not in repr(fast)
        assert REDACTED in repr(fast)


def more_nodes_than(value: object, limit: int) -> bool:
    return node_count(value, limit) > limit


def test_counting_nodes_stops_at_the_limit() -> None:
    assert not more_nodes_than("text", 1) and more_nodes_than([], 0)
    assert more_nodes_than([1] * 10, 10) and not more_nodes_than([1] * 9, 10)
    assert more_nodes_than({"a": [1, 2]}, 4) and not more_nodes_than({"a": [1, 2]}, 5)
    assert more_nodes_than(
        (
            [
                (),
            ],
        )
        * 3,
        6,
    ) and not more_nodes_than(
        (
            [
                (),
            ],
        )
        * 3,
        7,
    )
    loop: list[object] = []
    loop.append(loop)  # endless: only a count that stops at the limit returns
    assert more_nodes_than(loop, 1_000)


_SECRET = "s3cr3t-value-0123456789"
_LEAKS = st.sampled_from([KEY, _SECRET, f"said {KEY}", "org-" + "A1b2" * 6, "plain", "é\u2028", ""])
_JSON_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _LEAKS,
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.tuples(inner, inner)
        | st.dictionaries(st.one_of(_LEAKS, st.integers(), st.none()), inner, max_size=6)
    ),
    max_leaves=60,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_JSON_LIKE, whole=st.integers(min_value=0, max_value=12), known=st.booleans())
def test_searching_in_pieces_finds_what_the_walk_finds(
    value: object, whole: int, known: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any JSON-like value, searched in pieces of any size: the result is what the walk gives,
    and the very same object whenever the walk removes nothing."""
    monkeypatch.setattr(scrub, "_WHOLE_TEXT", whole)
    scrubber = Scrubber.from_settings(environ={"OPENAI_API_KEY": _SECRET} if known else {})
    walked = scrubber._scrub_data(value)
    fast = scrubber.scrub_data(value)
    assert _as_lists(fast) == walked  # the walk makes tuples lists; a clean value is left as it is
    if walked is value and isinstance(value, (dict, list)) and not _holds_tuple(value):
        assert fast is value


def _as_lists(value: object) -> object:
    if isinstance(value, (list, tuple)):
        return [_as_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_lists(v) for k, v in value.items()}
    return value


def _holds_tuple(value: object) -> bool:
    if isinstance(value, tuple):
        return True
    if isinstance(value, dict):
        return any(_holds_tuple(k) or _holds_tuple(v) for k, v in value.items())
    return isinstance(value, list) and any(_holds_tuple(v) for v in value)
