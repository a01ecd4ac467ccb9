"""``output=``: from the type a caller asks for to a JSON schema and a validator.

msgspec describes and validates Structs, dataclasses, TypedDicts and plain
types itself; a pydantic model is recognised by duck typing (pydantic is never
imported here, and never a dependency); a dict is taken as a JSON schema and
the answer is then plain JSON data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from ._errors import InvalidRequestError, OutputValidationError

__all__ = ["OutputSpec", "output_spec"]


class OutputSpec(msgspec.Struct, frozen=True):
    schema: dict[str, Any]
    parse: Callable[[str], Any]


def output_spec(output: Any) -> OutputSpec:
    """The schema to send and the function that validates the answer."""
    if isinstance(output, dict):
        if output.get("type") not in (None, "object", "array") and "properties" not in output:
            raise InvalidRequestError(
                "output= as a dict must be a JSON schema (an object or array schema)",
                field="output",
            )
        return OutputSpec(output, _parse_json)
    if isinstance(output, type) and hasattr(output, "model_json_schema"):
        return OutputSpec(output.model_json_schema(), _pydantic_parser(output))
    try:
        schema = _inline(msgspec.json.schema(output))
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(
            f"output= must be a msgspec Struct, a dataclass, a TypedDict, a pydantic model "
            f"or a JSON-schema dict, not {output!r}",
            field="output",
        ) from exc
    decoder = msgspec.json.Decoder(output)
    return OutputSpec(schema, _msgspec_parser(decoder))


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """msgspec puts the top type in ``$defs`` behind a ``$ref``: lift it to the top."""
    ref = schema.get("$ref")
    defs = schema.get("$defs", {})
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        top = dict(defs[ref.removeprefix("#/$defs/")])
        rest = {k: v for k, v in defs.items() if k != ref.removeprefix("#/$defs/")}
        # Other definitions may still refer to the top one.
        if rest or _mentions(top, ref):
            top["$defs"] = defs
        return top
    return schema


def _mentions(value: Any, ref: str) -> bool:
    if isinstance(value, dict):
        return value.get("$ref") == ref or any(_mentions(v, ref) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, ref) for v in value)
    return False


def _parse_json(text: str) -> Any:
    try:
        return msgspec.json.decode(text)
    except (msgspec.DecodeError, RecursionError) as exc:  # RecursionError: "[[[[..."
        raise OutputValidationError(f"the output is not valid JSON: {exc}", text=text) from exc


def _msgspec_parser(decoder: msgspec.json.Decoder[Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return decoder.decode(text)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
            raise OutputValidationError(
                f"the output does not match the schema: {exc}", text=text
            ) from exc

    return parse


def _pydantic_parser(model: Any) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return model.model_validate_json(text)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise OutputValidationError(
                f"the output does not match the schema: {exc}", text=text
            ) from exc

    return parse
