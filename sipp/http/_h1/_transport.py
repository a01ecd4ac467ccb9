"""``LeanTransport``: httpx's transport interface over :mod:`._pool` and :mod:`._connection`.

httpx keeps building the ``Request`` and ``Response`` objects (headers,
decoding, the client API); this replaces only httpcore underneath, for plain
HTTP/1.1 over TCP or TLS on anyio, so asyncio and trio both work.

A response whose body already arrived with its head (a small JSON answer)
gives its connection back before ``handle_async_request`` returns; a longer
one streams and gives it back when read to the end. A response closed early,
failed or cancelled closes its connection instead.
"""

from __future__ import annotations

import ssl
from typing import Any, Final

import anyio
import anyio.abc
import httpx
from anyio.streams.tls import TLSStream

from ._connection import Connection, StaleConnection
from ._parse import BodyReader
from ._pool import Origin, Pool

__all__ = ["BODY_READER", "LeanTransport"]

#: The response extension holding a streamed body's reader: ``await reader.read()``
#: returns the next bytes, ``b""`` at the end. Reading through it skips the three
#: async generators httpx's ``aiter_raw`` stacks per response (about 2 KB for as
#: long as a stream stays open, which a gateway multiplies by its open streams).
BODY_READER: Final = "sipp.body_reader"

_DEFAULT_PORTS: Final = {b"http": 80, b"https": 443}
_DEFAULT_LIMITS: Final = httpx.Limits()
_CONNECT_ERRORS: Final = (OSError, ssl.SSLError, anyio.BrokenResourceError, anyio.EndOfStream)


class LeanTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 with keep-alive for ``http://`` and ``https://`` URLs, on anyio.

    ``verify`` is an ``ssl.SSLContext`` or what ``httpx.create_ssl_context``
    takes; ``limits`` and ``trust_env`` (for ``SSL_CERT_FILE``/``SSL_CERT_DIR``)
    mean what they mean to httpx. No proxies, HTTP/2 or Unix sockets:
    :func:`sipp.http.create_http_client` keeps httpx's own transport for those.

    Timeouts come from each request's ``timeout`` extension (what httpx's
    ``timeout=`` sets); a phase set to ``None`` costs nothing.

    A request that fails on a reused keep-alive connection before any byte of
    the response arrived (the server had closed it) is sent once more on a
    fresh connection, if its body is in memory.
    """

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | str | bool = True,
        limits: httpx.Limits = _DEFAULT_LIMITS,
        trust_env: bool = True,
    ) -> None:
        self._ssl = (
            verify
            if isinstance(verify, ssl.SSLContext)
            else httpx.create_ssl_context(verify=verify, trust_env=trust_env)
        )
        self._pool = Pool(
            self._open,
            max_connections=limits.max_connections,
            max_keepalive=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
        )

    @property
    def pool(self) -> Pool:
        """The connection pool (its counters are what tests and metrics look at)."""
        return self._pool

    async def _open(self, origin: Origin, connect_timeout: float | None) -> Connection:
        scheme, host, port = origin
        hostname = host.decode("ascii")
        try:
            with anyio.fail_after(connect_timeout):
                stream: anyio.abc.ByteStream = await anyio.connect_tcp(hostname, port)
                if scheme == b"https":
                    try:
                        stream = await TLSStream.wrap(
                            stream, hostname=hostname, ssl_context=self._ssl,
                            standard_compatible=False,
                        )  # fmt: skip
                    except BaseException:
                        await anyio.aclose_forcefully(stream)
                        raise
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"timed out connecting to {hostname}:{port}") from exc
        except _CONNECT_ERRORS as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        return Connection(stream, origin, tls=scheme == b"https")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.raw_scheme
        port = _DEFAULT_PORTS.get(scheme)
        if port is None:
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
        if not url.raw_host:
            raise httpx.UnsupportedProtocol(f"no host in {url!r}")
        origin = (scheme, url.raw_host, url.port or port)
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        method = request.method.encode("ascii")
        head = _serialize(method, url.raw_path, request.headers.raw)
        chunks: httpx.AsyncByteStream | None = None
        try:
            body: bytes | None = request.content
        except httpx.RequestNotRead:
            body = None
            if not isinstance(request.stream, httpx.AsyncByteStream):
                raise RuntimeError("LeanTransport needs an async request body") from None
            chunks = request.stream
        chunked = request.headers.get("transfer-encoding", "").lower() == "chunked"
        read_timeout = timeouts.get("read")
        pool = self._pool
        fresh = False
        while True:
            connection = await pool.acquire(
                origin, fresh=fresh, connect_timeout=timeouts.get("connect"),
                pool_timeout=timeouts.get("pool"),
            )  # fmt: skip
            try:
                await connection.send(head, body, chunks, chunked, timeouts.get("write"))
                response_head = await connection.receive_head(method, read_timeout)
                reader, first = connection.start_body(response_head, method)
            except StaleConnection as exc:
                await pool.discard(connection)
                if fresh or body is None:
                    raise httpx.RemoteProtocolError(
                        "Server disconnected without sending a response."
                    ) from exc
                fresh = True
                continue
            except BaseException:
                await pool.discard(connection)
                raise
            break
        extensions: dict[str, Any] = {
            "http_version": b"HTTP/1.1" if response_head.http11 else b"HTTP/1.0",
            "reason_phrase": response_head.reason,
        }
        if reader.done:
            await pool.release(connection)
            stream: httpx.AsyncByteStream = httpx.ByteStream(first)
        else:
            stream = extensions[BODY_READER] = _ResponseStream(
                pool, connection, reader, first, read_timeout
            )
        return httpx.Response(
            status_code=response_head.status,
            headers=response_head.headers,
            stream=stream,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


def _serialize(method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    lines = [b"%s %s HTTP/1.1\r\n" % (method, target)]
    lines += [b"%s: %s\r\n" % field for field in headers]
    lines.append(b"\r\n")
    head = b"".join(lines)
    # A CR, LF or NUL inside a name or value would let it smuggle a header or a
    # second request; count the line ends instead of scanning each field.
    if head.count(b"\n") != len(lines) or head.count(b"\r") != len(lines) or b"\0" in head:
        raise httpx.LocalProtocolError("CR, LF or NUL in the request line or a header")
    return head


class _ResponseStream(httpx.AsyncByteStream):
    """A streamed body: bytes as they arrive, then the connection goes back (or is closed)."""

    __slots__ = ("_connection", "_done", "_first", "_pool", "_read_timeout", "_reader")

    def __init__(
        self, pool: Pool, connection: Connection, reader: BodyReader, first: bytes,
        read_timeout: float | None,
    ) -> None:  # fmt: skip
        self._pool = pool
        self._connection = connection
        self._reader = reader
        self._first = first
        self._read_timeout = read_timeout
        self._done = False

    async def __aiter__(self) -> Any:
        try:
            if self._first:
                first, self._first = self._first, b""
                yield first
            connection, reader, timeout = self._connection, self._reader, self._read_timeout
            while not reader.done:
                data = await connection.read_body(reader, timeout)
                if data:
                    yield data
        finally:
            if not self._done:
                await self.aclose()

    async def read(self) -> bytes:
        """The next bytes of the body; ``b""`` at its end, when the connection goes back.

        The other way to read it than iterating (see :data:`BODY_READER`). On an
        error or a cancel the owner closes the response, which drops the connection.
        """
        if self._first:
            first, self._first = self._first, b""
            return first
        connection, reader = self._connection, self._reader
        while not reader.done:
            data = await connection.read_body(reader, self._read_timeout)
            if data:
                return data
        await self.aclose()
        return b""

    async def aclose(self) -> None:
        if self._done:
            return
        self._done = True
        if self._reader.done:
            await self._pool.release(self._connection)
        else:
            await self._pool.discard(self._connection)
