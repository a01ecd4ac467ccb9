"""``sipp.tool``: a Tool built from a plain Python function (schema from hints and docstring).

The parameters' JSON schema comes from msgspec, which already describes every
type a tool argument can sensibly have (str, int, float, bool, lists, dicts,
Literal, Optional / ``X | None``, msgspec Structs, dataclasses, TypedDicts,
``Annotated[..., msgspec.Meta(...)]``). Named types land in ``$defs`` behind
``$ref``s; they are inlined here because several providers' function-calling
validators reject references, except for recursive types, which cannot be
inlined and keep a top-level ``$defs``.

The docstring's first paragraph is the tool's description; a Google-style
``Args:`` section gives the parameters' descriptions.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import re
import types
import typing
from collections.abc import Callable
from typing import Any, overload

import msgspec

from ._chat import Tool
from ._errors import InvalidRequestError

__all__ = ["ToolSignature", "signature_of", "tool"]

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SECTION = re.compile(r"^(Args|Arguments|Parameters|Params)\s*:\s*$")
_ARG_LINE = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_REF = "#/$defs/"


@overload
def tool(function: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *, name: str | None = None, description: str | None = None
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    function: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """A :class:`Tool` for ``function``: ``tool(fn)``, ``@tool`` or ``@tool(name=...)``.

    The schema comes from the type hints (every parameter needs one), the
    description from the docstring; parameters with defaults are optional.
    ``Tool.function`` keeps the callable (sync or async) for ``run_tools``.
    """
    if function is None:
        return functools.partial(_build, name=name, description=description)
    return _build(function, name=name, description=description)


class ToolSignature(msgspec.Struct, frozen=True):
    """How to call a tool's function with the model's JSON arguments."""

    #: (parameter name, type hint, positional-only, required) in signature order.
    parameters: tuple[tuple[str, Any, bool, bool], ...]
    is_async: bool
    #: JSON-ready default values of the optional parameters that have one.
    defaults: dict[str, Any]
    #: Whether it takes ``**kwargs`` (arguments outside the schema are passed on as they are).
    var_keyword: bool = False
    #: Why a schema cannot be built from it (a missing hint, ``*args``); calling it still
    #: works, for a ``Tool`` whose schema was written by hand.
    problems: tuple[str, ...] = ()


def _build(function: Callable[..., Any], *, name: str | None, description: str | None) -> Tool:
    if isinstance(function, Tool):
        return function
    if not callable(function):
        raise InvalidRequestError(
            f"sipp.tool needs a function, not {type(function).__name__}", field="tools"
        )
    tool_name = name if name is not None else getattr(function, "__name__", "")
    if not isinstance(tool_name, str) or not _NAME.match(tool_name):
        raise InvalidRequestError(
            f"tool name {tool_name!r} must be 1-64 letters, digits, '_' or '-' "
            "(pass sipp.tool(fn, name=...) for lambdas and partials)",
            field="tools",
        )
    summary, arg_docs = _parse_docstring(inspect.getdoc(function) or "")
    signature = signature_of(function)
    if signature.problems:
        raise InvalidRequestError(signature.problems[0], field="tools")
    properties: dict[str, Any] = {}
    required: list[str] = []
    hints = [hint for _, hint, _, _ in signature.parameters]
    try:
        schemas, components = msgspec.json.schema_components(hints, ref_template=_REF + "{name}")
    except (TypeError, ValueError) as exc:  # a type msgspec cannot describe
        raise InvalidRequestError(
            f"tool {tool_name!r}: cannot describe a parameter type as JSON schema: {exc}",
            field="tools",
        ) from exc
    for (param, _, _, is_required), schema in zip(signature.parameters, schemas, strict=True):
        schema = dict(schema)
        if param in arg_docs and "description" not in schema:
            schema["description"] = arg_docs[param]
        if param in signature.defaults and "default" not in schema:
            schema["default"] = signature.defaults[param]
        properties[param] = schema
        if is_required:
            required.append(param)
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    parameters = _inline_refs(parameters, dict(components))
    return Tool(
        name=tool_name,
        description=description if description is not None else summary,
        parameters=parameters,
        function=function,
    )


@functools.lru_cache(maxsize=256)
def _cached_signature(function: Callable[..., Any]) -> ToolSignature:
    return _signature(function)


def signature_of(function: Callable[..., Any]) -> ToolSignature:
    """The parameters of ``function`` with their resolved type hints (cached when hashable)."""
    try:
        return _cached_signature(function)
    except TypeError as exc:
        if "unhashable" not in str(exc):
            raise
        return _signature(function)


def _signature(function: Callable[..., Any]) -> ToolSignature:
    label = getattr(function, "__name__", repr(function))
    try:
        sig = inspect.signature(function)
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(
            f"tool {label!r}: cannot read the function's signature", field="tools"
        ) from exc
    target = function.func if isinstance(function, functools.partial) else function
    try:
        hints = typing.get_type_hints(_parameters_only(target), include_extras=True)
    except Exception as exc:  # NameError for a forward reference, TypeError for junk
        raise InvalidRequestError(
            f"tool {label!r}: cannot resolve its type hints ({type(exc).__name__}: {exc})",
            field="tools",
        ) from exc
    parameters: list[tuple[str, Any, bool, bool]] = []
    defaults: dict[str, Any] = {}
    problems: list[str] = []
    var_keyword = False
    for param in sig.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            problems.append(
                f"tool {label!r}: *{param.name} / **{param.name} cannot be described "
                "to a model; name every parameter"
            )
            var_keyword = var_keyword or param.kind == param.VAR_KEYWORD
            continue
        if param.name not in hints:
            problems.append(f"tool {label!r}: parameter {param.name!r} needs a type hint")
        parameters.append(
            (
                param.name,
                hints.get(param.name, Any),
                param.kind == param.POSITIONAL_ONLY,
                param.default is inspect.Parameter.empty,
            )
        )
        if param.default is not inspect.Parameter.empty:
            # A default JSON cannot show (an object) is simply not advertised.
            with contextlib.suppress(TypeError, ValueError):
                defaults[param.name] = msgspec.to_builtins(param.default)
    is_async = inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
        getattr(target, "__call__", None)  # noqa: B004 (an async __call__ counts too)
    )
    return ToolSignature(
        tuple(parameters), is_async, defaults, var_keyword=var_keyword, problems=tuple(problems)
    )


def _parameters_only(target: Any) -> Any:
    """``target``'s annotations without ``return``: the model never sees the result's type,
    so a return hint that cannot be resolved (a ``TYPE_CHECKING`` import) must not matter."""
    unwrapped = inspect.unwrap(target) if callable(target) else target
    if not (inspect.isfunction(unwrapped) or inspect.ismethod(unwrapped)):
        # A callable object: its parameters are those of its class's __call__.
        call = getattr(type(unwrapped), "__call__", None)  # noqa: B004
        if inspect.isfunction(call):
            unwrapped = call
    annotations = dict(getattr(unwrapped, "__annotations__", None) or {})
    annotations.pop("return", None)
    return types.SimpleNamespace(
        __annotations__=annotations, __globals__=getattr(unwrapped, "__globals__", {})
    )


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The first paragraph, and ``name -> description`` from an ``Args:`` section."""
    lines = doc.splitlines()
    summary: list[str] = []
    for line in lines:
        if not line.strip() or _SECTION.match(line.strip()):
            break
        summary.append(line.strip())
    args: dict[str, str] = {}
    header = next((i for i, line in enumerate(lines) if _SECTION.match(line.strip())), None)
    if header is None:
        return " ".join(summary), args
    header_indent = _indent(lines[header])
    item_indent: int | None = None
    current: str | None = None
    for line in lines[header + 1 :]:
        stripped = line.strip()
        if not stripped:
            continue
        indent = _indent(line)
        if indent <= header_indent:
            break  # "Returns:", "Raises:" or prose end the section
        if item_indent is None:
            item_indent = indent
        match = _ARG_LINE.match(stripped)
        if indent <= item_indent and match:
            current = match.group(1)
            args[current] = match.group(2).strip()
        elif indent > item_indent and current is not None:  # a continuation line
            args[current] = f"{args[current]} {stripped}".strip()
    return " ".join(summary), args


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _inline_refs(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Replace ``$ref``s by their definitions; recursive ones stay in a top-level ``$defs``."""
    recursive = {name for name in defs if _reaches(name, name, defs, set())}

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            ref = value.get("$ref")
            if isinstance(ref, str) and ref.startswith(_REF):
                name = ref.removeprefix(_REF)
                if name not in recursive and name in defs:
                    rest = {k: walk(v) for k, v in value.items() if k != "$ref"}
                    return {**walk(defs[name]), **rest}
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    result: dict[str, Any] = walk(schema)
    if recursive:
        result["$defs"] = {name: walk(defs[name]) for name in sorted(recursive)}
    return result


def _refs(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = set()
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF):
            found.add(ref.removeprefix(_REF))
        for item in value.values():
            found |= _refs(item)
        return found
    if isinstance(value, list):
        return set().union(*(_refs(v) for v in value)) if value else set()
    return set()


def _reaches(start: str, target: str, defs: dict[str, Any], seen: set[str]) -> bool:
    for name in _refs(defs.get(start)):
        if name == target:
            return True
        if name not in seen:
            seen.add(name)
            if _reaches(name, target, defs, seen):
                return True
    return False
