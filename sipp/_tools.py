"""``tools=``: turning what a caller passes (``Tool``s, dicts, functions) into ``Tool``s."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from ._chat import Tool
from ._errors import InvalidRequestError

__all__ = ["ToolLike", "to_tools"]

ToolLike = Tool | Mapping[str, Any] | Any  # Any: a plain function


def to_tools(tools: Iterable[ToolLike]) -> list[Tool]:
    converted: list[Tool] = []
    for index, item in enumerate(tools):
        if isinstance(item, Tool):
            converted.append(item)
        elif isinstance(item, Mapping):
            try:
                converted.append(msgspec.convert(dict(item), Tool, strict=True))
            except msgspec.ValidationError as exc:
                raise InvalidRequestError(f"tools[{index}]: {exc}", field="tools") from exc
        elif callable(item):
            from ._function_tools import tool

            converted.append(tool(item))
        else:
            raise InvalidRequestError(
                f"tools[{index}] must be a sipp.Tool, a dict or a function, "
                f"not {type(item).__name__}",
                field="tools",
            )
    return converted
