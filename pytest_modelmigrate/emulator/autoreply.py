"""The answers given when the script says nothing: a sentence naming the model, valid JSON when
JSON is asked for (an instance of the requested JSON schema), a tool call when one is forced, a
verdict for the plugin's LLM judge. Schema instances are bounded (:data:`MAX_INSTANCE_BYTES`,
:data:`MAX_DEPTH`); a schema with no instance within the bounds is a 400 naming the parameter."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from .exchange import RequestError

if TYPE_CHECKING:
    from .exchange import Request, ToolDef

__all__ = [
    "MAX_DEPTH",
    "MAX_INSTANCE_BYTES",
    "SchemaTooLarge",
    "as_schema_text",
    "auto_text",
    "auto_tool_call",
    "forced_tool_call",
    "judge_verdict",
    "schema_instance",
    "sentence",
    "thinking_sentence",
]

_SNIPPET = 60

# Bounds on what the automatic reply builds from a request's JSON schema.
MAX_INSTANCE_BYTES = 64 * 1024
MAX_DEPTH = 32


class SchemaTooLarge(ValueError):
    """A request's JSON schema has no instance within the emulator's bounds; the message says where."""


def _quote(call: Request) -> str:
    quoted = " ".join((call.last_user or call.prompt).split())
    if len(quoted) > _SNIPPET:
        quoted = quoted[:_SNIPPET].rstrip() + "…"
    return quoted


def sentence(call: Request) -> str:
    return f'Emulated reply from {call.model} to "{_quote(call)}".'


def thinking_sentence(call: Request) -> str:
    """The reasoning text of a model whose script gives none."""
    return f'Emulated reasoning of {call.model}: the user asks "{_quote(call)}"; a short answer will do.'


_FORMAT_PARAMS = {"chat": "response_format", "responses": "text.format", "messages": "output_config.format"}
_TOOL_PARAMS = {"chat": "tools[{}].function.parameters", "responses": "tools[{}].parameters"}


def _bounded(schema: object, param: str) -> Any:
    """:func:`schema_instance`, or a 400 (``RequestError``) naming ``param`` when it is too large."""
    try:
        return schema_instance(schema)
    except SchemaTooLarge as exc:
        raise RequestError(
            f"Invalid schema for {param}: {exc}; the emulator's automatic reply builds at most "
            f"{MAX_INSTANCE_BYTES} bytes of JSON, {MAX_DEPTH} levels deep",
            param=param,
        ) from None


def _format_instance(call: Request, schema: object) -> Any:
    return _bounded(schema, _FORMAT_PARAMS.get(call.api, "schema"))


def _tool_instance(call: Request, tool: ToolDef) -> Any:
    index = call.tools.index(tool)
    return _bounded(tool.parameters, _TOOL_PARAMS.get(call.api, "tools[{}].input_schema").format(index))


# The user message of pytest_modelmigrate.checks.judge: the rubric, then the output, in these tags.
_JUDGE_PROMPT = re.compile(r"^\s*<rubric>\n.*\n</rubric>\n\n<output>\n.*\n</output>\s*$", re.DOTALL)


def judge_verdict(call: Request) -> str | None:
    """The verdict JSON when ``call`` is a request from the plugin's LLM judge (its user message is
    ``<rubric>…</rubric>`` then ``<output>…</output>``), else None. The verdict always passes: the
    emulator cannot read a rubric; a script rule matching ``<rubric>`` scripts any other verdict."""
    if call.schema is not None or call.tools or not _JUDGE_PROMPT.match(call.last_user):
        return None
    verdict = {
        "pass": True,
        "score": 1.0,
        "reason": f"Emulated verdict from {call.model}: the emulator passes every output.",
    }
    return json.dumps(verdict)


def auto_text(call: Request) -> str:
    if call.schema is not None:
        return json.dumps(_format_instance(call, call.schema), ensure_ascii=False)
    if call.json_mode:
        return json.dumps({"model": call.model, "reply": sentence(call)}, ensure_ascii=False)
    return sentence(call)


def auto_tool_call(call: Request) -> tuple[str, str] | None:
    """(name, JSON arguments) when the request forces a tool call, else None."""
    if call.forced_tool is None or not call.tools:
        return None
    tool = next((t for t in call.tools if t.name == call.forced_tool), call.tools[0])
    return tool.name, json.dumps(_tool_instance(call, tool), ensure_ascii=False)


def _parse_json(text: str | None) -> object:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _fits(value: object, schema: dict[str, Any]) -> bool:
    import jsonschema

    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError:
        return False
    except jsonschema.SchemaError:
        return isinstance(value, dict)
    return True


def _with_text(schema: dict[str, Any], text: str, value: Any) -> Any:
    """``value``, an instance of ``schema``, with ``text`` in its first string property (or as the value)."""
    if isinstance(value, dict):
        props = schema.get("properties")
        if isinstance(props, dict):
            for name, sub in props.items():
                if isinstance(sub, dict) and sub.get("type") == "string" and name in value:
                    value[name] = text
                    return value
        return value
    return text if isinstance(value, str) else value


def forced_tool_call(call: Request, text: str | None) -> tuple[str, str] | None:
    """(name, JSON arguments) for a scripted text answer to a request that forces a tool call.

    A JSON object reply becomes the arguments (of the forced tool; with ``required``/``any``, of
    the first tool whose parameters it validates against and declare all its keys, else the first
    it validates against, else the first tool); any other reply
    becomes an instance of the tool's parameter schema, the text in its first string property.
    None when the request forces no tool.
    """
    if call.forced_tool is None or not call.tools:
        return None
    named = [t for t in call.tools if t.name == call.forced_tool] if call.forced_tool else []
    candidates = named or list(call.tools)
    value = _parse_json(text)
    if isinstance(value, dict) and text is not None:
        valid = [t for t in candidates if _fits(value, t.parameters)]
        declared = [t for t in valid if set(value) <= set(t.parameters.get("properties") or {})]
        tool = (declared or valid or candidates)[0]
        return tool.name, text
    tool = candidates[0]
    instance = _tool_instance(call, tool)
    if text is None:
        return tool.name, json.dumps(instance, ensure_ascii=False)
    return tool.name, json.dumps(_with_text(tool.parameters, text, instance), ensure_ascii=False)


def as_schema_text(call: Request, text: str) -> str:
    """A scripted reply under a ``json_schema`` response format: JSON text as is, any other text
    placed in an instance of the schema (its first string property)."""
    if call.schema is None or _parse_json(text) is not None or text.strip() == "null":
        return text
    instance = _format_instance(call, call.schema)
    return json.dumps(_with_text(call.schema, text, instance), ensure_ascii=False)


def schema_instance(schema: object, root: object = None) -> Any:
    """A small value that validates against ``schema`` (the common subset of JSON Schema that
    structured outputs and tool parameters use: types, enum, const, anyOf/oneOf, $ref, required).

    The value is bounded: at most :data:`MAX_INSTANCE_BYTES` of JSON and :data:`MAX_DEPTH` levels.
    Inside a ``$ref`` cycle only required properties are filled, arrays get ``minItems`` items
    (default 0) and an ``anyOf`` option that leaves the cycle is preferred. A schema whose smallest
    instance breaks a bound (``minItems: 1000000``, a required property that recurses forever)
    raises :class:`SchemaTooLarge`.
    """
    value, _ = _Builder(schema if root is None else root).build(schema, "$", 0)
    return value


class _Builder:
    def __init__(self, root: object) -> None:
        self.root = root
        self.refs: list[str] = []  # the $refs being expanded, outermost first

    @property
    def in_cycle(self) -> bool:
        return len(set(self.refs)) < len(self.refs)

    def fail(self, path: str, problem: str) -> SchemaTooLarge:
        if len(path) > 64:
            path = f"{path[:32]}…{path[-24:]}"
        return SchemaTooLarge(f"the schema at {path} {problem}")

    def checked(self, value: Any, size: int, path: str) -> tuple[Any, int]:
        if size > MAX_INSTANCE_BYTES:
            raise self.fail(path, f"needs an instance of about {size} bytes")
        return value, size

    def leaf(self, value: Any, path: str) -> tuple[Any, int]:
        return self.checked(value, len(json.dumps(value, ensure_ascii=False)), path)

    def build(self, schema: object, path: str, depth: int) -> tuple[Any, int]:
        if depth > MAX_DEPTH:
            cycle = f" (the $ref cycle through {self.refs[-1]!r} never ends)" if self.refs else ""
            raise self.fail(path, f"nests deeper than {MAX_DEPTH} levels{cycle}")
        if not isinstance(schema, dict):
            return None, 4
        if "$ref" in schema:
            ref = schema["$ref"]
            if len(self.refs) >= 2 * MAX_DEPTH:  # a chain of $refs that never reaches a schema
                raise self.fail(path, f"is a $ref chain through {ref!r} that never ends")
            self.refs.append(str(ref))
            try:
                return self.build(_resolve_ref(self.root, ref), path, depth)
            finally:
                self.refs.pop()
        if "const" in schema:
            return self.leaf(schema["const"], path)
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return self.leaf(schema["enum"][0], path)
        if "default" in schema:
            return self.leaf(schema["default"], path)
        for key in ("anyOf", "oneOf", "allOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                return self.build(self.pick(options), path, depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
            if self.in_cycle and "null" in schema["type"]:
                kind = "null"
        if kind == "object" or (kind is None and "properties" in schema):
            return self.object(schema, path, depth)
        if kind == "array":
            return self.array(schema, path, depth)
        if kind == "string":
            min_length = schema.get("minLength")
            if isinstance(min_length, int) and min_length > MAX_INSTANCE_BYTES:
                raise self.fail(path, f"asks for strings of at least {min_length} characters")
            return self.leaf(_string_for(schema), path)
        if kind == "integer":
            minimum = schema.get("minimum", 0)
            return self.leaf(int(minimum) if isinstance(minimum, (int, float)) else 0, path)
        if kind == "number":
            minimum = schema.get("minimum", 0)
            return self.leaf(float(minimum) if isinstance(minimum, (int, float)) else 0.0, path)
        if kind == "boolean":
            return False, 5
        if kind == "null":
            return None, 4
        return "emulated", 10

    def pick(self, options: list[Any]) -> object:
        """The first option that is not null; when some option would re-enter a $ref being expanded,
        the first that does not."""
        leaving = [o for o in options if not (isinstance(o, dict) and o.get("$ref") in self.refs)]
        if leaving and len(leaving) < len(options):
            return leaving[0]
        non_null = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
        return (non_null or options)[0]

    def object(self, schema: dict[str, Any], path: str, depth: int) -> tuple[Any, int]:
        props = schema.get("properties", {})
        if not isinstance(props, dict):
            return {}, 2
        required = schema.get("required")
        needed = set(required) if isinstance(required, list) else set()
        value: dict[str, Any] = {}
        size = 2
        for name, sub in props.items():
            if self.in_cycle and name not in needed:
                continue
            item, item_size = self.build(sub, f"{path}.{name}", depth + 1)
            value[name] = item
            size += len(json.dumps(name)) + 2 + item_size
            self.checked(value, size, path)
        return value, size

    def array(self, schema: dict[str, Any], path: str, depth: int) -> tuple[Any, int]:
        count = schema.get("minItems")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            count = 0 if self.in_cycle else 1
        if count > MAX_INSTANCE_BYTES // 2:  # even empty items take 2 bytes each
            raise self.fail(path, f"asks for at least {count} items")
        if count == 0:
            return [], 2
        item, item_size = self.build(schema.get("items", {"type": "string"}), f"{path}[]", depth + 1)
        size = 2 + count * (item_size + 2)
        self.checked(None, size, path)  # before the list is made
        return [item for _ in range(count)], size


def _string_for(schema: dict[str, Any]) -> str:
    formats = {"date-time": "2026-01-01T00:00:00Z", "date": "2026-01-01", "email": "user@example.com"}
    value = formats.get(str(schema.get("format")), "emulated")
    min_length = schema.get("minLength")
    if isinstance(min_length, int) and len(value) < min_length:
        value = value + "x" * (min_length - len(value))
    return value


def _resolve_ref(root: object, ref: object) -> object:
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return {}
    node: object = root
    for part in ref[2:].split("/"):
        if not isinstance(node, dict) or part not in node:
            return {}
        node = node[part]
    return node
