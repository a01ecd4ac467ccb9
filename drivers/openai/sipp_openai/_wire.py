"""The OpenAI wire format, inbound: typed chunks and answers, usage, finish reasons.

Decoders are built once at import: each streamed chunk is decoded straight
into small ``msgspec.Struct``s that hold only the fields the driver reads, so
a plain-text chunk costs one decode and a few attribute reads. (Request
bodies are built in ``_bodies``.)
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

from sipp import Usage

__all__ = [
    "ChatChunk",
    "ChatCompletion",
    "Completion",
    "CompletionChunk",
    "Embeddings",
    "ToolCallPiece",
    "WireError",
    "arguments_text",
    "finish_of",
    "pooled",
    "usage_of",
]

#: ``finish_reason`` values meaning "cut by the token limit".
LENGTH_REASONS: Final = frozenset({"length", "max_tokens", "max_output_tokens"})
#: ... and meaning "the model called tools" (``function_call`` is the legacy name).
TOOL_REASONS: Final = frozenset({"tool_calls", "function_call"})


class WireError(msgspec.Struct):
    message: str | None = None
    type: str | None = None
    code: str | int | None = None


class _CompletionDetails(msgspec.Struct):
    reasoning_tokens: int | None = None


class _PromptDetails(msgspec.Struct):
    cached_tokens: int | None = None


class WireUsage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    completion_tokens_details: _CompletionDetails | None = None
    prompt_tokens_details: _PromptDetails | None = None


class _Function(msgspec.Struct):
    name: str | None = None
    #: A JSON text; a few compatible servers send the object itself.
    arguments: str | dict[str, Any] | None = None


class ToolCallPiece(msgspec.Struct):
    """One entry of ``tool_calls``: a whole call, or a streamed piece of one."""

    #: Absent on whole (non-streamed) calls and from a few servers: then the list position.
    index: int | None = None
    id: str | None = None
    function: _Function | None = None


class _Delta(msgspec.Struct):
    content: str | None = None
    #: vLLM, llama.cpp's server, DeepSeek.
    reasoning_content: str | None = None
    #: OpenRouter, newer vLLM.
    reasoning: str | None = None
    tool_calls: list[ToolCallPiece] | None = None
    #: The pre-tools form of one call; read only from servers that send no ``tool_calls``.
    function_call: _Function | None = None


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


class _ChatChoice(msgspec.Struct):
    message: _Delta | None = None
    finish_reason: str | None = None


class ChatCompletion(msgspec.Struct):
    id: str | None = None
    choices: list[_ChatChoice] | None = None
    usage: WireUsage | None = None
    error: WireError | str | None = None


class _Embedding(msgspec.Struct):
    #: One vector; some compatible servers send one per token instead.
    embedding: list[float | list[float]]
    index: int | None = None


class Embeddings(msgspec.Struct):
    data: list[_Embedding]
    usage: WireUsage | None = None
    id: str | None = None


def arguments_text(arguments: str | dict[str, Any] | None) -> str:
    if arguments is None:
        return ""
    if isinstance(arguments, str):
        return arguments
    return msgspec.json.encode(arguments).decode()


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


def finish_of(
    reason: str | None, called_tools: bool = False
) -> Literal["stop", "length", "tool_calls"]:
    """Ours for the server's ``finish_reason``.

    A server that called tools but says ``stop`` (some compatible servers do)
    still reports ``tool_calls``: the caller's loop keys on it.
    """
    if reason in LENGTH_REASONS:
        return "length"
    if called_tools or reason in TOOL_REASONS:
        return "tool_calls"
    return "stop"


def usage_of(usage: WireUsage | None) -> Usage:
    if usage is None:
        return Usage()
    total = usage.total_tokens
    if total is None and usage.prompt_tokens is not None and usage.completion_tokens is not None:
        total = usage.prompt_tokens + usage.completion_tokens
    completion = usage.completion_tokens_details
    prompt = usage.prompt_tokens_details
    return Usage(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        total_tokens=total,
        reasoning_tokens=completion.reasoning_tokens if completion is not None else None,
        cache_read_tokens=prompt.cached_tokens if prompt is not None else None,
    )
