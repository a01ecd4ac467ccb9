"""A sans-I/O Server-Sent Events decoder: bytes in, events out.

Written here rather than taken from httpx-sse because it is on the hottest
path of every streaming driver: it works on bytes, splits a whole chunk at
once and builds one small object per event, which measured faster than a
line-by-line text decoder (see ``benchmarks/``). It follows the parts of the
WHATWG event-stream rules that streaming APIs use:

* lines end with ``\\n``, ``\\r\\n`` or a lone ``\\r``, however the bytes are
  split into chunks; a leading byte-order mark is dropped;
* ``field: value`` with one optional space after the colon; ``data`` lines of
  one event are joined with ``\\n``; lines starting with ``:`` are comments;
* a blank line ends an event; an event with no ``data`` line is not
  dispatched (a lone comment is a keep-alive, never progress).

Truncation is the caller's business: :meth:`SSEDecoder.close` says whether an
event was cut off, and the profile layer decides what a missing terminal
event means.
"""

from __future__ import annotations

from typing import Final

import msgspec

__all__ = ["MAX_EVENT_BYTES", "SSEDecoder", "SSEError", "SSEEvent"]

#: An event (or a line without its end) larger than this is refused.
MAX_EVENT_BYTES: Final = 4 * 1024 * 1024


class SSEError(ValueError):
    """The byte stream cannot be an event stream (an event is too large)."""


class SSEEvent(msgspec.Struct, frozen=True, gc=False):
    #: The ``event`` field, ``"message"`` when absent.
    event: str
    data: str
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Feed bytes, get the complete events they finish."""

    __slots__ = ("_buffer", "_data", "_event", "_id", "_retry", "_size", "_skip_lf", "_started")

    def __init__(self) -> None:
        self._buffer = b""
        self._started = False
        self._event: str | None = None
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None
        self._size = 0
        self._skip_lf = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if not chunk:
            return []
        buffer = self._buffer + chunk if self._buffer else chunk
        if not self._started:
            if len(buffer) < 3 and b"\xef\xbb\xbf".startswith(buffer):
                self._buffer = buffer
                return []
            self._started = True
            if buffer.startswith(b"\xef\xbb\xbf"):
                buffer = buffer[3:]
        if self._skip_lf:
            # The previous chunk ended with CR, already taken as a line end: this
            # LF is the second half of that CRLF.
            self._skip_lf = False
            if buffer[:1] == b"\n":
                buffer = buffer[1:]
        if b"\r" in buffer:
            self._skip_lf = buffer.endswith(b"\r")
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buffer.split(b"\n")
        rest = lines.pop()
        if len(rest) > MAX_EVENT_BYTES:
            raise SSEError(f"an event-stream line exceeds {MAX_EVENT_BYTES} bytes")
        self._buffer = rest
        events: list[SSEEvent] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append(self._dispatch())
                else:
                    self._event = None
                continue
            if line[0] == 0x3A:  # ":" comment
                continue
            name, colon, value = line.partition(b":")
            if colon and value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                self._size += len(value)
                if self._size > MAX_EVENT_BYTES:
                    raise SSEError(f"an event exceeds {MAX_EVENT_BYTES} bytes")
                self._data.append(value.decode("utf-8", "replace"))
            elif name == b"event":
                self._event = value.decode("utf-8", "replace")
            elif name == b"id" and b"\x00" not in value:
                self._id = value.decode("utf-8", "replace")
            elif name == b"retry" and value.isdigit():
                self._retry = int(value)
        return events

    def _dispatch(self) -> SSEEvent:
        data = self._data[0] if len(self._data) == 1 else "\n".join(self._data)
        event = SSEEvent(self._event or "message", data, self._id, self._retry)
        self._data = []
        self._event = None
        self._size = 0
        return event

    def close(self) -> bool:
        """End of stream. True when a partial event was cut off (data without its blank line)."""
        cut = bool(self._data) or bool(self._buffer)
        self._buffer = b""
        self._data = []
        self._event = None
        self._size = 0
        self._skip_lf = False
        return cut
