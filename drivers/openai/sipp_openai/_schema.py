"""``output=`` on the OpenAI wire: ``response_format`` with a JSON schema, strict where it may be.

OpenAI's strict mode guarantees the answer matches the schema, but only takes
schemas in which every object lists all of its properties as ``required`` and
allows no others. The decision, made per request:

* the root is an object and every object in the schema (properties, items,
  ``anyOf``/``oneOf``/``allOf`` branches, ``$defs``) has properties, all of
  them required, and no ``additionalProperties`` other than ``false``:
  ``strict: true``, and ``additionalProperties: false`` is added to each
  object that did not say it (the caller's validator ignores unknown keys
  anyway, so this only stops the model inventing them);
* otherwise the schema goes as given with ``strict: false``: making an
  optional field required would force the model to invent a value the
  caller meant to default, so the schema is never rewritten that way.

Either way the core validates the answer against the caller's type.
"""

from __future__ import annotations

import re
from typing import Any, Final

from ._types import SchemaFormat

__all__ = ["response_format", "strict_schema"]

_NAME_CHARS: Final = re.compile(r"[^a-zA-Z0-9_-]")
#: Keywords whose value is one sub-schema, or a list or map of them.
_ONE: Final = ("items", "not", "additionalItems", "contains")
_MANY: Final = ("anyOf", "oneOf", "allOf", "prefixItems")
_MAP: Final = ("$defs", "definitions")


def response_format(schema: dict[str, Any], form: SchemaFormat) -> dict[str, Any]:
    if form == "json_object":
        return {"type": "json_object", "schema": schema}
    strict = strict_schema(schema)
    return {
        "type": "json_schema",
        "json_schema": {
            "name": _name(schema),
            "schema": schema if strict is None else strict,
            "strict": strict is not None,
        },
    }


def _name(schema: dict[str, Any]) -> str:
    """The schema's ``title`` in the characters OpenAI allows, else ``output``."""
    title = schema.get("title")
    name = _NAME_CHARS.sub("_", title)[:64] if isinstance(title, str) else ""
    return name or "output"


def strict_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    """The schema ready for strict mode, or ``None`` when strict mode would change its meaning."""
    if schema.get("type") != "object":
        return None
    try:
        strict: dict[str, Any] = _strict(schema)
    except _NotStrict:
        return None
    return strict


class _NotStrict(Exception):
    pass


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = dict(node)
    if node.get("type") == "object" or "properties" in node:
        properties = node.get("properties")
        extra = node.get("additionalProperties", False)
        if not isinstance(properties, dict) or extra is not False:
            raise _NotStrict
        required = node.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise _NotStrict
        if set(required) != set(properties):
            raise _NotStrict
        out["properties"] = {key: _strict(value) for key, value in properties.items()}
        out["additionalProperties"] = False
    for key in _ONE + _MANY:
        if key in node:
            out[key] = _strict(node[key])
    for key in _MAP:
        if isinstance(node.get(key), dict):
            out[key] = {name: _strict(value) for name, value in node[key].items()}
    return out
