"""The ``POST /messages`` body, from a sipp ``ChatRequest``.

How each sipp field maps (see the package README for the why):

* system messages: their text joined into the top-level ``system``;
* user/assistant content: a string stays a string; parts become ``text`` and
  ``image`` blocks (``source`` ``base64`` for bytes, ``url`` for URLs);
* an assistant message's ``tool_calls``: ``tool_use`` blocks after its text,
  ``input`` the parsed arguments, preceded by the turn's remembered thinking;
* ``tool`` messages in a row: one user turn of ``tool_result`` blocks (a user
  message right after them joins that turn: Anthropic wants turns to
  alternate, results first);
* ``tools``: ``name``, ``description``, ``input_schema``; ``tool_choice``:
  ``auto``/``none``/``any`` (for "required")/``tool`` with its name;
* ``output_schema``: native structured output, ``output_config.format``;
* ``reasoning``: ``thinking: {"type": "enabled", "budget_tokens": N}``.
"""

from __future__ import annotations

import base64
from typing import Any, Final

from sipp import (
    ChatMessage,
    ChatRequest,
    ImagePart,
    InvalidRequestError,
    OutputValidationError,
    ReasoningOptions,
    TextPart,
    Tool,
)

from ._echo import ThinkingMemory

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "EFFORT_BUDGETS",
    "messages_body",
    "strict_schema",
    "thinking_budget",
]

#: Anthropic requires ``max_tokens``; this is sent when the request has none.
DEFAULT_MAX_TOKENS: Final = 4096
#: Thinking budgets for ``reasoning={"effort": ...}`` without ``budget_tokens``.
#: 1,024 is Anthropic's smallest budget; each step up quadruples it.
EFFORT_BUDGETS: Final = {"low": 1024, "medium": 4096, "high": 16384}

_CHOICES: Final = {"auto": {"type": "auto"}, "none": {"type": "none"}, "required": {"type": "any"}}


def messages_body(
    model: str, request: ChatRequest, *, stream: bool, memory: ThinkingMemory
) -> dict[str, Any]:
    """The whole request body; ``seed`` has no Anthropic equivalent and is not sent."""
    system = [_system_text(m, i) for i, m in enumerate(request.messages) if m.role == "system"]
    max_tokens = request.max_tokens or DEFAULT_MAX_TOKENS
    body: dict[str, Any] = {"model": model, "messages": _turns(request.messages, memory)}
    if system:
        body["system"] = "\n\n".join(system)
    if request.tools:
        body["tools"] = [_tool(tool) for tool in request.tools]
        if request.tool_choice is not None:
            body["tool_choice"] = _CHOICES.get(request.tool_choice) or {
                "type": "tool",
                "name": request.tool_choice,
            }
    if request.output_schema is not None:
        schema = strict_schema(request.output_schema)
        body["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    if request.reasoning is not None:
        if request.tools and request.tool_choice not in (None, "auto", "none"):
            # Anthropic's rule, refused here rather than as a 400 after the round trip.
            raise InvalidRequestError(
                "anthropic: with reasoning, tool_choice must be 'auto' or 'none' "
                f"(not {request.tool_choice!r})",
                field="tool_choice",
            )
        budget = thinking_budget(request.reasoning)
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        # Anthropic counts thinking inside max_tokens and wants it above the
        # budget: sipp's max_tokens limits the answer, so the budget goes on top.
        max_tokens += budget
    body["max_tokens"] = max_tokens
    if stream:
        body["stream"] = True
    if request.options:
        _merge_options(body, request.options)
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop_sequences"] = request.stop
    return body


def thinking_budget(reasoning: ReasoningOptions) -> int:
    """``budget_tokens`` when given, else the effort's budget (medium by default)."""
    if reasoning.budget_tokens is not None:
        return reasoning.budget_tokens
    return EFFORT_BUDGETS[reasoning.effort or "medium"]


def _system_text(message: ChatMessage, index: int) -> str:
    if message.has_images:
        raise InvalidRequestError(
            f"messages[{index}]: anthropic takes text only in system messages",
            field=f"messages.{index}.content",
        )
    return message.text


def _merge_options(body: dict[str, Any], options: dict[str, Any]) -> None:
    """Provider options go in as given, except ``output_config``, which is merged
    so ``{"output_config": {"effort": "high"}}`` keeps the output format."""
    for key, value in options.items():
        current = body.get(key)
        if key == "output_config" and isinstance(current, dict) and isinstance(value, dict):
            body[key] = {**current, **value}
        else:
            body[key] = value


def _tool(tool: Tool) -> dict[str, Any]:
    wire: dict[str, Any] = {"name": tool.name}
    if tool.description:
        wire["description"] = tool.description
    wire["input_schema"] = tool.parameters
    return wire


def _turns(messages: list[ChatMessage], memory: ThinkingMemory) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    # The user turn being filled with tool results, while tool messages keep coming.
    results: list[dict[str, Any]] | None = None
    for index, message in enumerate(messages):
        role = message.role
        if role == "system":
            continue
        if role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
                "content": _content(message),
            }
            if results is None:
                results = [block]
                turns.append({"role": "user", "content": results})
            else:
                results.append(block)
            continue
        if role == "user" and results is not None:
            content = message.content
            if not isinstance(content, str):
                results.extend(_blocks(content))
            elif content:
                results.append({"type": "text", "text": content})
            results = None
            continue
        results = None
        if role == "assistant" and message.tool_calls:
            turns.append({"role": "assistant", "content": _tool_turn(message, index, memory)})
        else:
            turns.append({"role": role, "content": _content(message)})
    return turns


def _content(message: ChatMessage) -> str | list[dict[str, Any]]:
    content = message.content
    return content if isinstance(content, str) else _blocks(content)


def _blocks(parts: list[TextPart | ImagePart]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, TextPart):
            blocks.append({"type": "text", "text": part.text})
        elif part.data is not None:
            data = base64.b64encode(part.data).decode("ascii")
            source = {"type": "base64", "media_type": part.media_type, "data": data}
            blocks.append({"type": "image", "source": source})
        else:
            blocks.append({"type": "image", "source": {"type": "url", "url": part.url}})
    return blocks


def _tool_turn(message: ChatMessage, index: int, memory: ThinkingMemory) -> list[dict[str, Any]]:
    calls = message.tool_calls or []
    blocks = list(memory.recall(calls[0].id))
    content = message.content
    if isinstance(content, str):
        if content:
            blocks.append({"type": "text", "text": content})
    else:
        blocks.extend(_blocks(content))
    for call in calls:
        try:
            arguments = call.parsed_arguments
        except OutputValidationError as exc:
            raise InvalidRequestError(
                f"messages[{index}]: tool call {call.id!r} has arguments that are not JSON",
                field=f"messages.{index}.tool_calls",
            ) from exc
        if not isinstance(arguments, dict):
            raise InvalidRequestError(
                f"messages[{index}]: tool call {call.id!r} needs a JSON object as arguments",
                field=f"messages.{index}.tool_calls",
            )
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": arguments})
    return blocks


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with ``additionalProperties: false`` on every object that leaves it unset.

    Anthropic's structured output requires it on every object; sipp validates
    the answer against the caller's own type anyway, so closing the objects
    only keeps the model from adding keys nobody asked for. The caller's dict
    is never changed.
    """
    closed: dict[str, Any] = _close(schema)
    return closed


_SCHEMA_MAPS: Final = ("properties", "$defs", "definitions", "patternProperties")
_SCHEMA_LISTS: Final = ("anyOf", "allOf", "oneOf", "prefixItems")
_SCHEMA_ONES: Final = ("items", "additionalProperties", "not", "if", "then", "else")


def _close(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return schema
    closed = dict(schema)
    for key in _SCHEMA_MAPS:
        value = closed.get(key)
        if isinstance(value, dict):
            closed[key] = {name: _close(sub) for name, sub in value.items()}
    for key in _SCHEMA_LISTS:
        value = closed.get(key)
        if isinstance(value, list):
            closed[key] = [_close(sub) for sub in value]
    for key in _SCHEMA_ONES:
        if key in closed:
            closed[key] = _close(closed[key])
    kind = closed.get("type")
    is_object = kind == "object" or (isinstance(kind, list) and "object" in kind)
    if (is_object or "properties" in closed) and "additionalProperties" not in closed:
        closed["additionalProperties"] = False
    return closed
