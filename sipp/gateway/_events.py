"""The profile's SSE events, both ways, sans-I/O.

Writing: :func:`token_frame`, :func:`usage_frame`, :func:`done_frame` and
:func:`error_frame` (and the rich-chat extension's :func:`reasoning_frame` and
:func:`tool_call_frame`) return the exact bytes of one frame,
``event: <name>\\ndata: <compact JSON>\\n\\n``.

Reading: :class:`GatewayEventReader` takes the events an SSE decoder
(:class:`sipp.http.SSEDecoder`) produced and applies the profile's rules as a
literal transition table::

    state      event        ->  state      yields
    open       token        ->  open       GatewayToken
    open       reasoning    ->  open       GatewayReasoning   (extension)
    open       tool_call    ->  open       GatewayToolCall    (extension)
    open       usage        ->  open       GatewayUsage
    open       done         ->  done       GatewayDone
    open       error        ->  failed     GatewayStreamError
    any        data [DONE]  ->  (same)     nothing (ignored)
    done       anything     ->  error: events after done
    open       other name   ->  error: unknown event
    open       end of bytes ->  error: no terminal event

Protocol violations raise :class:`GatewayStreamViolation` (a ``ValueError``);
the driver turns it into ``sipp.ProtocolError``.
"""

from __future__ import annotations

from typing import Final, Literal, Protocol

import msgspec

from .._chat import ToolCallDelta
from ._profile import encode_json
from ._responses import tool_call_body

__all__ = [
    "GatewayDone",
    "GatewayEvent",
    "GatewayEventReader",
    "GatewayStreamError",
    "GatewayStreamViolation",
    "GatewayReasoning",
    "GatewayToken",
    "GatewayToolCall",
    "GatewayUsage",
    "done_frame",
    "error_frame",
    "reasoning_frame",
    "token_frame",
    "tool_call_frame",
    "usage_frame",
]


def _frame(name: bytes, data: object) -> bytes:
    return b"event: " + name + b"\ndata: " + encode_json(data) + b"\n\n"


def token_frame(text: str, sequence: int) -> bytes:
    return _frame(b"token", {"text": text, "sequence": sequence})


def reasoning_frame(text: str, sequence: int) -> bytes:
    return _frame(b"reasoning", {"text": text, "sequence": sequence})


def tool_call_frame(delta: ToolCallDelta) -> bytes:
    """One piece of a streamed tool call; ``id``/``name`` only when the piece has them."""
    return _frame(b"tool_call", tool_call_body(delta))


def usage_frame(usage: dict[str, int]) -> bytes:
    return _frame(b"usage", usage)


def done_frame(finish_reason: str) -> bytes:
    return _frame(b"done", {"finish_reason": finish_reason})


def error_frame(code: str, message: str) -> bytes:
    return _frame(b"error", {"error": {"code": code, "message": message}})


# -- reading -------------------------------------------------------------------


class GatewayToken(msgspec.Struct, frozen=True, kw_only=True):
    text: str
    sequence: int | None = None


class GatewayReasoning(msgspec.Struct, frozen=True, kw_only=True):
    """Reasoning text, apart from the answer (the rich-chat extension)."""

    text: str
    sequence: int | None = None


class GatewayToolCall(msgspec.Struct, frozen=True, kw_only=True):
    """A piece of tool call ``index`` (the rich-chat extension)."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class GatewayUsage(msgspec.Struct, frozen=True, kw_only=True):
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    reasoning_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None


class GatewayDone(msgspec.Struct, frozen=True, kw_only=True):
    finish_reason: str = "stop"


class _ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    code: str = "execution"
    message: str = ""


class _ErrorEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    error: _ErrorBody


class GatewayStreamError(msgspec.Struct, frozen=True, kw_only=True):
    """The in-band ``error`` event: the run failed after the stream began."""

    code: str
    message: str


GatewayEvent = (
    GatewayToken
    | GatewayReasoning
    | GatewayToolCall
    | GatewayUsage
    | GatewayDone
    | GatewayStreamError
)


class GatewayStreamViolation(ValueError):
    """The bytes are not a valid profile stream."""


class _SSEEventLike(Protocol):
    @property
    def event(self) -> str: ...

    @property
    def data(self) -> str: ...


_token_decoder: Final = msgspec.json.Decoder(GatewayToken)
_reasoning_decoder: Final = msgspec.json.Decoder(GatewayReasoning)
_tool_call_decoder: Final = msgspec.json.Decoder(GatewayToolCall)
_usage_decoder: Final = msgspec.json.Decoder(GatewayUsage)
_done_decoder: Final = msgspec.json.Decoder(GatewayDone)
_error_decoder: Final = msgspec.json.Decoder(_ErrorEnvelope)

_State = Literal["open", "done", "failed"]


class GatewayEventReader:
    """Feed decoded SSE events; get the profile's events, or a violation."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state: _State = "open"

    def feed(self, event: _SSEEventLike) -> GatewayEvent | None:
        name, data = event.event, event.data
        if data == "[DONE]":
            return None
        if self.state != "open":
            raise GatewayStreamViolation(f"event {name!r} after the stream's terminal event")
        try:
            if name == "token":
                return _token_decoder.decode(data)
            if name == "reasoning":
                return _reasoning_decoder.decode(data)
            if name == "tool_call":
                call = _tool_call_decoder.decode(data)
                if call.index < 0:
                    raise GatewayStreamViolation("tool_call event with a negative index")
                return call
            if name == "usage":
                return _usage_decoder.decode(data)
            if name == "done":
                self.state = "done"
                return _done_decoder.decode(data)
            if name == "error":
                self.state = "failed"
                body = _error_decoder.decode(data).error
                return GatewayStreamError(code=body.code, message=body.message)
        except msgspec.DecodeError as exc:
            raise GatewayStreamViolation(f"malformed {name!r} event: {exc}") from exc
        raise GatewayStreamViolation(f"unknown event {name!r} in a gateway stream")

    def close(self) -> None:
        """End of the byte stream: a stream without ``done`` or ``error`` is a violation."""
        if self.state == "open":
            raise GatewayStreamViolation("gateway stream ended without a done or error event")
