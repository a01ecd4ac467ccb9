"""Anthropic's Messages API on the wire: typed answers and stream events in.

Every stream event is decoded into one small ``Event`` struct holding only
the fields the driver reads; an event type this version does not know is
skipped, as Anthropic asks clients to do. The request body is built in
``_body``.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from sipp import Usage

__all__ = [
    "Block",
    "Delta",
    "ErrorDetail",
    "Event",
    "Message",
    "WireUsage",
    "finish_of",
    "merge_usage",
    "usage_of",
]

_LENGTH_REASONS: Final = frozenset({"max_tokens", "model_context_window_exceeded"})


class WireUsage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class Block(msgspec.Struct):
    """A content block of any type; ``type`` says which fields are there.

    ``text``: text blocks. ``id``/``name``/``input``: tool_use blocks, with
    ``input`` kept as the model's raw JSON so a non-streamed call's arguments
    reach the caller byte for byte. ``thinking``/``signature``: thinking
    blocks. ``data``: redacted_thinking blocks (encrypted, only echoed back).
    """

    type: str = ""
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: msgspec.Raw = msgspec.Raw()
    thinking: str | None = None
    signature: str | None = None
    data: str | None = None


class Message(msgspec.Struct):
    id: str | None = None
    content: list[Block] | None = None
    stop_reason: str | None = None
    usage: WireUsage | None = None


class Delta(msgspec.Struct):
    """A ``content_block_delta``'s delta (one of the text fields by ``type``) or a
    ``message_delta``'s (``stop_reason``)."""

    type: str | None = None
    text: str | None = None
    partial_json: str | None = None
    thinking: str | None = None
    signature: str | None = None
    stop_reason: str | None = None


class ErrorDetail(msgspec.Struct):
    type: str | None = None
    message: str | None = None


class Event(msgspec.Struct):
    """Any stream event; ``type`` says which of the other fields are there."""

    type: str
    #: The content block a ``content_block_*`` event is about, counted over all blocks.
    index: int = -1
    message: Message | None = None
    content_block: Block | None = None
    delta: Delta | None = None
    usage: WireUsage | None = None
    error: ErrorDetail | None = None


def finish_of(reason: str | None) -> Literal["stop", "length", "tool_calls"]:
    """``tool_use`` means the model waits for tool results; ``end_turn``,
    ``stop_sequence``, ``pause_turn`` and ``refusal`` all end the answer."""
    if reason == "tool_use":
        return "tool_calls"
    return "length" if reason in _LENGTH_REASONS else "stop"


def merge_usage(base: WireUsage | None, update: WireUsage | None) -> WireUsage | None:
    """``message_delta`` usage is cumulative: its fields replace ``message_start``'s."""
    if update is None:
        return base
    if base is None:
        return update
    return WireUsage(
        input_tokens=_pick(update.input_tokens, base.input_tokens),
        output_tokens=_pick(update.output_tokens, base.output_tokens),
        cache_creation_input_tokens=_pick(
            update.cache_creation_input_tokens, base.cache_creation_input_tokens
        ),
        cache_read_input_tokens=_pick(update.cache_read_input_tokens, base.cache_read_input_tokens),
    )


def _pick(new: int | None, old: int | None) -> int | None:
    return new if new is not None else old


def usage_of(usage: WireUsage | None) -> Usage:
    """Input tokens include the cache-creation and cache-read tokens, which are
    also reported apart (``cache_write_tokens``, ``cache_read_tokens``).

    Anthropic counts thinking inside ``output_tokens`` and reports no separate
    figure, so ``reasoning_tokens`` stays unknown.
    """
    if usage is None:
        return Usage()
    parts = (
        usage.input_tokens,
        usage.cache_creation_input_tokens,
        usage.cache_read_input_tokens,
    )
    known = [p for p in parts if p is not None]
    input_tokens = sum(known) if known else None
    output = usage.output_tokens
    total = input_tokens + output if input_tokens is not None and output is not None else None
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output,
        total_tokens=total,
        cache_read_tokens=usage.cache_read_input_tokens,
        cache_write_tokens=usage.cache_creation_input_tokens,
    )
