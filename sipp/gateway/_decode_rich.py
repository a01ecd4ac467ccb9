"""Decoding the rich-chat extension of the profile: parts, tool turns, tools, schemas, reasoning.

Only bodies that use a feature carry its fields, so none of this runs for the
original profile's traffic and those bodies decode exactly as before. Every
check raises :class:`GatewayProfileError` (400 ``invalid_request``) with a
message that names the field, in the style of the profile's own messages.

The new shapes are decoded strictly: an unknown key inside a part, a tool,
a tool call or ``reasoning`` is refused by name, because a server that
silently dropped a field it did not know would answer a different question
than the one asked.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final

from .._chat import ChatMessage, ImagePart, ReasoningOptions, TextPart, Tool, ToolCall
from .._models import ChatRequest, QueryRequest
from ._profile import finite_number, invalid_request, is_blank

__all__ = [
    "RICH_TEXT_KEYS",
    "decode_embed_inputs",
    "decode_message",
    "decode_rich_fields",
    "uses_extension",
]

#: The extension's top-level keys of query and chat bodies (typed, never passed through).
RICH_TEXT_KEYS: Final = frozenset({"tools", "tool_choice", "output_schema", "reasoning"})

_ROLES: Final = frozenset({"system", "user", "assistant", "tool"})
_CHOICES: Final = frozenset({"auto", "none", "required"})
_EFFORTS: Final = frozenset({"low", "medium", "high"})
_U32_MAX: Final = 0xFFFFFFFF
_PART_KEYS: Final = {
    "text": frozenset({"type", "text"}),
    "image": frozenset({"type", "url", "data", "media_type"}),
}
_TOOL_KEYS: Final = frozenset({"name", "description", "parameters"})
_CALL_KEYS: Final = frozenset({"id", "name", "arguments"})
_REASONING_KEYS: Final = frozenset({"effort", "budget_tokens"})


def _only(value: dict[str, Any], allowed: frozenset[str], what: str) -> None:
    for key in value:
        if key not in allowed:
            raise invalid_request(f"{what} has unknown key {key!r}")


def _object(value: object, message: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise invalid_request(message)
    return value


def _name(value: object, message: str) -> str:
    if not isinstance(value, str) or is_blank(value):
        raise invalid_request(message)
    return value


def check_json_compatible(value: object, key: str) -> None:
    """Refuse a non-finite number (or a non-JSON value) anywhere inside ``value``.

    Iterative, in document order, so the message names the innermost key that
    holds the first offending value, and deep nesting cannot overflow the stack.
    """
    pending: list[tuple[object, str]] = [(value, key)]
    while pending:
        item, name = pending.pop()
        if item is None or isinstance(item, (str, bool)):
            continue
        if isinstance(item, (int, float)):
            if finite_number(item) is None:
                raise invalid_request(f"{name} must be JSON-compatible")
        elif isinstance(item, (list, tuple)):
            pending.extend((child, name) for child in reversed(item))
        elif isinstance(item, dict):
            if not all(isinstance(child_key, str) for child_key in item):
                raise invalid_request(f"{name} must be JSON-compatible")
            pending.extend((child, child_key) for child_key, child in reversed(item.items()))
        else:
            raise invalid_request(f"{name} must be JSON-compatible")


# -- messages --------------------------------------------------------------------


def _image(part: dict[str, Any]) -> ImagePart:
    url, data, media_type = part.get("url"), part.get("data"), part.get("media_type")
    if (url is None) == (data is None):
        raise invalid_request("image part needs exactly one of url or data")
    if url is not None:
        if media_type is not None and not isinstance(media_type, str):
            raise invalid_request("image media_type must be a string")
        link = _name(url, "image url must be a non-empty string")
        return ImagePart(url=link, media_type=media_type)
    if not isinstance(data, str) or not data:
        raise invalid_request("image data must be a base64 string")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise invalid_request("image data must be a base64 string") from None
    if not isinstance(media_type, str) or is_blank(media_type):
        raise invalid_request("image media_type is required with data")
    return ImagePart(data=raw, media_type=media_type)


def _parts(value: list[Any]) -> list[TextPart | ImagePart]:
    if not value:
        raise invalid_request("content is required")
    parts: list[TextPart | ImagePart] = []
    for item in value:
        part = _object(item, "content part must be a JSON object")
        kind = part.get("type")
        if not isinstance(kind, str) or kind not in _PART_KEYS:
            raise invalid_request("content part type must be text or image")
        _only(part, _PART_KEYS[kind], f"{kind} part")
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise invalid_request("text part text must be a string")
            parts.append(TextPart(text=text))
        else:
            parts.append(_image(part))
    return parts


def _tool_calls(value: object) -> list[ToolCall]:
    if not isinstance(value, list):
        raise invalid_request("tool_calls must be an array of tool calls")
    calls = []
    for item in value:
        call = _object(item, "tool call must be a JSON object")
        _only(call, _CALL_KEYS, "tool call")
        arguments = call.get("arguments", "{}")
        if not isinstance(arguments, str):
            raise invalid_request("tool call arguments must be a string")
        calls.append(
            ToolCall(
                id=_name(call.get("id"), "tool call id is required"),
                name=_name(call.get("name"), "tool call name is required"),
                arguments=arguments,
            )
        )
    return calls


def decode_message(message: dict[str, Any]) -> ChatMessage:
    """One message. Plain ``{role, content}`` messages decode, and fail, exactly as before."""
    role = message.get("role")
    if role == "tool" and "tool_call_id" not in message:
        role = None  # not an extension turn: refused as the original profile refuses it
    if not isinstance(role, str) or role not in _ROLES:
        # The original profile's message, kept: clients and tests match on it.
        raise invalid_request("message role must be system, user, or assistant")
    raw_calls = message.get("tool_calls")
    calls = None
    if raw_calls is not None:
        if role != "assistant":
            raise invalid_request("only assistant messages carry tool_calls")
        calls = _tool_calls(raw_calls) or None
    content = message.get("content")
    if isinstance(content, list):
        decoded: str | list[TextPart | ImagePart] = _parts(content)
    elif calls and (content is None or content == ""):
        decoded = ""  # an assistant turn that only calls tools
    elif isinstance(content, str) and not is_blank(content):
        decoded = content
    else:
        raise invalid_request("content is required")
    call_id = None
    if role == "tool":
        call_id = _name(message.get("tool_call_id"), "tool message needs tool_call_id")
    return ChatMessage(role=role, content=decoded, tool_calls=calls, tool_call_id=call_id)  # type: ignore[arg-type]


# -- top-level fields -----------------------------------------------------------


def _schema_object(value: object, message: str, key: str) -> dict[str, Any]:
    schema = _object(value, message)
    check_json_compatible(schema, key)
    return schema


def _tools(value: object) -> list[Tool] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise invalid_request("tools must be an array of tools")
    tools: list[Tool] = []
    seen: set[str] = set()
    for item in value:
        tool = _object(item, "tool must be a JSON object")
        _only(tool, _TOOL_KEYS, "tool")
        name = _name(tool.get("name"), "tool name is required")
        if name in seen:
            raise invalid_request(f"tool name {name!r} is used twice")
        seen.add(name)
        description = tool.get("description", "")
        if not isinstance(description, str):
            raise invalid_request("tool description must be a string")
        parameters = tool.get("parameters")
        if parameters is None:
            tools.append(Tool(name=name, description=description))
            continue
        schema = _schema_object(
            parameters, "tool parameters must be a JSON schema object", "parameters"
        )
        if schema.get("type", "object") != "object":
            raise invalid_request("tool parameters must be a JSON schema object")
        tools.append(Tool(name=name, description=description, parameters=schema))
    return tools or None


def _tool_choice(value: object, tools: list[Tool] | None) -> str | None:
    if value is None:
        return None
    names = {tool.name for tool in tools or ()}
    if not isinstance(value, str) or (value not in _CHOICES and value not in names):
        raise invalid_request(
            "tool_choice must be auto, none, required, or the name of a tool in tools"
        )
    return value


def _reasoning(value: object) -> ReasoningOptions | None:
    if value is None:
        return None
    options = _object(value, "reasoning must be a JSON object")
    _only(options, _REASONING_KEYS, "reasoning")
    effort = options.get("effort")
    if effort is not None and (not isinstance(effort, str) or effort not in _EFFORTS):
        raise invalid_request("reasoning effort must be low, medium, or high")
    budget = options.get("budget_tokens")
    tokens = None
    if budget is not None:
        number = finite_number(budget)
        if number is None or not number.is_integer() or not 1 <= number <= _U32_MAX:
            raise invalid_request("reasoning budget_tokens must be a positive u32 integer")
        tokens = int(number)
    return ReasoningOptions(effort=effort, budget_tokens=tokens)  # type: ignore[arg-type]


def decode_rich_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The extension's typed request fields present in ``body`` (none: an empty dict)."""
    if RICH_TEXT_KEYS.isdisjoint(body):
        return {}
    tools = _tools(body.get("tools"))
    fields: dict[str, Any] = {
        "tools": tools,
        "tool_choice": _tool_choice(body.get("tool_choice"), tools),
        "reasoning": _reasoning(body.get("reasoning")),
    }
    schema = body.get("output_schema")
    if schema is not None:
        fields["output_schema"] = _schema_object(
            schema, "output_schema must be a JSON schema object", "output_schema"
        )
    return fields


def decode_embed_inputs(value: object) -> str | list[str]:
    """``input``: one non-blank string, or (the extension) a non-empty array of them."""
    if isinstance(value, list):
        if not value:
            raise invalid_request("input is required")
        for item in value:
            if not isinstance(item, str) or is_blank(item):
                raise invalid_request("input must be a string or an array of non-empty strings")
        return list(value)
    if not isinstance(value, str) or is_blank(value):
        raise invalid_request("input is required")
    return value


def uses_extension(request: object) -> bool:
    """Whether a text request uses any field of the extension (and so may get its events).

    The original profile's readers treat an unknown SSE event as an error, so
    ``reasoning`` and ``tool_call`` events go only to requests that asked for
    something of the extension: a client that sent none of its fields may be
    one that knows none of its events.
    """
    if not isinstance(request, (QueryRequest, ChatRequest)):
        return False
    if (
        request.tools is not None
        or request.tool_choice is not None
        or request.output_schema is not None
        or request.reasoning is not None
    ):
        return True
    if isinstance(request, ChatRequest):
        return any(
            not isinstance(m.content, str) or m.tool_calls or m.role == "tool"
            for m in request.messages
        )
    return False
