"""Loading a plain YAML document (what vcrpy writes) in half the time ``yaml.load`` takes.

PyYAML's constructor is generic: every node goes through a dispatch on its tag, a generator per
mapping and a resolver look-up per scalar. A cassette is mappings, sequences, strings, numbers,
booleans and nulls only. :func:`load_plain` composes the document with the given loader (libyaml
when PyYAML has it, so the tags are resolved exactly as ``yaml.load`` resolves them) and builds
those nodes directly. At the first node it does not know (a merge key, a timestamp, ``!!binary``,
a Python tag, an octal or sexagesimal number, an alias) it loads the whole text with ``yaml.load``
instead: the result is always the one ``yaml.load(text, Loader=loader)`` gives.

Pure module: PyYAML only. Call it on a text that passed ``safeyaml.check_yaml_text``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_plain"]

_PREFIX = "tag:yaml.org,2002:"
_STR, _MAP, _SEQ = _PREFIX + "str", _PREFIX + "map", _PREFIX + "seq"
_INT, _FLOAT, _BOOL, _NULL = _PREFIX + "int", _PREFIX + "float", _PREFIX + "bool", _PREFIX + "null"
_PLAIN_TAGS = (_STR, _MAP, _SEQ, _INT, _FLOAT, _BOOL, _NULL)
_BOOLS = {"yes": True, "no": False, "true": True, "false": False, "on": True, "off": False}


class _Unusual(Exception):
    """A node only PyYAML's constructor knows how to build."""


def _int(value: str) -> int:
    digits = value[1:] if value[:1] in "+-" else value
    if not (digits.isascii() and digits.isdigit()) or (digits[0] == "0" and digits != "0"):
        raise _Unusual  # 0x, 0b, octal 0..., 1_000, 1:30 (YAML 1.1), or not a number at all
    return int(value)


def _float(value: str) -> float:
    """SafeConstructor.construct_yaml_float, but for .inf, .nan and 1:30.5 (sexagesimal)."""
    text = value.replace("_", "").lower()
    sign = -1 if text[:1] == "-" else 1
    if text[:1] in "+-":
        text = text[1:]
    if not text or ":" in text or text in (".inf", ".nan"):
        raise _Unusual
    try:
        return sign * float(text)
    except ValueError:
        raise _Unusual from None


def _build(node: Any, seen: set[int], kinds: tuple[type, type, type]) -> Any:
    """The value of ``node``; ``kinds``: PyYAML's scalar, mapping and sequence node classes."""
    ScalarNode, MappingNode, SequenceNode = kinds
    if id(node) in seen:
        raise _Unusual  # an alias: shared objects, as PyYAML builds them
    seen.add(id(node))
    tag, kind = node.tag, type(node)
    if kind is ScalarNode:
        value: str = node.value
        if tag == _STR:
            return value
        if tag == _INT:
            return _int(value)
        if tag == _FLOAT:
            return _float(value)
        if tag == _BOOL:
            flag = _BOOLS.get(value.lower())
            if flag is None:
                raise _Unusual  # !!bool maybe: PyYAML's error, not a guess
            return flag
        if tag == _NULL:
            return None
        raise _Unusual
    if kind is MappingNode and tag == _MAP:
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if type(key_node) is not ScalarNode:
                raise _Unusual  # a mapping or sequence as a key (PyYAML refuses it as unhashable)
            key = _build(key_node, seen, kinds)
            mapping[key] = _build(value_node, seen, kinds)
        return mapping
    if kind is SequenceNode and tag == _SEQ:
        return [_build(item, seen, kinds) for item in node.value]
    raise _Unusual


def _builds_plain(loader: Any) -> bool:
    """Whether ``loader`` builds the plain tags as PyYAML's SafeConstructor does."""
    from yaml.constructor import SafeConstructor

    theirs, ours = loader.yaml_constructors, SafeConstructor.yaml_constructors
    return all(theirs.get(tag) is ours.get(tag) for tag in _PLAIN_TAGS)


def load_plain(text: str, loader: Any) -> Any:
    """``yaml.load(text, Loader=loader)``, faster for a plain document (see the module)."""
    import yaml

    if not _builds_plain(loader):  # a loader with constructors of its own for str, int, ...
        return yaml.load(text, Loader=loader)  # the caller's loader (vcrpy's safe one)
    composer = loader(text)
    try:
        node = composer.get_single_node()
    finally:
        composer.dispose()
    if node is None:
        return None
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    try:
        return _build(node, set(), (ScalarNode, MappingNode, SequenceNode))
    except (_Unusual, RecursionError):  # RecursionError: deeper than check_yaml_text lets through
        return yaml.load(text, Loader=loader)  # the caller's loader (vcrpy's safe one)
