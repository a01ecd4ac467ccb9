"""Anthropic's Messages API on the wire: the request body out, typed events in.

Every stream event is decoded into one small ``Event`` struct holding only
the fields the driver reads; an event type this version does not know is
skipped, as Anthropic asks clients to do.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

from sipp import ChatRequest, Usage

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "ErrorDetail",
    "Event",
    "Message",
    "WireUsage",
    "finish_of",
    "merge_usage",
    "messages_body",
    "usage_of",
]

#: Anthropic requires ``max_tokens``; this is sent when the request has none.
DEFAULT_MAX_TOKENS: Final = 4096

_LENGTH_REASONS: Final = frozenset({"max_tokens", "model_context_window_exceeded"})


class WireUsage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class Block(msgspec.Struct):
    type: str = ""
    text: str | None = None


class Message(msgspec.Struct):
    id: str | None = None
    content: list[Block] | None = None
    stop_reason: str | None = None
    usage: WireUsage | None = None


class Delta(msgspec.Struct):
    type: str | None = None
    text: str | None = None
    stop_reason: str | None = None


class ErrorDetail(msgspec.Struct):
    type: str | None = None
    message: str | None = None


class Event(msgspec.Struct):
    """Any stream event; ``type`` says which of the other fields are there."""

    type: str
    message: Message | None = None
    content_block: Block | None = None
    delta: Delta | None = None
    usage: WireUsage | None = None
    error: ErrorDetail | None = None


def finish_of(reason: str | None) -> Literal["stop", "length"]:
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
    """Input tokens include the cache-creation and cache-read tokens."""
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
    return Usage(input_tokens=input_tokens, output_tokens=output, total_tokens=total)


def messages_body(model: str, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
    """``POST /messages``: system messages joined into ``system``, the rest in order.

    ``seed`` has no Anthropic equivalent and is not sent.
    """
    # Until this driver maps parts and tool turns, the core hands it text only.
    system = [m.text for m in request.messages if m.role == "system"]
    body: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": m.role, "content": m.text} for m in request.messages if m.role != "system"
        ],
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
    }
    if system:
        body["system"] = "\n\n".join(system)
    if stream:
        body["stream"] = True
    if request.options:
        body.update(request.options)
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop_sequences"] = request.stop
    return body
