"""The replay fast paths give exactly what the slow paths they replace give.

Each speed-up is checked against its slow path as the specification, on hand-written edge cases
and on seeded random inputs: ``yamlload.load_plain`` against ``yaml.load``, the rewritten
``safeyaml._may_be_hostile`` against its previous regex definition, ``cassettes._fast_request_copy``
against the generic ``copy.deepcopy`` algorithm, and the parse cache's skip of
``check_yaml_text`` against the check itself. No timing is asserted anywhere.
"""

from __future__ import annotations

import copy
import datetime
import functools
import io
import json
import math
import random
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from vcr.request import HeadersDict, Request
from vcr.serializers import yamlserializer

from pytest_modelmigrate import cassettes, safeyaml
from pytest_modelmigrate.cassettes import AtomicPersister, ParseCache
from pytest_modelmigrate.yamlload import load_plain

REPO = Path(__file__).resolve().parent.parent
CASSETTE_LOADER: Any = yamlserializer._CassetteLoader
LOADERS: list[Any] = [CASSETTE_LOADER, yaml.SafeLoader]
if hasattr(yaml, "CSafeLoader"):
    LOADERS.append(yaml.CSafeLoader)
LOADER_IDS = [loader.__name__ for loader in LOADERS]


def _real_cassettes() -> list[Path]:
    found = [*(REPO / "tests" / "data").glob("**/*.yaml"), *(REPO / "example_project").glob("**/*.yaml")]
    return sorted(path for path in found if path.is_file())


REAL_CASSETTES = _real_cassettes()


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="surrogateescape")


# -- a type-aware comparison -------------------------------------------------------------------


def assert_same(a: Any, b: Any, where: str = "$") -> None:
    """``a`` and ``b`` are the same structure: same types all the way down (``True`` is not
    ``1``, ``1`` is not ``1.0``), floats equal by ``repr`` (``-0.0`` is not ``0.0``), NaN equal to
    NaN, mapping keys in the same order."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} {a!r} != {type(b).__name__} {b!r}"
    if isinstance(a, dict):
        keys_a, keys_b = list(a), list(b)
        assert len(keys_a) == len(keys_b), f"{where}: keys {keys_a!r} != {keys_b!r}"
        for key_a, key_b in zip(keys_a, keys_b, strict=True):
            assert_same(key_a, key_b, f"{where}.key({key_a!r})")
            assert_same(a[key_a], b[key_b], f"{where}[{key_a!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: length {len(a)} != {len(b)}"
        for index, (item_a, item_b) in enumerate(zip(a, b, strict=True)):
            assert_same(item_a, item_b, f"{where}[{index}]")
    elif isinstance(a, float):
        if math.isnan(a) or math.isnan(b):
            assert math.isnan(a) and math.isnan(b), f"{where}: {a!r} != {b!r}"
        else:
            assert repr(a) == repr(b), f"{where}: {a!r} != {b!r}"
    elif isinstance(a, io.BytesIO):
        assert a.getvalue() == b.getvalue(), f"{where}: {a.getvalue()!r} != {b.getvalue()!r}"
    elif isinstance(a, Iterator):
        assert_same(list(a), list(b), f"{where}(iterated)")
    elif a is None or isinstance(a, (str, bytes, int, bool, datetime.date, set, frozenset)):
        assert a == b, f"{where}: {a!r} != {b!r}"
    else:  # pragma: no cover - a type the loaders never build: say so instead of passing
        raise AssertionError(f"{where}: cannot compare {type(a).__name__} {a!r}")


def _outcome(load: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return ("value", load())
    except Exception as exc:  # noqa: BLE001 - the exception type is what is compared
        return ("raised", type(exc))
    except RecursionError as exc:  # pragma: no cover - RecursionError is an Exception
        return ("raised", type(exc))


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except RecursionError:
        return f"<{type(value).__name__} nested too deep to repr>"
    return text if len(text) <= 300 else text[:300] + "..."


def assert_loads_alike(text: str, loader: Any) -> Any:
    """``load_plain(text, loader)`` gives what ``yaml.load(text, Loader=loader)`` gives: the same
    value, or an exception of the same type. Returns the fast path's value (None if it raised)."""
    fast = _outcome(lambda: load_plain(text, loader))
    slow = _outcome(lambda: yaml.load(text, Loader=loader))
    detail = (
        f"text={_short(text)} loader={loader.__name__} load_plain={_short(fast)} yaml.load={_short(slow)}"
    )
    assert fast[0] == slow[0], detail
    if fast[0] == "raised":
        assert fast[1] is slow[1], detail
        return None
    assert_same(fast[1], slow[1], f"{detail}: $")
    return fast[1]


# -- 1. yamlload.load_plain == yaml.load -------------------------------------------------------

SCALARS = [
    # ints, YAML 1.1: decimal, signed, octal, hex, binary, underscores, sexagesimal
    "0",
    "7",
    "-5",
    "+3",
    "-0",
    "+0",
    "012",
    "0o17",
    "0x1F",
    "-0x1f",
    "0b101",
    "1_000",
    "1:30",
    "-1:30:00",
    "00",
    "123456789012345678901234567890",
    # floats
    "1.5",
    "-0.0",
    "0.0",
    "+0.0",
    "1.",
    ".5",
    "-.5",
    ".inf",
    "-.Inf",
    "+.INF",
    ".NaN",
    ".nan",
    "1.0e+5",
    "1.0E-5",
    "1e5",
    "6.8523015e+5",
    "685_230.15",
    "190:20:30.15",
    "1.7976931348623157e+309",
    # bools and look-alikes
    "yes",
    "No",
    "on",
    "OFF",
    "true",
    "False",
    "TRUE",
    "y",
    "n",
    "Y",
    "yEs",
    # nulls
    "~",
    "null",
    "Null",
    "NULL",
    "",
    # strings, plain and quoted
    "hello",
    "hello world",
    "'7'",
    '"7"',
    "'yes'",
    '"null"',
    '"-0.0"',
    "'0x1F'",
    '"tab\\there"',
    '"unicode \\u00e9 \\U0001F600"',
    "héllo 日本",
    "'it''s'",
    "=",
    "<<",
    # timestamps
    "2001-12-14",
    "2001-12-14t21:59:43.10-05:00",
    "2001-12-14 21:59:43.10",
    # explicit tags
    "!!str 123",
    "!!str yes",
    "!!str",
    "!!int '42'",
    "!!int '-7'",
    "!!float '3'",
    "!!float '-3.5'",
    "!!float '.inf'",
    "!!bool 'yes'",
    "!!bool 'OFF'",
    "!!null ''",
    "!!null 'anything'",
    "!!binary aGVsbG8=",
    "!!timestamp 2001-12-14",
    "!!python/tuple [1, 2]",
    "!!python/str abc",
    "!!python/unicode abc",
    "!mytag abc",
    "! 12",
]


@pytest.mark.parametrize("loader", LOADERS, ids=LOADER_IDS)
def test_scalars_load_alike(loader: Any) -> None:
    for scalar in SCALARS:
        for text in (scalar, f"key: {scalar}\n", f"- {scalar}\n- other\n", f"[{scalar}]"):
            assert_loads_alike(text, loader)


@pytest.mark.parametrize("loader", LOADERS, ids=LOADER_IDS)
def test_scalars_give_the_values_yaml_gives(loader: Any) -> None:
    """A sample of the above, with the value spelled out: the comparison itself is type-aware."""
    expected: dict[str, Any] = {
        "7": 7,
        "+3": 3,
        "012": 10,
        "0x1F": 31,
        "0b101": 5,
        "1_000": 1000,
        "1:30": 90,
        "1.5": 1.5,
        "-0.0": -0.0,
        "6.8523015e+5": 685230.15,
        "685_230.15": 685230.15,
        "190:20:30.15": 685230.15,
        "-.Inf": -math.inf,
        "yes": True,
        "OFF": False,
        "~": None,
        "": None,
        "'7'": "7",
        "2001-12-14": datetime.date(2001, 12, 14),
        "!!str 123": "123",
        "!!binary aGVsbG8=": b"hello",
    }
    for text, value in expected.items():
        assert_same(load_plain(f"v: {text}\n", loader), {"v": value}, text)
    assert_same(load_plain("1.0", loader), 1.0)
    assert load_plain("-0.0", loader) == 0.0
    assert math.copysign(1.0, load_plain("-0.0", loader)) == -1.0
    assert math.isnan(load_plain(".NaN", loader))
    assert_same(load_plain("v: 1\n", loader), {"v": 1})
    with pytest.raises(AssertionError):
        assert_same(load_plain("v: 1\n", loader), {"v": True})  # the helper tells 1 from True
    with pytest.raises(AssertionError):
        assert_same(load_plain("v: 1\n", loader), {"v": 1.0})
    with pytest.raises(AssertionError):
        assert_same(load_plain("v: 0.0\n", loader), {"v": -0.0})


def test_explicit_python_tuple_under_vcrpys_loader() -> None:
    value = assert_loads_alike("!!python/tuple [1, 2]", CASSETTE_LOADER)
    assert_same(value, (1, 2))
    value = assert_loads_alike("a: !!python/tuple [x, [1, 2]]\n", CASSETTE_LOADER)
    assert_same(value, {"a": ("x", [1, 2])})


DOCUMENTS = [
    "",
    "   \n",
    "# only a comment\n",
    "---\n",
    "--- 42\n",
    "42",
    "just a string",
    "--- |\n  literal\n",
    "a: 1\nb: [1, 2, {c: d}]\nc:\n  - x\n  - - nested\n    - deeper\n",
    "[[], {}, [[]], {a: {}}]",
    "{a: 1, b: [true, null, 2.5]}",
    "- a\n- b: 1\n  c: 2\n- - 1\n  - 2\n",
    # block scalars
    "text: |\n  line 1\n  line 2\n",
    "text: >\n  folded\n  line\n\n  para\n",
    "text: |-\n  stripped\n",
    "text: |+\n  kept\n\n",
    "text: >2\n   indented\n",
    # merge keys
    "base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n",
    "a: &a {x: 1}\nb: &b {y: 2}\nc:\n  <<: [*a, *b]\n  z: 3\n",
    "c:\n  <<: {x: 1}\n  x: 2\n",
    # anchors and aliases
    "a: &x [1, 2]\nb: *x\n",
    "a: &s scalar\nb: *s\n",
    "- &m {k: v}\n- *m\n- *m\n",
    "anchored: &only [1]\n",
    # duplicate keys: the last one wins
    "a: 1\na: 2\n",
    "{a: 1, b: 2, a: 3}",
    "1: a\n1.0: b\ntrue: c\n",
    "a: {x: 1}\na: [2]\n",
    # keys of every scalar kind
    "1: one\n-2: minus two\n1.5: float\nyes: bool\n~: null\n'q': quoted\n",
    "2001-12-14: date\n",
    "!!binary aGVsbG8=: bytes\n",
    "=: value key\n",
    # complex keys
    "? [a, b]\n: c\n",
    "? {a: 1}\n: c\n",
    "? a\n: b\n",
    "[a, b]: c\n",
    # sets, omaps, pairs
    "!!set {a, b}\n",
    "!!omap [a: 1, b: 2]\n",
    "!!pairs [a: 1, a: 2]\n",
    # explicit collection tags
    "!!map {a: 1}\n",
    "!!seq [1, 2]\n",
    "!!str {a: 1}\n",
    "!!map abc\n",
    "!!seq abc\n",
    "a: !!binary |\n  aGVsbG8g\n  d29ybGQ=\n",
    # python tags (vcrpy's loader builds some; the safe loaders refuse all)
    "!!python/object:os.system {}\n",
    "!!python/object/apply:os.system [echo hi]\n",
    "!!python/object/new:_io.BytesIO\nstate: !!python/tuple [!!binary aGk=, 0, null]\n",
    "!!python/object/apply:builtins.iter\nargs: [[1, 2]]\n",
    "!!python/name:os.system\n",
    "!!python/module:os\n",
    # directives and documents
    "%YAML 1.1\n--- a\n",
    "%TAG !e! tag:example.com,2000:\n--- !e!foo bar\n",
    "a\n---\nb\n",
    "--- a\n...\n",
]


@pytest.mark.parametrize("loader", LOADERS, ids=LOADER_IDS)
def test_documents_load_alike(loader: Any) -> None:
    for text in DOCUMENTS:
        assert_loads_alike(text, loader)


@pytest.mark.parametrize("loader", LOADERS, ids=LOADER_IDS)
def test_document_values(loader: Any) -> None:
    assert load_plain("", loader) is None
    assert load_plain("# comment\n", loader) is None
    assert_same(load_plain("42", loader), 42)
    assert_same(load_plain("a: 1\na: 2\n", loader), {"a": 2})
    assert_same(load_plain("text: |\n  l1\n  l2\n", loader), {"text": "l1\nl2\n"})
    assert_same(load_plain("text: >\n  f1\n  f2\n", loader), {"text": "f1 f2\n"})
    merged = load_plain("base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n", loader)
    assert_same(merged["derived"], {"x": 1, "y": 3})


@pytest.mark.parametrize("loader", LOADERS, ids=LOADER_IDS)
def test_aliases_share_one_object_as_yaml_load_does(loader: Any) -> None:
    text = "a: &x [1, {k: v}]\nb: *x\nc: *x\n"
    fast = load_plain(text, loader)
    slow = yaml.load(text, Loader=loader)
    assert_same(fast, slow)
    assert slow["a"] is slow["b"] is slow["c"]
    assert fast["a"] is fast["b"] is fast["c"]
    assert_same(fast, {"a": [1, {"k": "v"}], "b": [1, {"k": "v"}], "c": [1, {"k": "v"}]})


@pytest.mark.parametrize("loader", LOADERS, ids=LOADER_IDS)
def test_complex_keys_raise_alike_or_load_alike(loader: Any) -> None:
    for text in ("? [a, b]\n: c\n", "? {a: 1}\n: c\n", "{[a]: 1}"):
        fast = _outcome(functools.partial(load_plain, text, loader))
        slow = _outcome(functools.partial(yaml.load, text, Loader=loader))
        assert fast[0] == slow[0] == "raised", (text, fast, slow)
        assert fast[1] is slow[1], (text, fast, slow)


INVALID = [
    "a: [unclosed",
    "a: {unclosed",
    "a: b: c",
    "a:\n\tb: 1\n",
    "\tkey: value\n",
    "- a\nb: 1\n",
    "key: 'unterminated\n",
    'key: "unterminated\n',
    "a: *undefined_alias\n",
    "[a, b]]",
    "@reserved\n",
    "%YAML 9.9\n--- a\n",
    "a: 1\n  b: 2\n",
    "!!int abc",
    "!!int ''",
    "!!float abc",
    "!!int 1.5",
    "!!binary 'a'",
    "!!timestamp nope",
    "!unknown {a: 1}",
    "a\n---\nb\n",
]


@pytest.mark.parametrize("loader", LOADERS, ids=LOADER_IDS)
def test_invalid_yaml_raises_alike(loader: Any) -> None:
    for text in INVALID:
        fast = _outcome(functools.partial(load_plain, text, loader))
        assert fast[0] == "raised", (text, fast)
        assert_loads_alike(text, loader)


@pytest.mark.parametrize("loader", LOADERS, ids=LOADER_IDS)
def test_python_object_tags_raise_alike(loader: Any) -> None:
    for text in (
        "!!python/object:os.system {}\n",
        "a: !!python/object:os.system\n  x: 1\n",
        "- !!python/object/apply:os.system [echo hi]\n",
        "!!python/name:os.system\n",
    ):
        fast = _outcome(functools.partial(load_plain, text, loader))
        slow = _outcome(functools.partial(yaml.load, text, Loader=loader))
        assert fast[0] == slow[0] == "raised", (text, fast, slow)
        assert fast[1] is slow[1], (text, fast, slow)


UNUSUAL_EXPLICIT = [
    *(f"v: !!bool {value}\n" for value in ("maybe", "''", "1", "0", "y", "n", "'  yes'")),
    *(
        f"v: !!float {value}\n"
        for value in ("'- 1.5'", "'--1'", "'+-1'", "'-  1'", "''", "'+'", "'-'", "' 1.5'", "'1.5 '", "'١.٥'")
    ),
    *(f"v: !!int {value}\n" for value in ("''", "'+'", "' 1'", "'- 1'", "'٣'", "'0_1'", "'1__0'")),
]


@pytest.mark.parametrize("loader", LOADERS, ids=LOADER_IDS)
@pytest.mark.parametrize("text", UNUSUAL_EXPLICIT, ids=[text.strip() for text in UNUSUAL_EXPLICIT])
def test_explicit_tags_with_unusual_values_load_alike(text: str, loader: Any) -> None:
    """Explicit ``!!bool``/``!!float``/``!!int`` tags on values their implicit forms never take.

    ``yaml.load`` raises ``KeyError`` for a ``!!bool`` value other than yes/no/true/false/on/off,
    reads a sign followed by more text (``!!float '- 1.5'`` is -1.5, ``'--1'`` is 1.0) and raises
    ``IndexError`` for an empty ``!!float``."""
    assert_loads_alike(text, loader)


@pytest.mark.parametrize("loader", LOADERS, ids=LOADER_IDS)
def test_huge_ints_load_alike(loader: Any) -> None:
    """An int longer than Python's int-to-str digit limit (ValueError in both)."""
    assert_loads_alike("v: " + "1" * 5000 + "\n", loader)
    assert_loads_alike("v: " + "9" * 4300 + "\n", loader)


@pytest.mark.parametrize("loader", LOADERS, ids=LOADER_IDS)
def test_deep_nesting_loads_alike(loader: Any) -> None:
    """Nesting past what Python's recursion limit allows for a recursive builder. libyaml's
    composer and PyYAML's constructor do not recurse in Python, so ``yaml.load`` with the C
    loaders loads a document nested 1000 deep."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))  # for assert_same, which recurses
    try:
        for depth in (50, 150, 300, 1000):
            assert_loads_alike("[" * depth + "]" * depth, loader)
            assert_loads_alike("a: " + "{b: " * depth + "1" + "}" * depth + "\n", loader)
    finally:
        sys.setrecursionlimit(limit)


# -- fuzz: what vcrpy's dumper and yaml.safe_dump write ------------------------------------------

TRICKY_STRINGS = [
    "",
    " ",
    "yes",
    "No",
    "on",
    "OFF",
    "true",
    "null",
    "~",
    "0x10",
    "0o7",
    "012",
    "0b11",
    "1:20",
    "190:20:30.15",
    "1_000",
    "1.5",
    "-0.0",
    ".inf",
    ".NaN",
    "1e5",
    "2001-12-14",
    "<<",
    "=",
    "&a",
    "*a",
    "- x",
    "a: b",
    "#comment",
    "!tag",
    "%",
    "@",
    "`",
    "'",
    '"',
    "multi\nline",
    "trailing \n",
    "\ttab",
    "é",
    "日本語",
    "\u2028",
    "\x85",
    "\U0001f600",
    "\x00",
    "\ufeff",
    "[a, b]",
    "{a: 1}",
]


def _random_string(rng: random.Random) -> str:
    if rng.random() < 0.4:
        return rng.choice(TRICKY_STRINGS)
    alphabet = "abcXYZ019 -:_.,#&*![]{}'\"\n\téü日本\U0001f600"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))


def _random_scalar(rng: random.Random) -> Any:
    kind = rng.randrange(8)
    if kind == 0:
        return _random_string(rng)
    if kind == 1:
        return rng.choice([0, 1, -1, 7, 10**20, -(10**20), rng.randint(-(10**6), 10**6)])
    if kind == 2:
        return rng.choice(
            [0.0, -0.0, 1.5, -2.25, 1e300, 1e-300, math.inf, -math.inf, math.nan, rng.uniform(-1e6, 1e6)]
        )
    if kind == 3:
        return rng.choice([True, False])
    if kind == 4:
        return None
    if kind == 5:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 8)))
    if kind == 6:
        return rng.choice(TRICKY_STRINGS)
    return _random_string(rng)


def _random_value(rng: random.Random, depth: int, shared: list[Any], tuples: bool) -> Any:
    roll = rng.random()
    if shared and roll < 0.05:
        return rng.choice(shared)  # the same object twice: the dumpers write an anchor and alias
    if depth <= 0 or roll < 0.4:
        return _random_scalar(rng)
    if roll < 0.7:
        mapping: dict[Any, Any] = {}
        for _ in range(rng.randint(0, 4)):
            key = _random_string(rng) if rng.random() < 0.7 else rng.randint(-5, 100)
            mapping[key] = _random_value(rng, depth - 1, shared, tuples)
        shared.append(mapping)
        return mapping
    items = [_random_value(rng, depth - 1, shared, tuples) for _ in range(rng.randint(0, 4))]
    if tuples and rng.random() < 0.2:
        return tuple(items)
    shared.append(items)
    return items


def test_fuzz_dumped_documents_load_alike() -> None:
    rng = random.Random(20240611)
    texts: list[str] = []
    for _ in range(300):
        vcr_value = _random_value(rng, rng.randint(0, 4), [], tuples=True)
        vcr_text = str(yamlserializer.serialize(vcr_value))
        assert_loads_alike(vcr_text, CASSETTE_LOADER)
        safe_value = _random_value(rng, rng.randint(0, 4), [], tuples=False)
        safe_text = yaml.safe_dump(safe_value, allow_unicode=rng.random() < 0.5)
        for loader in LOADERS:
            assert_loads_alike(safe_text, loader)
        texts += [vcr_text, safe_text]
    # the fuzz reaches the fallbacks too: aliases, !!binary, tuples, special floats
    for marker in ("&id", "*id", "!!binary", "!!python/tuple", ".nan", "-.inf", "-0.0", "'0x10'", "'yes'"):
        assert any(marker in text for text in texts), marker


def test_fuzz_vcr_cassette_shapes_load_alike() -> None:
    """Cassette-shaped documents: interactions of requests and responses with random values."""
    rng = random.Random(7)
    for _ in range(100):
        interactions = []
        for _ in range(rng.randint(1, 3)):
            interactions.append(
                {
                    "request": {
                        "method": rng.choice(["GET", "POST"]),
                        "uri": "http://127.0.0.1:1/v1/" + _random_string(rng),
                        "body": rng.choice([None, _random_string(rng), _random_scalar(rng)]),
                        "headers": {_random_string(rng) or "h": [_random_string(rng)]},
                    },
                    "response": {
                        "status": {"code": rng.choice([200, 404, 500]), "message": _random_string(rng)},
                        "headers": {"Content-Type": ["application/json"]},
                        "body": {
                            "string": rng.choice([_random_string(rng), bytes(range(rng.randint(0, 40)))])
                        },
                    },
                }
            )
        text = str(yamlserializer.serialize({"version": 1, "interactions": interactions}))
        assert_loads_alike(text, CASSETTE_LOADER)


def test_real_cassettes_load_alike() -> None:
    assert REAL_CASSETTES, "no cassettes found under tests/data and example_project"
    for path in REAL_CASSETTES:
        assert_loads_alike(_read(path), CASSETTE_LOADER)


# -- 2. safeyaml._may_be_hostile == its previous definition --------------------------------------

MAX_DEPTH = 200
_OLD_ANCHOR_OR_ALIAS = re.compile(r"(?:^|[\s\[{,:-])[&*][^\s,\[\]{}]", re.MULTILINE)
_OLD_DEEP_INDENT = re.compile(rf"^ {{{MAX_DEPTH},}}", re.MULTILINE)
_OLD_COMPACT_NESTING = re.compile(r"(?:[-?][ \t]+){50}")


def old_may_be_hostile(text: str) -> bool:
    if _OLD_ANCHOR_OR_ALIAS.search(text):
        return True
    if text.count("[") + text.count("{") > MAX_DEPTH:
        return True
    return _OLD_DEEP_INDENT.search(text) is not None or _OLD_COMPACT_NESTING.search(text) is not None


def assert_hostile_alike(text: str) -> None:
    assert safeyaml._may_be_hostile(text) == old_may_be_hostile(text), repr(text)
    assert safeyaml._has_indicator(text) == bool(_OLD_ANCHOR_OR_ALIAS.search(text)), repr(text)


def test_the_limit_is_the_one_the_specification_uses() -> None:
    assert safeyaml.MAX_DEPTH == MAX_DEPTH


def test_fuzz_short_strings_are_hostile_alike() -> None:
    rng = random.Random(1234)
    alphabet = [*"&*-? \t\n\r:,[]{}ab", "\u00a0", "\u2003", "\x0b", "\x0c", "\x1c"]
    hostile = indicators = 0
    for _ in range(100_000):
        text = "".join(rng.choices(alphabet, k=rng.randint(0, 10)))
        old = old_may_be_hostile(text)
        assert safeyaml._may_be_hostile(text) == old, repr(text)
        indicator = bool(_OLD_ANCHOR_OR_ALIAS.search(text))
        assert safeyaml._has_indicator(text) == indicator, repr(text)
        hostile += old
        indicators += indicator
    assert 0 < indicators < 100_000  # the fuzz reaches both answers
    assert hostile >= indicators


def test_indicator_edge_cases() -> None:
    for text in (
        "&a",
        "*a",
        "&",
        "*",
        "& ",
        "&,",
        "a&b",
        "a *b",
        "a\u00a0*b",
        "a\u2003&b",
        "a\x1c*b",
        "a\x0b&b",
        "a\x0c&b",
        "\r*a",
        "\n&a",
        "[*a]",
        "{&a: 1}",
        ",*a",
        ":*a",
        "-&a",
        "?&a",
        "a:&b",
        "&&a",
        "**a",
        " &\n",
        " &\u00a0",
        " *]",
        "x" * 50 + " *",
        "x" * 50 + " *y",
        "*\u00e9",
        "&日本",
    ):
        assert_hostile_alike(text)
    assert safeyaml._has_indicator("a: &x 1")
    assert not safeyaml._has_indicator("a&b *,")


def test_compact_nesting_near_the_threshold_is_hostile_alike() -> None:
    units = ["- ", "? ", "-\t", "-  ", "- \t", "?\t ", "-\t\t"]
    endings = ["", "x", "-", "?", "- ", "-x", " ", "\t", "\n", "\n- ", "a: b"]
    prefixes = ["", "a", "a: ", "\n", "x-"]
    checked = 0
    for count in range(45, 56):
        for unit in units:
            for ending in endings:
                for prefix in prefixes:
                    assert_hostile_alike(prefix + unit * count + ending)
                    checked += 1
    rng = random.Random(99)
    for _ in range(2000):
        count = rng.randint(45, 55)
        text = "".join(rng.choice(units) for _ in range(count)) + rng.choice(endings)
        if rng.random() < 0.3:  # a break somewhere in the run
            at = rng.randrange(len(text))
            text = text[:at] + rng.choice(["x", "\n", "-", "--"]) + text[at:]
        assert_hostile_alike(text)
    assert old_may_be_hostile("- " * 50) and not old_may_be_hostile("- " * 49)
    assert safeyaml._may_be_hostile("- " * 50) and not safeyaml._may_be_hostile("- " * 49)
    assert checked > 0


def test_deep_indentation_near_the_threshold_is_hostile_alike() -> None:
    for width in (198, 199, 200, 201, 202):
        for lead in ("", "\n", "a\n", "\r", "a\r", "\r\n", "a\r\n", "\n\n", "\t", "\u00a0", "a:\n  b:\n"):
            for tail in ("", "x", "- a", "\n", "\r"):
                assert_hostile_alike(lead + " " * width + tail)
    assert safeyaml._may_be_hostile(" " * 200 + "x") and not safeyaml._may_be_hostile(" " * 199 + "x")
    assert safeyaml._may_be_hostile("a\n" + " " * 200 + "x")
    assert not safeyaml._may_be_hostile("a\r" + " " * 200 + "x")  # ^ does not match after \r alone


def test_bracket_counts_near_the_threshold_are_hostile_alike() -> None:
    for count in (199, 200, 201, 202):
        for opener_share in (0, 1, count // 2, count - 1, count):
            text = "[" * opener_share + "{" * (count - opener_share)
            assert_hostile_alike(text)
            assert_hostile_alike(text + "]" * count)
            assert_hostile_alike(" ".join(text) + "\n")
    assert safeyaml._may_be_hostile("[" * 201) and not safeyaml._may_be_hostile("[" * 200)
    assert not safeyaml._may_be_hostile("]" * 500)


def test_real_cassettes_are_hostile_alike() -> None:
    assert REAL_CASSETTES
    for path in REAL_CASSETTES:
        assert_hostile_alike(_read(path))


def test_real_cassettes_with_a_hostile_ending_are_hostile_alike() -> None:
    for path in REAL_CASSETTES[:50]:
        text = _read(path)
        for ending in ("\nx: &a 1\n", "\n" + " " * 200 + "x\n", "- " * 50, "[" * 201):
            assert_hostile_alike(text + ending)


# -- 3. cassettes._fast_request_copy == copy.deepcopy --------------------------------------------

_CACHE_ATTRS = (cassettes._CANONICAL_ATTR, cassettes._MATCH_KEY_ATTR)


@pytest.fixture
def fast_copy_installed() -> None:
    cassettes._cassette_class()
    assert Request.__dict__.get("__deepcopy__") is cassettes._fast_request_copy


def _generic_copy(request: Any) -> Any:
    """What ``copy.deepcopy`` does for an object without ``__deepcopy__``."""
    return copy._reconstruct(request, {}, *request.__reduce_ex__(4))  # type: ignore[attr-defined]


def _state(request: Any) -> dict[str, Any]:
    state = {name: value for name, value in request.__dict__.items() if name not in _CACHE_ATTRS}
    headers = state.get("_headers")
    if isinstance(headers, HeadersDict):
        state["_headers"] = ("HeadersDict", type(headers), headers.__dict__.keys(), headers._store)
    return state


def _assert_same_copy(fast: Any, reference: Any) -> None:
    assert type(fast) is type(reference)
    assert set(fast.__dict__) == set(_state(reference)), (fast.__dict__, reference.__dict__)
    fast_state, reference_state = _state(fast), _state(reference)
    assert list(fast_state) == list(reference_state)
    for name in reference_state:
        assert fast_state[name] == reference_state[name], name
        assert type(fast_state[name]) is type(reference_state[name]), name
    if not (fast._was_file or fast._was_iter):
        assert fast._to_dict() == reference._to_dict()


def _requests() -> list[Request]:
    return [
        Request(
            "POST",
            "http://127.0.0.1:1/v1/chat/completions",
            b'{"model": "m", "messages": []}',
            {"Content-Type": "application/json", "Authorization": "Bearer x"},
        ),
        Request("POST", "http://h/p", '{"a": "é"}', {"Content-Type": "application/json"}),
        Request("GET", "http://h/p", None, {}),
        Request("GET", "https://h/p", None, {"Accept": ["text/plain", "application/json"], "X": ("a", "b")}),
        Request("PUT", "http://h/upload", io.BytesIO(b"file body"), {"Content-Length": "9"}),
        Request("POST", "http://h/stream", iter([b"a", b"b"]), {}),
        Request("GET", "https://h:8443/p/é?q=1&b=ü&q=2#frag", b"", {"Ümlaut": "wert"}),
        Request("POST", "http://h/json", {"a": [1, 2]}, {"Nested": [["x", "y"]]}),
        Request("POST", "http://h/list", [1, {"b": 2}], {"N": 5}),
    ]


def test_request_copies_match_the_generic_deepcopy(fast_copy_installed: None) -> None:
    for request in _requests():
        reference = _generic_copy(request)
        fast = cassettes._fast_request_copy(request)
        _assert_same_copy(fast, reference)
        _assert_same_copy(copy.deepcopy(request), reference)
        memo: dict[int, Any] = {}
        assert cassettes._fast_request_copy(request, memo) is memo[id(request)]


def test_vcrpy_request_shape_is_kept(fast_copy_installed: None) -> None:
    by_file = Request("PUT", "http://h/upload", io.BytesIO(b"file body"), {})
    by_iter = Request("POST", "http://h/stream", iter([b"a", b"b"]), {})
    listed = Request("GET", "http://h", None, {"Accept": ["first", "second"]})
    for request in (by_file, by_iter, listed):
        fast = cassettes._fast_request_copy(request)
        _assert_same_copy(fast, _generic_copy(request))
    copied_file = cassettes._fast_request_copy(by_file)
    assert copied_file._was_file
    assert (copied_file._was_file, copied_file._was_iter) == (by_file._was_file, by_file._was_iter)
    assert copied_file.body.read() == b"file body"
    copied_iter = cassettes._fast_request_copy(by_iter)
    assert copied_iter._was_iter and not copied_iter._was_file
    assert copied_iter._body is not by_iter._body
    assert list(copied_iter.body) == [b"a", b"b"]
    assert cassettes._fast_request_copy(listed).headers["accept"] == "first"


def test_request_copies_are_independent(fast_copy_installed: None) -> None:
    for request in _requests():
        before = _state(_generic_copy(request))
        before_dict = request.__dict__.copy()
        fast = cassettes._fast_request_copy(request)
        fast.headers["X-Added"] = "1"
        for key in list(fast.headers):
            if isinstance(fast.headers[key], list):
                fast.headers[key].append("mutated")
        fast.uri = "http://changed/elsewhere?x=1"
        if isinstance(fast._body, list):
            fast._body.append(b"mutated")
        elif isinstance(fast._body, dict):
            fast._body["mutated"] = True
        fast.body = b"changed"
        fast.method = "DELETE"
        after = _state(request)
        assert after == before
        assert request.__dict__.keys() == before_dict.keys()
        assert "X-Added" not in request.headers


def test_matcher_caches_stay_with_the_original(fast_copy_installed: None) -> None:
    for request in _requests():
        if request._was_iter or request._was_file:
            continue  # the canonical body of a file/iterator body consumes nothing but is cached too
        key = cassettes._match_key(request)
        canonical = cassettes._canonical_body(request)
        assert getattr(request, cassettes._MATCH_KEY_ATTR) == key
        assert getattr(request, cassettes._CANONICAL_ATTR) == canonical
        for copied in (cassettes._fast_request_copy(request), copy.deepcopy(request)):
            for name in _CACHE_ATTRS:
                assert not hasattr(copied, name), name
                assert name not in copied.__dict__
            _assert_same_copy(copied, _generic_copy(request))
        assert getattr(request, cassettes._MATCH_KEY_ATTR) == key
        assert getattr(request, cassettes._CANONICAL_ATTR) == canonical


def test_a_request_subclass_takes_the_generic_path(fast_copy_installed: None) -> None:
    class Sub(Request):  # type: ignore[misc]
        pass

    sub = Sub("POST", "http://h/p?q=1", b'{"a": 1}', {"A": ["b", "c"]})
    cassettes._match_key(sub)
    assert hasattr(sub, cassettes._MATCH_KEY_ATTR) and hasattr(sub, cassettes._CANONICAL_ATTR)
    for copied in (cassettes._fast_request_copy(sub), copy.deepcopy(sub)):
        assert type(copied) is Sub
        _assert_same_copy(copied, _generic_copy(sub))
        for name in _CACHE_ATTRS:
            assert not hasattr(copied, name), name
        copied.headers["A"] = "other"
        assert sub.headers["A"] == "b"
    assert hasattr(sub, cassettes._MATCH_KEY_ATTR)


def test_deepcopy_goes_through_the_fast_copy(fast_copy_installed: None) -> None:
    for request in _requests():
        _assert_same_copy(copy.deepcopy(request), cassettes._fast_request_copy(request))
    request = _requests()[0]
    pair = copy.deepcopy([request, request])
    assert pair[0] is pair[1] and pair[0] is not request


def test_deepcopy_keeps_shared_references_as_the_generic_copy_does(fast_copy_installed: None) -> None:
    """``copy.deepcopy`` copies an object reachable twice once (its memo): a container that holds
    a request and that request's own headers gets a copy whose two are one object."""
    request = _requests()[0]
    for container in (
        {"request": request, "headers": request.headers},
        {"headers": request.headers, "request": request},
    ):
        del_installed = Request.__dict__["__deepcopy__"]
        try:
            del Request.__deepcopy__
            reference = copy.deepcopy(container)
        finally:
            Request.__deepcopy__ = del_installed
        fast = copy.deepcopy(container)
        assert reference["headers"] is reference["request"].headers
        assert fast["headers"] is fast["request"].headers, (
            "the fast copy gave the request a HeadersDict other than the one the memo holds"
        )


# -- 4. the parse cache skips check_yaml_text only for the text it stored ------------------------


def _cassette_text() -> str:
    return str(
        yamlserializer.serialize(
            {
                "version": 1,
                "interactions": [
                    {
                        "request": {
                            "method": "POST",
                            "uri": "http://127.0.0.1:1/v1/chat/completions",
                            "body": "{}",
                            "headers": {},
                        },
                        "response": {
                            "status": {"code": 200, "message": "OK"},
                            "headers": {"Content-Type": ["application/json"]},
                            "body": {"string": "{}"},
                        },
                    }
                ],
            }
        )
    )


@pytest.fixture
def cache_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    folder.mkdir()
    monkeypatch.setattr(AtomicPersister, "parse_cache", folder)
    monkeypatch.setattr(AtomicPersister, "scrubber", None)
    monkeypatch.setattr(AtomicPersister, "_parsed", {})
    monkeypatch.setattr(ParseCache, "MIN_CHARS", 0)
    return folder


def _spy_check(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = safeyaml.check_yaml_text  # what cassettes imported
    assert cassettes.check_yaml_text is real  # type: ignore[attr-defined]

    def recording(text: str, path: Any, **kwargs: Any) -> None:
        calls.append(text)
        real(text, path, **kwargs)

    monkeypatch.setattr(cassettes, "check_yaml_text", recording)
    return calls


def _loaded(result: Any) -> tuple[list[Any], list[Any]]:
    requests, responses, *_ = result
    return [request._to_dict() for request in requests], list(responses)


def test_a_held_text_skips_the_check_and_loads_the_same(
    tmp_path: Path, cache_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cassette.yaml"
    text = _cassette_text()
    path.write_text(text, encoding="utf-8")
    first = _loaded(AtomicPersister.load_cassette(path, yamlserializer))
    entries = list(cache_folder.glob("*.json"))
    assert len(entries) == 1
    assert first[0][0]["uri"] == "http://127.0.0.1:1/v1/chat/completions"
    assert first[1][0]["status"]["code"] == 200

    calls = _spy_check(monkeypatch)
    second = _loaded(AtomicPersister.load_cassette(path, yamlserializer))
    assert calls == []
    assert second == first
    assert_same(second[1], first[1])

    path.write_text(text + "# edited\n", encoding="utf-8")
    third = _loaded(AtomicPersister.load_cassette(path, yamlserializer))
    assert calls == [text + "# edited\n"]
    assert third == first


def test_the_check_runs_without_a_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AtomicPersister, "parse_cache", None)
    monkeypatch.setattr(AtomicPersister, "scrubber", None)
    monkeypatch.setattr(AtomicPersister, "_parsed", {})
    path = tmp_path / "cassette.yaml"
    path.write_text(_cassette_text(), encoding="utf-8")
    calls = _spy_check(monkeypatch)
    AtomicPersister.load_cassette(path, yamlserializer)
    AtomicPersister.load_cassette(path, yamlserializer)
    assert len(calls) == 2


def test_below_min_chars_the_check_always_runs(
    tmp_path: Path, cache_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _cassette_text()
    monkeypatch.setattr(ParseCache, "MIN_CHARS", len(text) + 1)
    path = tmp_path / "cassette.yaml"
    path.write_text(text, encoding="utf-8")
    calls = _spy_check(monkeypatch)
    AtomicPersister.load_cassette(path, yamlserializer)
    AtomicPersister.load_cassette(path, yamlserializer)
    assert len(calls) == 2
    assert list(cache_folder.glob("*.json")) == []


def test_a_cassette_of_min_chars_is_cached_without_patching(
    tmp_path: Path, cache_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ParseCache, "MIN_CHARS", 32 * 1024)
    text = _cassette_text()
    text += "# padding\n" * ((ParseCache.MIN_CHARS - len(text)) // 10 + 1)
    assert len(text) >= ParseCache.MIN_CHARS
    path = tmp_path / "cassette.yaml"
    path.write_text(text, encoding="utf-8")
    first = _loaded(AtomicPersister.load_cassette(path, yamlserializer))
    assert len(list(cache_folder.glob("*.json"))) == 1
    calls = _spy_check(monkeypatch)
    assert _loaded(AtomicPersister.load_cassette(path, yamlserializer)) == first
    assert calls == []


def test_holds_only_the_stored_text(tmp_path: Path, cache_folder: Path) -> None:
    path = tmp_path / "cassette.yaml"
    text = _cassette_text()
    path.write_text(text, encoding="utf-8")
    cache = ParseCache(cache_folder, path, yamlserializer)
    assert not cache.holds(text)  # nothing stored yet
    AtomicPersister.load_cassette(path, yamlserializer)
    cache = ParseCache(cache_folder, path, yamlserializer)
    assert cache.holds(text)
    assert not cache.holds(text + "# edited\n")
    assert not cache.holds(text.replace("200", "201"))
    assert not cache.holds("")
    other = ParseCache(cache_folder, tmp_path / "other.yaml", yamlserializer)
    assert not other.holds(text)  # an entry belongs to one cassette path


@pytest.mark.parametrize(
    "entry_text",
    [
        "[" * 100_000,
        "{" * 100_000,
        '{"digest": ' * 50_000,
        "not json",
        "",
        '{"digest": "x", "data": {}}',
        "[]",
    ],
    ids=["brackets", "braces", "digests", "garbage", "empty", "other-digest", "list"],
)
def test_a_broken_or_hostile_entry_is_no_entry(
    tmp_path: Path, cache_folder: Path, monkeypatch: pytest.MonkeyPatch, entry_text: str
) -> None:
    path = tmp_path / "cassette.yaml"
    text = _cassette_text()
    path.write_text(text, encoding="utf-8")
    first = _loaded(AtomicPersister.load_cassette(path, yamlserializer))
    (entry,) = cache_folder.glob("*.json")
    entry.write_text(entry_text, encoding="utf-8")
    assert not ParseCache(cache_folder, path, yamlserializer).holds(text)
    calls = _spy_check(monkeypatch)
    assert _loaded(AtomicPersister.load_cassette(path, yamlserializer)) == first
    assert calls == [text]
    stored = json.loads(entry.read_text(encoding="utf-8"))  # rewritten by the load
    assert isinstance(stored, dict) and "digest" in stored
    assert ParseCache(cache_folder, path, yamlserializer).holds(text)


def test_a_held_entry_with_edited_data_is_what_loads(tmp_path: Path, cache_folder: Path) -> None:
    """The entry, not the text, is what a hit returns: proof that the second load used the cache
    (and so that the skipped check above was a cache hit, not a re-parse)."""
    path = tmp_path / "cassette.yaml"
    text = _cassette_text()
    path.write_text(text, encoding="utf-8")
    AtomicPersister.load_cassette(path, yamlserializer)
    (entry,) = cache_folder.glob("*.json")
    stored = json.loads(entry.read_text(encoding="utf-8"))
    stored["data"]["interactions"][0]["response"]["status"]["message"] = "FROM CACHE"
    entry.write_text(json.dumps(stored), encoding="utf-8")
    _, responses = _loaded(AtomicPersister.load_cassette(path, yamlserializer))
    assert responses[0]["status"]["message"] == "FROM CACHE"


def test_a_hostile_text_is_refused_with_the_cache_on(
    tmp_path: Path, cache_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cassette.yaml"
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n'
    for level in range(1, 8):
        refs = ",".join([f"*{chr(96 + level)}"] * 10)
        bomb += f"{chr(97 + level)}: &{chr(97 + level)} [{refs}]\n"
    path.write_text(bomb, encoding="utf-8")
    calls = _spy_check(monkeypatch)
    with pytest.raises(cassettes.CassetteReadError, match="alias"):
        AtomicPersister.load_cassette(path, yamlserializer)
    assert calls == [bomb]
    assert list(cache_folder.glob("*.json")) == []


def test_an_entry_far_larger_than_its_text_is_no_entry(tmp_path: Path, cache_folder: Path) -> None:
    """An entry with the right digest but data no parse of the text could give (a padded or
    planted file) is not read: its size is bounded by what the text's JSON can be."""
    path = tmp_path / "cassette.yaml"
    text = _cassette_text()
    path.write_text(text, encoding="utf-8")
    AtomicPersister.load_cassette(path, yamlserializer)
    (entry,) = cache_folder.glob("*.json")
    stored = entry.read_text(encoding="utf-8")
    assert ParseCache(cache_folder, path, yamlserializer).holds(text)
    entry.write_text(stored + " " * (16 * len(text) + 65536), encoding="utf-8")  # still valid JSON
    assert json.loads(entry.read_text(encoding="utf-8"))["digest"] == json.loads(stored)["digest"]
    assert not ParseCache(cache_folder, path, yamlserializer).holds(text)
    entry.write_text(stored + " " * 1000, encoding="utf-8")  # within the bound: a hit
    assert ParseCache(cache_folder, path, yamlserializer).holds(text)
