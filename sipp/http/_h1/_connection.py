"""One HTTP/1.1 connection: write a request, read its response head and body.

A thin I/O shell around :mod:`._parse`. Errors from the byte stream become
httpx's: ``ReadError``/``WriteError`` for a broken socket, ``ReadTimeout``/
``WriteTimeout`` when the request's timeout extension sets those phases,
``RemoteProtocolError`` for a peer that closes early or sends garbage.
Whether the connection can carry another request (:attr:`Connection.reusable`)
is decided here, from the response's framing and ``Connection`` header.
"""

from __future__ import annotations

import array
import select
import ssl
import time
from typing import Final

import anyio
import anyio.abc
import httpx

from ._parse import BodyReader, Head, find_head_end, parse_head, reader_for

try:  # Unix: idle connections are checked before reuse (see Connection.looks_alive)
    import fcntl
    import termios
except ImportError:  # pragma: no cover
    fcntl = termios = None  # type: ignore[assignment]

__all__ = ["Connection", "StaleConnection"]

_poll = getattr(select, "poll", None) if fcntl is not None else None

#: Bytes asked of the socket per read.
READ_SIZE: Final = 64 * 1024

# What a broken socket, a broken TLS session or a closed stream raise, per backend.
_BROKEN: Final = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError, ssl.SSLError)


class StaleConnection(Exception):
    """A reused connection failed before any response byte: the request may be retried."""


class Connection:
    """A byte stream to one origin plus the bytes read past the last response."""

    __slots__ = (
        "_buffer", "_fd", "_stream", "_tls", "idle_since", "origin", "requests", "reusable",
    )  # fmt: skip

    def __init__(
        self, stream: anyio.abc.ByteStream, origin: tuple[bytes, bytes, int], *, tls: bool
    ) -> None:
        self._stream = stream
        self._tls = tls
        # Looked up once: anyio builds its attribute table on every extra() call.
        sock = stream.extra(anyio.abc.SocketAttribute.raw_socket, None)
        self._fd = sock.fileno() if sock is not None else -1
        self._buffer = b""
        self.origin = origin
        #: Requests sent so far; a failure on a connection with requests > 1 may be stale.
        self.requests = 0
        self.reusable = True
        self.idle_since = 0.0

    def looks_alive(self) -> bool:
        """Whether an idle connection is still open: no EOF and no unexpected bytes waiting.

        One ``poll`` with no timeout; it catches the common stale case (the
        server closed an idle keep-alive connection) before a request is sent.
        Where ``poll`` is missing, the stale-connection retry still covers it.
        """
        if self._buffer:
            return False
        fd = self._fd
        if fd < 0 or _poll is None:
            return True
        try:
            poller = _poll()
            poller.register(fd, select.POLLIN)
            if not poller.poll(0):
                return True
            if not self._tls:
                return False  # EOF, or a response nobody asked for
            # Under TLS the bytes may be a session ticket the next read absorbs;
            # only a real EOF (nothing to read) means the peer closed.
            available = array.array("i", [0])
            fcntl.ioctl(fd, termios.FIONREAD, available)
            return available[0] > 0
        except (OSError, ValueError):
            return False

    async def send(
        self, head: bytes, body: bytes | None, chunks: httpx.AsyncByteStream | None,
        chunked: bool, write_timeout: float | None,
    ) -> None:  # fmt: skip
        """Write the request ``head`` and its ``body``, or stream ``chunks``
        (chunk-encoded when the request said ``Transfer-Encoding: chunked``)."""
        self.requests += 1
        try:
            if write_timeout is None:
                await self._write(head, body, chunks, chunked)
            else:
                with anyio.fail_after(write_timeout):
                    await self._write(head, body, chunks, chunked)
        except TimeoutError as exc:
            self.reusable = False
            raise httpx.WriteTimeout("timed out writing the request") from exc
        except _BROKEN as exc:
            self.reusable = False
            if self.requests > 1:
                raise StaleConnection from exc
            raise httpx.WriteError(str(exc) or type(exc).__name__) from exc

    async def _write(
        self, head: bytes, body: bytes | None, chunks: httpx.AsyncByteStream | None,
        chunked: bool,
    ) -> None:  # fmt: skip
        if chunks is None:
            # One write: one syscall, and one TCP segment for a small request.
            await self._stream.send(head + body if body else head)
            return
        await self._stream.send(head)
        async for chunk in chunks:
            if chunk:
                await self._stream.send(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
        if chunked:
            await self._stream.send(b"0\r\n\r\n")

    async def _receive(self, read_timeout: float | None) -> bytes:
        """The next bytes from the peer; ``b""`` at EOF."""
        try:
            if read_timeout is None:
                return await self._stream.receive(READ_SIZE)
            with anyio.fail_after(read_timeout):
                return await self._stream.receive(READ_SIZE)
        except anyio.EndOfStream:
            return b""
        except TimeoutError as exc:
            self.reusable = False
            raise httpx.ReadTimeout("timed out reading the response") from exc
        except _BROKEN as exc:
            self.reusable = False
            raise httpx.ReadError(str(exc) or type(exc).__name__) from exc

    async def receive_head(self, method: bytes, read_timeout: float | None) -> Head:
        """The final response head (1xx interim responses are skipped)."""
        first = True
        while True:
            buffer = self._buffer
            searched = 0
            end = find_head_end(buffer)
            while end < 0:
                try:
                    data = await self._receive(read_timeout)
                except httpx.ReadError as exc:
                    if first and not buffer and self.requests > 1:
                        raise StaleConnection from exc
                    raise
                if not data:
                    self.reusable = False
                    if first and not buffer and self.requests > 1:
                        raise StaleConnection
                    raise httpx.RemoteProtocolError(
                        "Server disconnected without sending a response."
                    )
                first = False
                searched = max(0, len(buffer) - 3)
                buffer += data
                end = find_head_end(buffer, searched)
            self._buffer = buffer[end:]
            head = parse_head(buffer[:end])
            if head.status >= 200 or head.status == 101:
                if head.close:
                    self.reusable = False
                return head
            first = False

    def start_body(self, head: Head, method: bytes) -> tuple[BodyReader, bytes]:
        """The body reader for ``head`` and the body bytes already buffered."""
        reader = reader_for(head, method)
        if head.close or head.status == 101:
            self.reusable = False
        buffered, self._buffer = self._buffer, b""
        if not buffered:
            return reader, b""
        body, rest = reader.feed(buffered)
        self._keep(rest)
        return reader, body

    async def read_body(self, reader: BodyReader, read_timeout: float | None) -> bytes:
        """The body bytes of the next network read (maybe ``b""``); ``reader.done`` at the end."""
        data = await self._receive(read_timeout)
        if not data:
            self.reusable = False
            reader.end()
            return b""
        body, rest = reader.feed(data)
        self._keep(rest)
        return body

    def _keep(self, rest: bytes) -> None:
        # Bytes after a complete response that nobody asked for: do not trust
        # the connection with another request.
        if rest:
            self.reusable = False

    def mark_idle(self) -> None:
        self.idle_since = time.monotonic()

    async def aclose(self) -> None:
        """Close at once (no TLS close_notify wait); safe to call twice or when cancelled."""
        self.reusable = False
        await anyio.aclose_forcefully(self._stream)
