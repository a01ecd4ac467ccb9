"""sipp answers as Anthropic Messages JSON and its SSE event sequence (sans-I/O).

A whole answer is one ``message``: a ``thinking`` block when the run
reasoned, a ``text`` block, then one ``tool_use`` block per call (``input``
the parsed arguments). Streamed, it is Anthropic's sequence::

    message_start, ping,
    (content_block_start, content_block_delta*, content_block_stop)*,
    message_delta (stop_reason, usage), message_stop

with ``thinking_delta``, ``text_delta`` and ``input_json_delta`` deltas. A
block opens when its first piece arrives and closes when a piece of another
block does (sipp drivers emit each tool call's pieces contiguously, as
Anthropic and OpenAI stream them). The thinking blocks' ``signature`` is
empty: it is Anthropic's proof over its own thinking, which this gateway
cannot make, and clients send thinking back only to Anthropic itself.

Errors: ``{"type": "error", "error": {"type", "message"}}`` with the
profile's status (the anthropic SDK maps 400/401/403/404/413/429/5xx to its
exception classes), and the same body as an ``error`` event mid-stream.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from sipp import TextResponse, TokenBatch, Usage
from sipp.gateway import encode_json

from .._surface import Failure
from .._surface_stream import sse
from ._decode import MessagesDetails

__all__ = ["MessageEvents", "error_body", "error_event", "message_body"]

_ERROR_TYPES: Final = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
    504: "timeout_error",
}
_STOP: Final = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def error_body(failure: Failure) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(failure.status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": failure.message}}


def error_event(failure: Failure) -> bytes:
    return sse(encode_json(error_body(failure)), "error")


def _usage(usage: Usage) -> dict[str, Any]:
    body: dict[str, Any] = {
        "input_tokens": usage.input_tokens or 0,
        "output_tokens": usage.output_tokens or 0,
    }
    if usage.cache_read_tokens is not None:
        body["cache_read_input_tokens"] = usage.cache_read_tokens
    if usage.cache_write_tokens is not None:
        body["cache_creation_input_tokens"] = usage.cache_write_tokens
    return body


def _input(arguments: str) -> Any:
    # A model that wrote invalid JSON arguments: the client still gets the call,
    # with its text kept where a reader can see it.
    try:
        return msgspec.json.decode(arguments or "{}")
    except msgspec.DecodeError:
        return {"_arguments": arguments}


def _message_id(request_id: str) -> str:
    return f"msg_{request_id}"


def message_body(details: MessagesDetails, response: TextResponse, request_id: str) -> Any:
    content: list[dict[str, Any]] = []
    if response.reasoning is not None:
        content.append({"type": "thinking", "thinking": response.reasoning, "signature": ""})
    if response.text or not response.tool_calls:
        content.append({"type": "text", "text": response.text})
    content.extend(
        {"type": "tool_use", "id": c.id, "name": c.name, "input": _input(c.arguments)}
        for c in response.tool_calls
    )
    return {
        "id": _message_id(request_id),
        "type": "message",
        "role": "assistant",
        "model": details.model,
        "content": content,
        "stop_reason": _STOP.get(response.finish_reason, "end_turn"),
        "stop_sequence": None,
        "usage": _usage(response.usage),
    }


def _event(name: str, body: dict[str, Any]) -> bytes:
    return sse(encode_json({"type": name, **body}), name)


class MessageEvents:
    """A chat run as Anthropic's stream events (see the module docstring)."""

    def __init__(self, details: MessagesDetails, request_id: str) -> None:
        self._details = details
        self._id = _message_id(request_id)
        self._index = -1
        self._open: str | None = None  # "thinking", "text" or "tool:<index>"

    def begin(self) -> bytes:
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._details.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return _event("message_start", {"message": message}) + _event("ping", {})

    def _switch(self, block: str, start: dict[str, Any]) -> bytes:
        if self._open == block:
            return b""
        frames = self._close()
        self._index += 1
        self._open = block
        return frames + _event(
            "content_block_start", {"index": self._index, "content_block": start}
        )

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return _event("content_block_stop", {"index": self._index})

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return _event("content_block_delta", {"index": self._index, "delta": delta})

    def batch(self, batch: TokenBatch) -> bytes:
        frames = b""
        if batch.reasoning:
            thinking = {"type": "thinking", "thinking": "", "signature": ""}
            frames += self._switch("thinking", thinking)
            frames += self._delta({"type": "thinking_delta", "thinking": batch.reasoning})
        if batch.text:
            frames += self._switch("text", {"type": "text", "text": ""})
            frames += self._delta({"type": "text_delta", "text": batch.text})
        for piece in batch.tool_calls:
            block = f"tool:{piece.index}"
            if self._open != block:
                start: dict[str, Any] = {
                    "type": "tool_use",
                    "id": piece.id or "",
                    "name": piece.name or "",
                    "input": {},
                }
                frames += self._switch(block, start)
            if piece.arguments:
                frames += self._delta({"type": "input_json_delta", "partial_json": piece.arguments})
        return frames

    def end(self, response: TextResponse) -> bytes:
        frames = b""
        if self._index < 0:
            # Anthropic's answers hold at least one block; an empty answer is an empty text.
            frames += self._switch("text", {"type": "text", "text": ""})
        frames += self._close()
        delta = {
            "stop_reason": _STOP.get(response.finish_reason, "end_turn"),
            "stop_sequence": None,
        }
        frames += _event("message_delta", {"delta": delta, "usage": _usage(response.usage)})
        return frames + _event("message_stop", {})
