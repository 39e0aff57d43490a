"""The answers given when the script says nothing: a sentence naming the model, valid JSON when
JSON is asked for (an instance of the requested JSON schema), a tool call when one is forced."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .exchange import Request

__all__ = ["as_schema_text", "auto_text", "auto_tool_call", "forced_tool_call", "schema_instance"]

_SNIPPET = 60


def sentence(call: Request) -> str:
    quoted = " ".join((call.last_user or call.prompt).split())
    if len(quoted) > _SNIPPET:
        quoted = quoted[:_SNIPPET].rstrip() + "…"
    return f'Emulated reply from {call.model} to "{quoted}".'


def auto_text(call: Request) -> str:
    if call.schema is not None:
        return json.dumps(schema_instance(call.schema), ensure_ascii=False)
    if call.json_mode:
        return json.dumps({"model": call.model, "reply": sentence(call)}, ensure_ascii=False)
    return sentence(call)


def auto_tool_call(call: Request) -> tuple[str, str] | None:
    """(name, JSON arguments) when the request forces a tool call, else None."""
    if call.forced_tool is None or not call.tools:
        return None
    tool = next((t for t in call.tools if t.name == call.forced_tool), call.tools[0])
    return tool.name, json.dumps(schema_instance(tool.parameters), ensure_ascii=False)


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


def _with_text(schema: dict[str, Any], text: str) -> Any:
    """An instance of ``schema`` with ``text`` in its first string property (or as the value)."""
    value = schema_instance(schema)
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
    if text is None:
        return tool.name, json.dumps(schema_instance(tool.parameters), ensure_ascii=False)
    return tool.name, json.dumps(_with_text(tool.parameters, text), ensure_ascii=False)


def as_schema_text(call: Request, text: str) -> str:
    """A scripted reply under a ``json_schema`` response format: JSON text as is, any other text
    placed in an instance of the schema (its first string property)."""
    if call.schema is None or _parse_json(text) is not None or text.strip() == "null":
        return text
    return json.dumps(_with_text(call.schema, text), ensure_ascii=False)


def schema_instance(schema: object, root: object = None, depth: int = 0) -> Any:
    """A small value that validates against ``schema`` (the common subset of JSON Schema that
    structured outputs and tool parameters use: types, enum, const, anyOf/oneOf, $ref, required)."""
    root = schema if root is None else root
    if not isinstance(schema, dict) or depth > 12:
        return None
    if "$ref" in schema:
        return schema_instance(_resolve_ref(root, schema["$ref"]), root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            non_null = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            return schema_instance((non_null or options)[0], root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties", {})
        if not isinstance(props, dict):
            return {}
        return {name: schema_instance(sub, root, depth + 1) for name, sub in props.items()}
    if kind == "array":
        count = schema.get("minItems", 1)
        item = schema_instance(schema.get("items", {"type": "string"}), root, depth + 1)
        return [item for _ in range(count if isinstance(count, int) else 1)]
    if kind == "string":
        return _string_for(schema)
    if kind == "integer":
        return int(schema.get("minimum", 0))
    if kind == "number":
        minimum = schema.get("minimum", 0)
        return float(minimum) if isinstance(minimum, (int, float)) else 0.0
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return "emulated"


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
