"""``gateway_text_stream_response(run)``: a run as the profile's SSE stream, as ASGI.

The response is an ASGI application (Starlette routes may return it as is;
:mod:`sipp.gateway.starlette` wraps it for FastAPI). It runs two tasks, and
whichever finishes first cancels the other (Starlette's disconnect race):

* the *writer* sends ``token`` frames as batches arrive (with the extension's
  ``reasoning`` and ``tool_call`` frames when the run produces them), then ``usage`` and
  ``done`` (or one ``error`` frame when the run fails after the stream began);
* the *watcher* reads ASGI ``receive`` and, on ``http.disconnect``, cancels
  the run with reason ``client_disconnected`` at once (which closes the
  upstream stream or stops the local model), then stops the writer.

Headers are sent with the first token batch. A run that fails before its
first token therefore still gets a plain JSON error response with a real
status (429 with ``Retry-After``, 504, ...) instead of a 200 stream holding
an ``error`` event, so clients can back off and retry correctly. A failure
after that is an ``error`` frame, never a silently cut stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Final

import anyio

from ._decode_rich import uses_extension
from ._disconnect import run_unless_disconnected
from ._events import (
    done_frame,
    error_frame,
    reasoning_frame,
    token_frame,
    tool_call_frame,
    usage_frame,
)
from ._responses import _usage, gateway_error_response, request_id_from_scope

if TYPE_CHECKING:
    from .._handles import Run
    from .._models import TokenBatch
from ._asgi_types import Receive, Scope, Send

__all__ = ["GatewayStreamResponse", "gateway_text_stream_response"]

_HEADERS: Final = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),
]


class GatewayStreamResponse:
    """A streaming text run, as an ASGI application speaking the profile's SSE."""

    __slots__ = ("extension", "run", "status")

    def __init__(self, run: Run, *, extension: bool | None = None) -> None:
        self.run = run
        self.status = 200
        if extension is None:
            extension = uses_extension(run._state.request)
        #: Whether the run's request used the rich-chat extension: only then are
        #: ``reasoning`` and ``tool_call`` events sent (others get the text alone).
        self.extension = extension

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = request_id_from_scope(scope).encode("latin-1")
        run = self.run

        async def write() -> None:
            try:
                await self._write(scope, send, request_id)
            except OSError:
                # Some servers report a write to a closed connection this way.
                run.cancel("client_disconnected")

        try:
            await run_unless_disconnected(
                scope, receive, write, lambda: run.cancel("client_disconnected")
            )
        except anyio.get_cancelled_exc_class():
            # The server is going down: the run must not outlive its stream.
            self.run.cancel("server_shutdown")
            raise
        except BaseException:
            self.run.cancel("stream_failed")
            raise

    async def _write(self, scope: Scope, send: Send, request_id: bytes) -> None:
        tokens: AsyncIterator[TokenBatch] = self.run.tokens
        first: TokenBatch | None = None
        try:
            first = await anext(tokens, None)
        except Exception as error:  # the run failed before its first token
            if self.run.cancel_reason == "client_disconnected":
                return
            await gateway_error_response(error)(scope, _noop_receive, send)
            return
        if self.run.cancel_reason == "client_disconnected":
            return  # nobody to answer (and no status to log but the 499)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*_HEADERS, (b"x-request-id", request_id)],
            }
        )
        frame = b""
        try:
            extension = self.extension
            if first is not None:
                await _body(send, batch_frames(first, extension=extension))
                async for batch in tokens:
                    frames = batch_frames(batch, extension=extension)
                    if frames:
                        await _body(send, frames)
            response = await self.run
            usage = _usage(response.usage)
            frame = (usage_frame(usage) if usage else b"") + done_frame(response.finish_reason)
        except Exception as error:
            envelope = gateway_error_response(error).body["error"]
            frame = error_frame(envelope["code"], envelope["message"])
        await send({"type": "http.response.body", "body": frame, "more_body": False})


def batch_frames(batch: TokenBatch, *, extension: bool = True) -> bytes:
    """The frames of one token batch, in model order.

    A plain batch is one ``token`` frame, as in the original profile (even
    when its text is empty). A batch that carries the extension's reasoning
    or tool-call pieces writes them as ``reasoning`` and ``tool_call`` frames
    around its text: reasoning comes before the answer and calls after it,
    which is the order models produce them in when the channel merged them
    into one batch. With ``extension=False`` (a request that used none of the
    extension) those pieces are left out and only the text is sent.
    """
    if not batch.reasoning and not batch.tool_calls:
        return token_frame(batch.text, batch.sequence_start)
    if not extension:
        return token_frame(batch.text, batch.sequence_start) if batch.text else b""
    frames = []
    if batch.reasoning:
        frames.append(reasoning_frame(batch.reasoning, batch.sequence_start))
    if batch.text:
        frames.append(token_frame(batch.text, batch.sequence_start))
    frames.extend(tool_call_frame(delta) for delta in batch.tool_calls)
    return b"".join(frames)


async def _body(send: Send, frame: bytes) -> None:
    await send({"type": "http.response.body", "body": frame, "more_body": True})


async def _noop_receive() -> dict[str, str]:
    return {"type": "http.request"}


def gateway_text_stream_response(
    run: Run, *, extension: bool | None = None
) -> GatewayStreamResponse:
    """Stream ``run`` (started with ``emit_tokens=True``) as the profile's SSE response.

    Cancels the run with ``client_disconnected`` the moment the HTTP client leaves.
    ``reasoning`` and ``tool_call`` events are sent only when the run's request
    used the rich-chat extension (``extension=None``, the default), or as
    ``extension`` says.
    """
    return GatewayStreamResponse(run, extension=extension)
