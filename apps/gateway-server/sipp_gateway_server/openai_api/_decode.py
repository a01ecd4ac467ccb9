"""OpenAI request bodies into sipp requests (sans-I/O).

The bodies are converted with ``msgspec`` into the structs below, so a wrong
type anywhere is a 400 naming its path (``$.messages[0].content``), and then
mapped onto :class:`sipp.ChatRequest`, :class:`sipp.QueryRequest` or
:class:`sipp.EmbedRequest`.

Fields this gateway does not know are ignored, as OpenAI-compatible servers
usually do (SDKs and tools send vendor fields: ``user``, ``metadata``,
``store`` ...). Fields it knows but cannot honour are refused rather than
silently dropped: ``n`` > 1, ``logprobs``, ``echo``, ``best_of`` > 1,
``suffix``, token-array prompts and inputs, ``dimensions``.

Mapping: ``developer`` messages are system messages; ``max_completion_tokens``
wins over ``max_tokens``; ``response_format`` ``json_schema`` is the request's
``output_schema`` and ``json_object`` the schema ``{"type": "object"}``;
``reasoning_effort`` is ``reasoning.effort`` (``minimal`` counts as ``low``);
an image part's ``data:`` URL becomes inline bytes, any other URL stays a URL.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any, Final, Literal

import msgspec

from sipp import (
    ChatMessage,
    ChatRequest,
    EmbedRequest,
    ImagePart,
    InvalidRequestError,
    QueryRequest,
    ReasoningOptions,
    TextPart,
    Tool,
    ToolCall,
)

from .._surface import Decoded

__all__ = ["ChatDetails", "EmbedDetails", "decode_chat", "decode_completion", "decode_embeddings"]

_Positive = Annotated[int, msgspec.Meta(ge=1)]
_DATA_URL: Final = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,(.*)", re.DOTALL)


class _Loose(msgspec.Struct, kw_only=True):
    """Unknown fields are ignored (see the module docstring)."""


class _ImageURL(_Loose, kw_only=True):
    url: str
    detail: str | None = None


class _TextPart(_Loose, tag="text", tag_field="type", kw_only=True):
    text: str


class _ImagePart(_Loose, tag="image_url", tag_field="type", kw_only=True):
    image_url: _ImageURL


class _Function(_Loose, kw_only=True):
    name: str
    arguments: str = "{}"


class _ToolCall(_Loose, kw_only=True):
    id: str
    function: _Function
    type: Literal["function"] = "function"


class _Message(_Loose, kw_only=True):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[_TextPart | _ImagePart] | None = None
    tool_calls: list[_ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None


class _FunctionDef(_Loose, kw_only=True):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class _Tool(_Loose, kw_only=True):
    type: Literal["function"]
    function: _FunctionDef


class _ChoiceFunction(_Loose, kw_only=True):
    name: str


class _NamedChoice(_Loose, kw_only=True):
    type: Literal["function"]
    function: _ChoiceFunction


class _JSONSchema(_Loose, kw_only=True):
    name: str = "response"
    schema: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


class _ResponseFormat(_Loose, kw_only=True):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: _JSONSchema | None = None


class _StreamOptions(_Loose, kw_only=True):
    include_usage: bool | None = None


class _Sampling(_Loose, kw_only=True):
    model: str
    max_tokens: _Positive | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool | None = None
    stream_options: _StreamOptions | None = None
    n: int | None = None
    logprobs: bool | int | None = None


class _ChatBody(_Sampling, kw_only=True):
    messages: Annotated[list[_Message], msgspec.Meta(min_length=1)]
    max_completion_tokens: _Positive | None = None
    tools: list[_Tool] | None = None
    tool_choice: Literal["auto", "none", "required"] | _NamedChoice | None = None
    response_format: _ResponseFormat | None = None
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
    parallel_tool_calls: bool | None = None


class _CompletionBody(_Sampling, kw_only=True):
    prompt: str | list[str]
    echo: bool | None = None
    best_of: int | None = None
    suffix: str | None = None


class _EmbeddingsBody(_Loose, kw_only=True):
    model: str
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None


class ChatDetails(msgspec.Struct, frozen=True):
    """What the encoders need besides the run: the model name and usage in the stream."""

    model: str
    include_usage: bool


class EmbedDetails(msgspec.Struct, frozen=True):
    model: str
    encoding_format: str


def _convert(body: Any, kind: type[Any]) -> Any:
    if not isinstance(body, dict):
        raise InvalidRequestError("the request body must be a JSON object")
    try:
        return msgspec.convert(body, kind)
    except msgspec.ValidationError as exc:
        text = str(exc)
        field = text.rpartition("- at `$.")[2].rstrip("`") if "- at `$." in text else None
        raise InvalidRequestError(text, field=field) from None


def _refuse_unsupported(body: _Sampling) -> None:
    if body.n is not None and body.n != 1:
        raise InvalidRequestError("only n=1 is supported", field="n")
    if body.logprobs:
        raise InvalidRequestError("logprobs are not supported", field="logprobs")


def _stop(stop: str | list[str] | None) -> list[str] | None:
    if stop is None:
        return None
    return [stop] if isinstance(stop, str) else stop


def _image(url: str, index: str) -> ImagePart:
    match = _DATA_URL.fullmatch(url)
    if match is None:
        if not url.startswith(("http://", "https://")):
            raise InvalidRequestError("an image URL must be http(s) or data:", field=index)
        return ImagePart(url=url)
    try:
        data = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequestError("the image data URL is not valid base64", field=index) from None
    return ImagePart(data=data, media_type=match.group(1))


def _content(message: _Message, at: str) -> str | list[TextPart | ImagePart]:
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts: list[TextPart | ImagePart] = []
    for index, part in enumerate(content):
        if isinstance(part, _TextPart):
            parts.append(TextPart(text=part.text))
        else:
            parts.append(_image(part.image_url.url, f"{at}.content[{index}].image_url.url"))
    return parts


def _message(message: _Message, index: int) -> ChatMessage:
    at = f"messages[{index}]"
    role = "system" if message.role == "developer" else message.role
    if message.content is None and role != "assistant":
        raise InvalidRequestError(f"{at}: a {role} message needs content", field=f"{at}.content")
    calls = None
    if message.tool_calls:
        if role != "assistant":
            raise InvalidRequestError("only assistant messages carry tool_calls", field=at)
        calls = [
            ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments)
            for c in message.tool_calls
        ]
    try:
        return ChatMessage(
            role=role,
            content=_content(message, at),
            tool_calls=calls,
            tool_call_id=message.tool_call_id,
        )
    except ValueError as exc:
        raise InvalidRequestError(f"{at}: {exc}", field=at) from None


def _tools(body: _ChatBody) -> tuple[list[Tool] | None, str | None]:
    tools = None
    if body.tools:
        tools = []
        for index, tool in enumerate(body.tools):
            spec = tool.function
            try:
                tools.append(
                    Tool(
                        name=spec.name,
                        description=spec.description or "",
                        parameters=spec.parameters or {"type": "object", "properties": {}},
                    )
                )
            except ValueError as exc:
                raise InvalidRequestError(
                    f"tools[{index}]: {exc}", field=f"tools[{index}]"
                ) from None
    choice = body.tool_choice
    named = choice.function.name if isinstance(choice, _NamedChoice) else choice
    if named not in (None, "none", "auto", "required") and (
        not tools or named not in {t.name for t in tools}
    ):
        raise InvalidRequestError(
            f"tool_choice names an unknown tool {named!r}", field="tool_choice"
        )
    return (tools, named) if tools else (None, None if named == "none" else named)


def _schema(response_format: _ResponseFormat | None) -> dict[str, Any] | None:
    if response_format is None or response_format.type == "text":
        return None
    if response_format.type == "json_object":
        return {"type": "object"}
    spec = response_format.json_schema
    if spec is None or spec.schema is None:
        raise InvalidRequestError(
            "response_format json_schema needs json_schema.schema", field="response_format"
        )
    return spec.schema


def decode_chat(body: Any) -> Decoded:
    """``POST /v1/chat/completions`` → a chat request on the target named by ``model``."""
    chat: _ChatBody = _convert(body, _ChatBody)
    _refuse_unsupported(chat)
    tools, tool_choice = _tools(chat)
    effort = chat.reasoning_effort
    reasoning = None
    if effort is not None:
        reasoning = ReasoningOptions(effort="low" if effort == "minimal" else effort)
    stream = bool(chat.stream)
    request = ChatRequest(
        messages=[_message(m, i) for i, m in enumerate(chat.messages)],
        max_tokens=chat.max_completion_tokens or chat.max_tokens,
        temperature=chat.temperature,
        top_p=chat.top_p,
        stop=_stop(chat.stop),
        seed=chat.seed,
        tools=tools,
        tool_choice=tool_choice if tools else None,
        output_schema=_schema(chat.response_format),
        reasoning=reasoning,
        emit_tokens=stream,
    )
    options = chat.stream_options
    include = bool(stream and options is not None and options.include_usage)
    return Decoded(chat.model, stream, request, ChatDetails(chat.model, include))


def decode_completion(body: Any) -> Decoded:
    """``POST /v1/completions`` → a query (one prompt) on the target named by ``model``."""
    completion: _CompletionBody = _convert(body, _CompletionBody)
    _refuse_unsupported(completion)
    if completion.echo:
        raise InvalidRequestError("echo is not supported", field="echo")
    if completion.best_of is not None and completion.best_of != 1:
        raise InvalidRequestError("only best_of=1 is supported", field="best_of")
    if completion.suffix:
        raise InvalidRequestError("suffix is not supported", field="suffix")
    prompt = completion.prompt
    if isinstance(prompt, list):
        if len(prompt) != 1:
            raise InvalidRequestError("exactly one prompt is supported", field="prompt")
        prompt = prompt[0]
    stream = bool(completion.stream)
    request = QueryRequest(
        prompt=prompt,
        max_tokens=completion.max_tokens,
        temperature=completion.temperature,
        top_p=completion.top_p,
        stop=_stop(completion.stop),
        seed=completion.seed,
        emit_tokens=stream,
    )
    options = completion.stream_options
    include = bool(stream and options is not None and options.include_usage)
    return Decoded(completion.model, stream, request, ChatDetails(completion.model, include))


def decode_embeddings(body: Any) -> Decoded:
    """``POST /v1/embeddings`` → an embedding of one string or a list of them."""
    embed: _EmbeddingsBody = _convert(body, _EmbeddingsBody)
    if embed.dimensions is not None:
        raise InvalidRequestError("dimensions is not supported", field="dimensions")
    if isinstance(embed.input, list) and not embed.input:
        raise InvalidRequestError("input must not be empty", field="input")
    details = EmbedDetails(embed.model, embed.encoding_format)
    # One input goes as a string, so targets without batch embedding serve it too.
    text = embed.input
    inputs = text[0] if isinstance(text, list) and len(text) == 1 else text
    return Decoded(embed.model, False, EmbedRequest(input=inputs), details)
