"""One request/response exchange with an upstream, streaming or not.

* :func:`send_request` sends a request and returns the whole answer; a
  non-2xx status becomes the driver's typed error.
* :func:`open_event_stream` sends a request and yields an :class:`EventStream`
  of SSE events, read in network-sized batches (one await per chunk, not per
  event: this is the hot path). On a clean exit the rest of the body is read,
  bounded in bytes and time, so the connection goes back to the pool (a
  client that stops at its terminal event pays a new connection on every
  request); on an error or a cancel the stream is closed at once.

Every httpx exception is translated by :func:`map_httpx_errors`; a stream cut
inside an event, or an event too large, is a ``ProtocolError``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Final, cast

import anyio
import httpx

from .._errors import ProtocolError, SippError
from ._classify import MAX_ERROR_BODY
from ._h1 import BODY_READER
from ._redact import Redactor
from ._sse import SSEDecoder, SSEError, SSEEvent
from ._transport import map_httpx_errors

__all__ = [
    "DRAIN_MAX_BYTES",
    "DRAIN_MAX_SECONDS",
    "ErrorFactory",
    "EventStream",
    "open_event_stream",
    "send_request",
]

#: After the terminal event, at most this much of the body is read to reuse the connection.
DRAIN_MAX_BYTES: Final = 64 * 1024
#: ... and for at most this long; past either bound the connection is closed instead.
DRAIN_MAX_SECONDS: Final = 1.0

#: Builds the typed error for a non-2xx answer from its status, headers and (bounded) body.
ErrorFactory = Callable[[int, httpx.Headers, bytes], SippError]


class _Chunks:
    """The body through httpx's ``aiter_raw``, read like :data:`BODY_READER`'s reader."""

    __slots__ = ("_iterator",)

    def __init__(self, response: httpx.Response) -> None:
        self._iterator = cast("AsyncGenerator[bytes, None]", response.aiter_raw())

    async def read(self) -> bytes:
        try:
            return await self._iterator.__anext__()
        except StopAsyncIteration:
            return b""

    async def aclose(self) -> None:
        await self._iterator.aclose()


class EventStream:
    """The SSE events of one response, as lists (all the events one network read finished).

    ``async for events in stream`` ends when the body ends; a body cut inside
    an event raises ``ProtocolError``. Whether the *terminal* event arrived is
    the driver's business (it knows which one that is).
    """

    __slots__ = ("_body", "_decoder", "_redactor", "_upstream", "response")

    def __init__(
        self, response: httpx.Response, *, redactor: Redactor | None = None, upstream: str
    ) -> None:
        self.response = response
        # One reader for the whole body, so draining continues where reading stopped:
        # sipp's own transport's when it made the response, else httpx's iterator.
        self._body = response.extensions.get(BODY_READER) or _Chunks(response)
        self._decoder = SSEDecoder()
        self._redactor = redactor
        self._upstream = upstream

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> list[SSEEvent]:
        read = self._body.read
        decoder = self._decoder
        while True:
            try:
                raw = await read()
            except httpx.HTTPError:
                with map_httpx_errors(self._redactor, upstream=self._upstream):
                    raise
            if not raw:  # the end of the body
                if decoder.close():
                    raise ProtocolError(
                        f"{self._upstream}: the event stream was cut off inside an event"
                    )
                raise StopAsyncIteration
            try:
                events = decoder.feed(raw)
            except SSEError as exc:
                raise ProtocolError(f"{self._upstream}: {exc}") from exc
            if events:
                return events

    async def drain(
        self, *, max_bytes: int = DRAIN_MAX_BYTES, max_seconds: float = DRAIN_MAX_SECONDS
    ) -> list[SSEEvent]:
        """Read the rest of the body (bounded) and close; the connection is then reusable.

        Returns the events the rest held, so a driver whose protocol forbids
        events after its terminal one can tell, whatever the packet
        boundaries were (most bodies end right after it: an empty list). Past
        either bound reading stops and the connection is closed instead.
        """
        events: list[SSEEvent] = []
        decoder: SSEDecoder | None = self._decoder
        try:
            received = 0
            with anyio.move_on_after(max_seconds):
                while chunk := await self._body.read():
                    received += len(chunk)
                    if decoder is not None:
                        try:
                            events.extend(decoder.feed(chunk))
                        except SSEError:
                            decoder = None  # garbage: nothing more to decode, still drain
                    if received > max_bytes:
                        break
        except httpx.HTTPError:
            pass  # the answer is complete; a broken tail only costs the connection
        finally:
            await self.aclose()
        return events

    async def aclose(self) -> None:
        """Close the response now (an unread rest of the body drops the connection)."""
        with anyio.CancelScope(shield=True):
            body = self._body
            if isinstance(body, _Chunks):
                await body.aclose()
            await self.response.aclose()


async def _read_bounded(response: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    with anyio.move_on_after(DRAIN_MAX_SECONDS):
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= limit:
                break
    return b"".join(chunks)[:limit]


def open_event_stream(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    on_error: ErrorFactory,
    redactor: Redactor | None = None,
    upstream: str = "upstream",
) -> AbstractAsyncContextManager[EventStream]:
    """Send ``request``; yield its SSE events once the status is 2xx.

    A non-2xx answer raises ``on_error(status, headers, body)`` with the body
    bounded to 64 KiB. A clean exit drains the body (bounded); an exception or
    a cancel closes it at once.
    """
    return _OpenEventStream(client, request, on_error, redactor, upstream)


class _OpenEventStream:
    """:func:`open_event_stream`'s context manager.

    A class, not ``@asynccontextmanager``: that one keeps a generator, its
    frame and the loop's record of it alive for as long as the stream is open.
    """

    __slots__ = ("_client", "_on_error", "_redactor", "_request", "_stream", "_upstream")

    def __init__(
        self,
        client: httpx.AsyncClient,
        request: httpx.Request,
        on_error: ErrorFactory,
        redactor: Redactor | None,
        upstream: str,
    ) -> None:
        self._client = client
        self._request = request
        self._on_error = on_error
        self._redactor = redactor
        self._upstream = upstream
        self._stream: EventStream | None = None

    async def __aenter__(self) -> EventStream:
        redactor, upstream = self._redactor, self._upstream
        with map_httpx_errors(redactor, upstream=upstream):
            response = await self._client.send(self._request, stream=True)
        try:
            if response.status_code >= 300:
                with map_httpx_errors(redactor, upstream=upstream):
                    body = await _read_bounded(response, MAX_ERROR_BODY)
                raise self._on_error(response.status_code, response.headers, body)
            stream = EventStream(response, redactor=redactor, upstream=upstream)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await response.aclose()
            raise
        self._stream = stream
        return stream

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stream = self._stream
        assert stream is not None
        if exc_type is None:
            await stream.drain()
        else:
            await stream.aclose()


async def send_request(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    on_error: ErrorFactory,
    redactor: Redactor | None = None,
    upstream: str = "upstream",
) -> httpx.Response:
    """Send ``request`` and read the whole answer; a non-2xx status raises ``on_error(...)``."""
    with map_httpx_errors(redactor, upstream=upstream):
        response = await client.send(request)
    if response.status_code >= 300:
        raise on_error(response.status_code, response.headers, response.content[:MAX_ERROR_BODY])
    return response
