"""Sans-I/O HTTP/1.1 response parsing: the head, and the three body framings.

Everything here works on ``bytes`` with ``bytes.find`` and raises
``httpx.RemoteProtocolError`` on anything malformed; no sockets, so the
hypothesis tests can throw arbitrary bytes at it. Limits are hard: a server
cannot make us buffer more than :data:`MAX_HEAD` bytes of head or
:data:`MAX_LINE` bytes of a chunk-size or trailer line.

Framing follows RFC 9112 section 6.3: no body for HEAD, 1xx, 204 and 304;
``Transfer-Encoding: chunked`` wins over ``Content-Length``; otherwise the
body runs until the server closes (and the connection is not reused).
"""

from __future__ import annotations

import re
from typing import Final

import httpx

__all__ = [
    "MAX_HEAD",
    "MAX_HEADERS",
    "MAX_LINE",
    "BodyReader",
    "ChunkedReader",
    "CloseReader",
    "Head",
    "LengthReader",
    "find_head_end",
    "parse_head",
    "reader_for",
]

#: The status line and all headers of one response, in bytes.
MAX_HEAD: Final = 64 * 1024
#: Header fields in one response (or trailer section).
MAX_HEADERS: Final = 256
#: One chunk-size line or trailer line.
MAX_LINE: Final = 8 * 1024

# RFC 9110 token characters for field names; values may hold visible ASCII,
# obs-text, spaces and tabs, but no other control characters.
_TOKEN: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE: Final = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_HEX: Final = re.compile(rb"[0-9A-Fa-f]{1,16}")
_DIGITS: Final = re.compile(rb"[0-9]{1,19}")
_STATUS: Final = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?")


def _error(message: str) -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError(message)


def find_head_end(buffer: bytes | bytearray, start: int = 0) -> int:
    """The index just past the blank line ending the head, or -1 while incomplete.

    ``start`` lets a caller skip bytes already searched (minus three, for a
    terminator split across reads). A head larger than :data:`MAX_HEAD` raises.
    """
    end = buffer.find(b"\r\n\r\n", start)
    if end < 0:
        if len(buffer) > MAX_HEAD:
            raise _error(f"response head larger than {MAX_HEAD} bytes")
        return -1
    if end + 4 > MAX_HEAD:
        raise _error(f"response head larger than {MAX_HEAD} bytes")
    return end + 4


class Head:
    """A parsed status line and header block (names as sent; ``lower`` for framing)."""

    __slots__ = ("chunked", "close", "content_length", "headers", "http11", "reason", "status")

    def __init__(
        self,
        status: int,
        reason: bytes,
        http11: bool,
        headers: list[tuple[bytes, bytes]],
        content_length: int | None,
        chunked: bool,
        close: bool,
    ) -> None:
        self.status = status
        self.reason = reason
        self.http11 = http11
        self.headers = headers
        self.content_length = content_length
        self.chunked = chunked
        #: The server will close after this response (or HTTP/1.0): never reuse.
        self.close = close


def parse_head(head: bytes) -> Head:
    """Parse ``head`` (status line through the blank line, as found by :func:`find_head_end`)."""
    lines = head[:-4].split(b"\r\n")
    match = _STATUS.fullmatch(lines[0])
    if match is None:
        raise _error(f"malformed status line {lines[0][:100]!r}")
    if len(lines) > MAX_HEADERS + 1:
        raise _error(f"more than {MAX_HEADERS} header fields")
    http11 = match.group(1) == b"1"
    headers: list[tuple[bytes, bytes]] = []
    lengths: set[bytes] = set()
    chunked = False
    close = not http11
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or _TOKEN.fullmatch(name) is None:
            # Also refuses obsolete line folding (a line starting with a space).
            raise _error(f"malformed header line {line[:100]!r}")
        value = value.strip(b" \t")
        if _BAD_VALUE.search(value) is not None:
            raise _error(f"control character in header {name[:100]!r}")
        headers.append((name, value))
        lower = name.lower()
        if lower == b"content-length":
            lengths.update(part.strip(b" \t") for part in value.split(b","))
        elif lower == b"transfer-encoding":
            if value.lower() != b"chunked" or chunked:
                raise _error(f"unsupported transfer-encoding {value[:100]!r}")
            chunked = True
        elif lower == b"connection":
            tokens = {part.strip(b" \t").lower() for part in value.split(b",")}
            close = close or b"close" in tokens
    content_length = None
    if lengths and not chunked:
        if len(lengths) > 1:
            raise _error("conflicting content-length values")
        (length,) = lengths
        if _DIGITS.fullmatch(length) is None:
            raise _error(f"malformed content-length {length[:100]!r}")
        content_length = int(length)
    elif lengths:
        close = True  # both framings: chunked wins, but the peer is suspect (RFC 9112 6.3)
    status = int(match.group(2))
    if status < 100:
        raise _error(f"invalid status code {status}")
    return Head(status, match.group(3) or b"", http11, headers, content_length, chunked, close)


class BodyReader:
    """Turns received bytes into body bytes; ``done`` once the message is complete.

    :meth:`feed` returns ``(body, rest)``: ``rest`` is what followed the end of
    the message (non-empty only when ``done``). :meth:`end` is called when the
    peer closed; it raises if the body was cut short.
    """

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = False

    def feed(self, data: bytes) -> tuple[bytes, bytes]:
        raise NotImplementedError

    def end(self) -> None:
        raise _error("peer closed connection without sending complete message body")


class LengthReader(BodyReader):
    """A ``Content-Length`` body."""

    __slots__ = ("_left",)

    def __init__(self, length: int) -> None:
        super().__init__()
        self._left = length
        self.done = length == 0

    def feed(self, data: bytes) -> tuple[bytes, bytes]:
        left = self._left
        if len(data) < left:
            self._left = left - len(data)
            return data, b""
        self._left = 0
        self.done = True
        if len(data) == left:
            return data, b""
        return data[:left], data[left:]


class CloseReader(BodyReader):
    """A body delimited by the server closing the connection."""

    __slots__ = ()

    def feed(self, data: bytes) -> tuple[bytes, bytes]:
        return data, b""

    def end(self) -> None:
        self.done = True


# Chunked-decoder states.
_SIZE: Final = 0
_DATA: Final = 1
_DATA_END: Final = 2
_TRAILER: Final = 3


class ChunkedReader(BodyReader):
    """A ``Transfer-Encoding: chunked`` body; trailers are checked and dropped.

    All the chunks one network read completed come back as one ``bytes``, so a
    stream of small SSE chunks costs one iteration per read, not per chunk.
    """

    __slots__ = ("_left", "_pending", "_state", "_trailers")

    def __init__(self) -> None:
        super().__init__()
        self._state = _SIZE
        self._left = 0
        self._pending = b""  # an incomplete size line, chunk end or trailer line
        self._trailers = 0

    def feed(self, data: bytes) -> tuple[bytes, bytes]:
        if self._pending:
            data = self._pending + data
            self._pending = b""
        pieces: list[bytes] = []
        pos = 0
        size = len(data)
        state = self._state
        while pos < size:
            if state == _DATA:
                take = min(self._left, size - pos)
                pieces.append(data[pos : pos + take])
                pos += take
                self._left -= take
                if self._left == 0:
                    state = _DATA_END
            elif state == _DATA_END:
                if size - pos < 2:
                    break
                if data[pos : pos + 2] != b"\r\n":
                    raise _error("chunk data not followed by CRLF")
                pos += 2
                state = _SIZE
            else:
                end = data.find(b"\r\n", pos, pos + MAX_LINE + 2)
                if end < 0:
                    if size - pos > MAX_LINE:
                        raise _error(f"chunked line longer than {MAX_LINE} bytes")
                    break
                line = data[pos:end]
                pos = end + 2
                if state == _SIZE:
                    digits = line.partition(b";")[0].strip(b" \t")
                    if _HEX.fullmatch(digits) is None:
                        raise _error(f"malformed chunk size {line[:100]!r}")
                    self._left = int(digits, 16)
                    state = _DATA if self._left else _TRAILER
                elif not line:
                    self.done = True
                    self._state = state
                    return b"".join(pieces), data[pos:]
                else:
                    self._trailers += 1
                    name, colon, _ = line.partition(b":")
                    if not colon or _TOKEN.fullmatch(name) is None:
                        raise _error(f"malformed trailer line {line[:100]!r}")
                    if self._trailers > MAX_HEADERS:
                        raise _error(f"more than {MAX_HEADERS} trailer fields")
        self._state = state
        self._pending = data[pos:]
        if len(pieces) == 1:
            return pieces[0], b""
        return b"".join(pieces), b""


class _Empty(BodyReader):
    __slots__ = ()

    def __init__(self) -> None:
        super().__init__()
        self.done = True

    def feed(self, data: bytes) -> tuple[bytes, bytes]:
        return b"", data


def reader_for(head: Head, method: bytes) -> BodyReader:
    """The body framing of a final response ``head`` to a ``method`` request."""
    if method == b"HEAD" or head.status in (204, 304) or head.status < 200:
        return _Empty()
    if head.chunked:
        return ChunkedReader()
    if head.content_length is not None:
        return LengthReader(head.content_length)
    head.close = True
    return CloseReader()
