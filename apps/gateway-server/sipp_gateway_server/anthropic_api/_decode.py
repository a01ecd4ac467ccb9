"""Anthropic Messages request bodies into sipp chat requests (sans-I/O).

Converted with ``msgspec`` into the structs below (a wrong type is a 400
naming its path), then mapped onto :class:`sipp.ChatRequest`:

* ``system`` (a string or text blocks) is the first, system, message;
* a user turn's ``tool_result`` blocks become ``tool`` messages, in order,
  before the rest of that turn (sipp's shape: results answer the previous
  assistant turn's calls); an ``is_error`` result is prefixed ``error:``;
* an assistant turn's ``tool_use`` blocks are its ``tool_calls`` (``input``
  re-encoded as the JSON ``arguments``); ``thinking`` blocks a client echoes
  back are dropped (their signatures belong to Anthropic, not to this gateway);
* ``image`` blocks: ``base64`` sources become inline bytes, ``url`` sources URLs;
* ``tool_choice``: ``auto``, ``none``, ``any`` (sipp's ``required``),
  ``tool`` (its name); ``thinking`` ``enabled`` with ``budget_tokens`` is
  ``reasoning.budget_tokens``; ``output_config.format`` (or the beta
  ``output_format``) ``json_schema`` is the ``output_schema``.

Unknown top-level fields (``metadata``, ``service_tier`` ...) are ignored;
server tools (a ``tools`` entry with a ``type`` other than ``custom``) and
``top_k`` are refused, since no sipp target can honour them.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

import msgspec

from sipp import (
    ChatMessage,
    ChatRequest,
    ImagePart,
    InvalidRequestError,
    ReasoningOptions,
    TextPart,
    Tool,
    ToolCall,
)

from .._surface import Decoded

__all__ = ["MessagesDetails", "decode_messages"]


class _Loose(msgspec.Struct, kw_only=True):
    """Unknown fields are ignored (see the module docstring)."""


class _Base64(_Loose, tag="base64", tag_field="type", kw_only=True):
    media_type: str
    data: str


class _URL(_Loose, tag="url", tag_field="type", kw_only=True):
    url: str


class _Text(_Loose, tag="text", tag_field="type", kw_only=True):
    text: str


class _Image(_Loose, tag="image", tag_field="type", kw_only=True):
    source: _Base64 | _URL


class _ToolUse(_Loose, tag="tool_use", tag_field="type", kw_only=True):
    id: str
    name: str
    input: Any = None


class _ToolResult(_Loose, tag="tool_result", tag_field="type", kw_only=True):
    tool_use_id: str
    content: str | list[_Text | _Image] | None = None
    is_error: bool | None = None


class _Thinking(_Loose, tag="thinking", tag_field="type", kw_only=True):
    thinking: str
    signature: str | None = None


class _RedactedThinking(_Loose, tag="redacted_thinking", tag_field="type", kw_only=True):
    data: str


_Block = _Text | _Image | _ToolUse | _ToolResult | _Thinking | _RedactedThinking


class _Message(_Loose, kw_only=True):
    role: Literal["user", "assistant"]
    content: str | list[_Block]


class _Tool(_Loose, kw_only=True):
    name: str
    input_schema: dict[str, Any]
    description: str | None = None
    type: str | None = None


class _ToolChoice(_Loose, kw_only=True):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None


class _ThinkingConfig(_Loose, kw_only=True):
    type: Literal["enabled", "disabled"]
    budget_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None


class _Format(_Loose, kw_only=True):
    type: Literal["json_schema"]
    schema: dict[str, Any]


class _OutputConfig(_Loose, kw_only=True):
    format: _Format | None = None


class _Body(_Loose, kw_only=True):
    model: str
    max_tokens: Annotated[int, msgspec.Meta(ge=1)]
    messages: Annotated[list[_Message], msgspec.Meta(min_length=1)]
    system: str | list[_Text] | None = None
    stop_sequences: list[str] | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    top_k: int | None = None
    stream: bool | None = None
    tools: list[_Tool] | None = None
    tool_choice: _ToolChoice | None = None
    thinking: _ThinkingConfig | None = None
    output_config: _OutputConfig | None = None
    output_format: _Format | None = None


class MessagesDetails(msgspec.Struct, frozen=True):
    model: str


def _convert(body: Any) -> _Body:
    if not isinstance(body, dict):
        raise InvalidRequestError("the request body must be a JSON object")
    try:
        return msgspec.convert(body, _Body)
    except msgspec.ValidationError as exc:
        text = str(exc)
        field = text.rpartition("- at `$.")[2].rstrip("`") if "- at `$." in text else None
        raise InvalidRequestError(text, field=field) from None


def _image(block: _Image, at: str) -> ImagePart:
    source = block.source
    if isinstance(source, _URL):
        return ImagePart(url=source.url)
    try:
        data = base64.b64decode(source.data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequestError("image data is not valid base64", field=at) from None
    return ImagePart(data=data, media_type=source.media_type)


def _parts(blocks: list[_Text | _Image], at: str) -> str | list[TextPart | ImagePart]:
    if all(isinstance(b, _Text) for b in blocks):
        return "".join(b.text for b in blocks if isinstance(b, _Text))
    return [
        TextPart(text=b.text) if isinstance(b, _Text) else _image(b, f"{at}[{i}]")
        for i, b in enumerate(blocks)
    ]


def _result(block: _ToolResult, at: str) -> ChatMessage:
    content = block.content
    body: str | list[TextPart | ImagePart]
    if content is None:
        body = ""
    elif isinstance(content, str):
        body = content
    else:
        body = _parts(content, f"{at}.content")
    if block.is_error:
        body = "error: " + body if isinstance(body, str) else [TextPart(text="error: "), *body]
    return ChatMessage(role="tool", content=body, tool_call_id=block.tool_use_id)


def _turn(message: _Message, index: int) -> list[ChatMessage]:
    at = f"messages[{index}].content"
    if isinstance(message.content, str):
        return [ChatMessage(role=message.role, content=message.content)]
    out: list[ChatMessage] = []
    visible: list[_Text | _Image] = []
    calls: list[ToolCall] = []
    for i, block in enumerate(message.content):
        if isinstance(block, _Text | _Image):
            visible.append(block)
        elif isinstance(block, _ToolResult):
            if message.role != "user":
                raise InvalidRequestError("tool_result blocks belong in user turns", field=at)
            out.append(_result(block, f"{at}[{i}]"))
        elif isinstance(block, _ToolUse):
            if message.role != "assistant":
                raise InvalidRequestError("tool_use blocks belong in assistant turns", field=at)
            arguments = msgspec.json.encode({} if block.input is None else block.input).decode()
            calls.append(ToolCall(id=block.id, name=block.name, arguments=arguments))
        # thinking and redacted_thinking: dropped (see the module docstring)
    if visible or calls or not out:
        content = _parts(visible, at) if visible else ""
        out.append(ChatMessage(role=message.role, content=content, tool_calls=calls or None))
    return out


def _tools(body: _Body) -> tuple[list[Tool] | None, str | None]:
    if not body.tools:
        return None, None
    tools = []
    for index, spec in enumerate(body.tools):
        if spec.type not in (None, "custom"):
            raise InvalidRequestError(
                f"server tool {spec.type!r} is not supported", field=f"tools[{index}].type"
            )
        try:
            tools.append(
                Tool(
                    name=spec.name, description=spec.description or "", parameters=spec.input_schema
                )
            )
        except ValueError as exc:
            raise InvalidRequestError(f"tools[{index}]: {exc}", field=f"tools[{index}]") from None
    choice = body.tool_choice
    if choice is None:
        return tools, None
    if choice.type == "tool":
        if choice.name is None or choice.name not in {t.name for t in tools}:
            raise InvalidRequestError("tool_choice names an unknown tool", field="tool_choice.name")
        return tools, choice.name
    return tools, {"auto": "auto", "any": "required", "none": "none"}[choice.type]


def _schema(body: _Body) -> dict[str, Any] | None:
    config = body.output_config
    if config is not None and config.format is not None:
        return config.format.schema
    return body.output_format.schema if body.output_format is not None else None


def decode_messages(body: Any) -> Decoded:
    """``POST /v1/messages`` → a chat request on the target named by ``model``."""
    parsed = _convert(body)
    if parsed.top_k is not None:
        raise InvalidRequestError("top_k is not supported", field="top_k")
    messages: list[ChatMessage] = []
    system = parsed.system
    if system:
        text = system if isinstance(system, str) else "\n\n".join(b.text for b in system)
        messages.append(ChatMessage(role="system", content=text))
    try:
        for index, message in enumerate(parsed.messages):
            messages.extend(_turn(message, index))
    except ValueError as exc:  # a value type's own check (an image without media_type ...)
        raise InvalidRequestError(str(exc), field="messages") from None
    tools, tool_choice = _tools(parsed)
    reasoning = None
    thinking = parsed.thinking
    if thinking is not None and thinking.type == "enabled":
        if thinking.budget_tokens is None:
            raise InvalidRequestError("thinking needs budget_tokens", field="thinking")
        reasoning = ReasoningOptions(budget_tokens=thinking.budget_tokens)
    stream = bool(parsed.stream)
    request = ChatRequest(
        messages=messages,
        max_tokens=parsed.max_tokens,
        temperature=parsed.temperature,
        top_p=parsed.top_p,
        stop=parsed.stop_sequences or None,
        tools=tools,
        tool_choice=tool_choice,
        output_schema=_schema(parsed),
        reasoning=reasoning,
        emit_tokens=stream,
    )
    return Decoded(parsed.model, stream, request, MessagesDetails(parsed.model))
