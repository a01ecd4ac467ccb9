"""The profile's SSE events, both ways, sans-I/O.

Writing: :func:`token_frame`, :func:`usage_frame`, :func:`done_frame` and
:func:`error_frame` return the exact bytes of one frame,
``event: <name>\\ndata: <compact JSON>\\n\\n``.

Reading: :class:`GatewayEventReader` takes the events an SSE decoder
(:class:`sipp.http.SSEDecoder`) produced and applies the profile's rules as a
literal transition table::

    state      event        ->  state      yields
    open       token        ->  open       GatewayToken
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

from ._profile import encode_json

__all__ = [
    "GatewayDone",
    "GatewayEvent",
    "GatewayEventReader",
    "GatewayStreamError",
    "GatewayStreamViolation",
    "GatewayToken",
    "GatewayUsage",
    "done_frame",
    "error_frame",
    "token_frame",
    "usage_frame",
]


def _frame(name: bytes, data: object) -> bytes:
    return b"event: " + name + b"\ndata: " + encode_json(data) + b"\n\n"


def token_frame(text: str, sequence: int) -> bytes:
    return _frame(b"token", {"text": text, "sequence": sequence})


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


class GatewayUsage(msgspec.Struct, frozen=True, kw_only=True):
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None


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


GatewayEvent = GatewayToken | GatewayUsage | GatewayDone | GatewayStreamError


class GatewayStreamViolation(ValueError):
    """The bytes are not a valid profile stream."""


class _SSEEventLike(Protocol):
    @property
    def event(self) -> str: ...

    @property
    def data(self) -> str: ...


_token_decoder: Final = msgspec.json.Decoder(GatewayToken)
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
