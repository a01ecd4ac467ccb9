"""The OpenAI wire format: request bodies out, typed chunks and answers in.

Decoders are built once at import: each streamed chunk is decoded straight
into small ``msgspec.Struct``s that hold only the fields the driver reads.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

from sipp import ChatRequest, QueryRequest, Usage

__all__ = [
    "ChatChunk",
    "ChatCompletion",
    "Completion",
    "CompletionChunk",
    "Embeddings",
    "WireError",
    "chat_body",
    "completion_body",
    "embed_body",
    "finish_of",
    "pooled",
    "usage_of",
]

#: ``finish_reason`` values meaning "cut by the token limit"; anything else is ``stop``.
LENGTH_REASONS: Final = frozenset({"length", "max_tokens", "max_output_tokens"})


class WireError(msgspec.Struct):
    message: str | None = None
    type: str | None = None
    code: str | int | None = None


class WireUsage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


class _Delta(msgspec.Struct):
    content: str | None = None


class _ChatChunkChoice(msgspec.Struct):
    delta: _Delta | None = None
    finish_reason: str | None = None


class ChatChunk(msgspec.Struct):
    """One ``chat.completion.chunk``; an ``error`` member makes it an error, not text."""

    id: str | None = None
    choices: list[_ChatChunkChoice] | None = None
    usage: WireUsage | None = None
    error: WireError | str | None = None


class _TextChoice(msgspec.Struct):
    text: str | None = None
    finish_reason: str | None = None


class CompletionChunk(msgspec.Struct):
    """One streamed ``text_completion`` chunk (also the whole non-streamed answer)."""

    id: str | None = None
    choices: list[_TextChoice] | None = None
    usage: WireUsage | None = None
    error: WireError | str | None = None


Completion = CompletionChunk


class _Message(msgspec.Struct):
    content: str | None = None


class _ChatChoice(msgspec.Struct):
    message: _Message | None = None
    finish_reason: str | None = None


class ChatCompletion(msgspec.Struct):
    id: str | None = None
    choices: list[_ChatChoice] | None = None
    usage: WireUsage | None = None
    error: WireError | str | None = None


class _Embedding(msgspec.Struct):
    #: One vector; some compatible servers send one per token instead.
    embedding: list[float | list[float]]


class Embeddings(msgspec.Struct):
    data: list[_Embedding]
    usage: WireUsage | None = None
    id: str | None = None


def pooled(values: list[float | list[float]]) -> tuple[list[float], str | None]:
    """The vector, mean-pooling a per-token matrix (then reported as ``"mean"``)."""
    if not values or not isinstance(values[0], list):
        if any(isinstance(v, list) for v in values):
            raise ValueError("an embedding mixes numbers and vectors")
        return values, None  # type: ignore[return-value]
    rows: list[list[float]] = []
    for row in values:
        if not isinstance(row, list) or len(row) != len(values[0]):
            raise ValueError("a per-token embedding matrix has rows of different sizes")
        rows.append(row)
    count = len(rows)
    return [sum(column) / count for column in zip(*rows, strict=True)], "mean"


def finish_of(reason: str | None) -> Literal["stop", "length"]:
    return "length" if reason in LENGTH_REASONS else "stop"


def usage_of(usage: WireUsage | None) -> Usage:
    if usage is None:
        return Usage()
    total = usage.total_tokens
    if total is None and usage.prompt_tokens is not None and usage.completion_tokens is not None:
        total = usage.prompt_tokens + usage.completion_tokens
    return Usage(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        total_tokens=total,
    )


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
    return body


def completion_body(
    model: str, request: QueryRequest, *, stream: bool, stream_usage: bool
) -> dict[str, Any]:
    """``POST /completions``."""
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
) -> dict[str, Any]:
    """``POST /chat/completions``."""
    messages = [{"role": m.role, "content": m.content} for m in request.messages]
    return _options(
        {"model": model, "messages": messages},
        request,
        stream=stream,
        stream_usage=stream_usage,
        max_tokens_field=max_tokens_field,
    )


def embed_body(model: str, text: str | list[str], options: dict[str, Any] | None) -> dict[str, Any]:
    """``POST /embeddings``, always as floats."""
    body: dict[str, Any] = {"model": model, "input": text}
    if options:
        body.update(options)
    body["encoding_format"] = "float"
    return body
