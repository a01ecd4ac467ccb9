"""The OpenAI wire format, outbound: request bodies for completions, chat and embeddings.

What each Sipp field becomes (the driver's part of the rich-chat contract):

* content parts: ``{"type": "text", "text"}`` and ``{"type": "image_url",
  "image_url": {"url"}}``, inline images as a ``data:`` URL; a string content
  stays a string;
* an assistant turn's ``tool_calls``: ``{"id", "type": "function",
  "function": {"name", "arguments"}}``, with ``content`` sent as given even
  when empty (not null: llama-cpp-python's server refuses a null content); a
  tool turn: ``role: "tool"`` with ``tool_call_id``;
* ``tools``: ``{"type": "function", "function": {"name", "description",
  "parameters"}}``; ``tool_choice`` a name becomes ``{"type": "function",
  "function": {"name"}}``, and with tools but no choice ``"auto"`` is sent
  (OpenAI's default anyway; llama-cpp-python's server ignores tools without it);
* ``output_schema``: ``response_format`` (see ``_schema``);
* ``reasoning.effort``: ``reasoning_effort``. ``budget_tokens`` has no field in
  the OpenAI API and is not sent; a server that takes a budget gets it through
  ``provider_options``.
"""

from __future__ import annotations

import base64
from typing import Any

from sipp import ChatMessage, ChatRequest, ImagePart, QueryRequest, TextPart, Tool

from ._schema import response_format
from ._types import SchemaFormat

__all__ = ["chat_body", "completion_body", "embed_body", "message_json", "tool_choice_json"]


def _options(
    body: dict[str, Any],
    request: QueryRequest | ChatRequest,
    *,
    stream: bool,
    stream_usage: bool,
    max_tokens_field: str,
) -> dict[str, Any]:
    if stream:
        body["stream"] = True
        if stream_usage:
            body["stream_options"] = {"include_usage": True}
    if request.options:
        # The core has already refused keys that clash with typed fields.
        body.update(request.options)
    if request.max_tokens is not None:
        body[max_tokens_field] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop"] = request.stop
    if request.seed is not None:
        body["seed"] = request.seed
    if request.reasoning is not None and request.reasoning.effort is not None:
        body["reasoning_effort"] = request.reasoning.effort
    return body


def completion_body(
    model: str, request: QueryRequest, *, stream: bool, stream_usage: bool
) -> dict[str, Any]:
    """``POST /completions`` (tools and schemas are chat features: the core refuses them here)."""
    return _options(
        {"model": model, "prompt": request.prompt},
        request,
        stream=stream,
        stream_usage=stream_usage,
        max_tokens_field="max_tokens",
    )


def chat_body(
    model: str,
    request: ChatRequest,
    *,
    stream: bool,
    stream_usage: bool,
    max_tokens_field: str = "max_tokens",
    schema_format: SchemaFormat = "json_schema",
) -> dict[str, Any]:
    """``POST /chat/completions``."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [message_json(m) for m in request.messages],
    }
    _options(
        body,
        request,
        stream=stream,
        stream_usage=stream_usage,
        max_tokens_field=max_tokens_field,
    )
    if request.tools:
        body["tools"] = [_tool_json(tool) for tool in request.tools]
        body["tool_choice"] = tool_choice_json(request.tool_choice or "auto")
    elif request.tool_choice is not None:
        body["tool_choice"] = tool_choice_json(request.tool_choice)
    if request.output_schema is not None:
        body["response_format"] = response_format(request.output_schema, schema_format)
    return body


def message_json(message: ChatMessage) -> dict[str, Any]:
    content = message.content
    if message.tool_calls:
        return {
            "role": "assistant",
            "content": _content_json(content),
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in message.tool_calls
            ],
        }
    out: dict[str, Any] = {"role": message.role, "content": _content_json(content)}
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    return out


def _content_json(content: str | list[TextPart | ImagePart]) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    return [_part_json(part) for part in content]


def _part_json(part: TextPart | ImagePart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if part.url is not None:
        url = part.url
    else:
        assert part.data is not None  # ImagePart holds exactly one of url and data
        url = f"data:{part.media_type};base64,{base64.b64encode(part.data).decode()}"
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_json(tool: Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    if tool.description:
        function["description"] = tool.description
    function["parameters"] = tool.parameters
    return {"type": "function", "function": function}


def tool_choice_json(choice: str) -> str | dict[str, Any]:
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def embed_body(model: str, text: str | list[str], options: dict[str, Any] | None) -> dict[str, Any]:
    """``POST /embeddings``, always as floats; a list of inputs goes in one call."""
    body: dict[str, Any] = {"model": model, "input": text}
    if options:
        body.update(options)
    body["encoding_format"] = "float"
    return body
