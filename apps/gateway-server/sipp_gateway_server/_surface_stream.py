"""A streaming run in a surface's own SSE events, as the profile streams its own.

The same rules as :class:`sipp.gateway.GatewayStreamResponse`: the headers go
out with the first token batch, so a run that fails before it still gets a
JSON error with its real status (a 429 with ``Retry-After`` that SDKs back
off on); a failure after it ends the stream with the surface's error event,
never a silently cut stream; a client that disconnects cancels the run with
``client_disconnected`` at once (a watcher task reads ``receive``), and a
server shutting down cancels it with ``server_shutdown``.

The surface supplies a :class:`StreamEncoder`: the events before the first
batch, each batch's events, and the closing events once the run finished.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

import anyio

from sipp.gateway import run_unless_disconnected, watch_disconnect

if TYPE_CHECKING:
    from sipp import Run, TextResponse, TokenBatch
    from sipp.gateway.asgi import ASGIApp, Receive, Scope, Send

__all__ = ["StreamEncoder", "SurfaceStream", "sse"]

_HEADERS: Final = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),
]


def sse(data: bytes, event: str | None = None) -> bytes:
    """One SSE event (``data`` is one line of JSON, or ``[DONE]``)."""
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + data + b"\n\n"


class StreamEncoder(Protocol):
    def begin(self) -> bytes:
        """Events sent right after the headers (a role chunk, ``message_start``)."""

    def batch(self, batch: TokenBatch) -> bytes: ...

    def end(self, response: TextResponse) -> bytes:
        """The closing events of a finished run (finish reason, usage, terminator)."""


class SurfaceStream:
    """Streams ``run`` through ``encoder``; see the module docstring."""

    def __init__(
        self,
        run: Run,
        encoder: StreamEncoder,
        json_error: Callable[[BaseException], ASGIApp],
        stream_error: Callable[[BaseException], bytes],
    ) -> None:
        self.run = run
        self._encoder = encoder
        self._json_error = json_error
        self._stream_error = stream_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        run = self.run
        try:
            # The server's disconnect callback where it offers one (awaited here: no
            # helper coroutine in between, one frame less per open stream).
            withdraw = watch_disconnect(scope, self._client_left)
            if withdraw is None:
                await run_unless_disconnected(
                    scope, receive, lambda: self._write(scope, send, request_id), self._client_left
                )
            else:
                try:
                    await self._write(scope, send, request_id)
                finally:
                    withdraw()
        except OSError:
            # Some servers report a write to a closed connection this way.
            self._client_left()
        except anyio.get_cancelled_exc_class():
            run.cancel("server_shutdown")
            raise
        except BaseException:
            run.cancel("stream_failed")
            raise

    def _client_left(self) -> None:
        self.run.cancel("client_disconnected")

    async def _write(self, scope: Scope, send: Send, request_id: str) -> None:
        tokens: AsyncIterator[TokenBatch] = self.run.tokens
        try:
            first = await anext(tokens, None)
        except Exception as error:  # failed before its first token: a real status
            if self.run.cancel_reason == "client_disconnected":
                return
            await self._json_error(error)(scope, _no_body, send)
            return
        if self.run.cancel_reason == "client_disconnected":
            return  # nobody to answer (and no status to log but the 499)
        rid = request_id.encode("latin-1")
        headers = [*_HEADERS, (b"x-request-id", rid), (b"request-id", rid)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        encoder = self._encoder
        try:
            head = encoder.begin()
            if first is not None:
                head += encoder.batch(first)
            await _body(send, head)
            async for batch in tokens:
                frames = encoder.batch(batch)
                if frames:
                    await _body(send, frames)
            tail = encoder.end(await self.run)
        except Exception as error:
            tail = self._stream_error(error)
        await send({"type": "http.response.body", "body": tail, "more_body": False})


async def _body(send: Send, frames: bytes) -> None:
    await send({"type": "http.response.body", "body": frames, "more_body": True})


async def _no_body() -> dict[str, Any]:
    return {"type": "http.request"}
