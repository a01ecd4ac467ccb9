"""``sipp.tool``: a Tool built from a plain Python function (schema from hints and docstring)."""

from __future__ import annotations

from typing import Any

from ._chat import Tool

__all__ = ["tool"]


def tool(function: Any) -> Tool:
    raise NotImplementedError("building tools from functions lands with the tool loop")
