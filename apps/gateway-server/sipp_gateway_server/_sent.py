"""The answer's way out: noting what was sent, and streaming a run as SSE.

Kept apart from the request path so its bookkeeping (status, time to the
first token, the run's outcome) is one small, separately readable piece.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sipp import RunCancelled, UpstreamError
from sipp.gateway import GatewayStreamResponse

from ._observe import RequestRecord

if TYPE_CHECKING:
    from sipp.gateway.asgi import Receive, Scope, Send

__all__ = ["Sent", "stream_response"]


class Sent:
    """Wraps ``send`` to note the status and the time of the first streamed byte."""

    __slots__ = ("record", "send")

    def __init__(self, send: Send, record: RequestRecord) -> None:
        self.send = send
        self.record = record

    async def __call__(self, message: Any) -> None:
        if message["type"] == "http.response.start":
            self.record.status = message["status"]
        elif self.record.ttft is None and self.record.stream and message.get("more_body"):
            self.record.ttft = time.perf_counter() - self.record.started
        await self.send(message)


async def stream_response(
    response: GatewayStreamResponse,
    record: RequestRecord,
    scope: Scope,
    receive: Receive,
    send: Sent,
    request_id: str,
) -> None:
    """Send ``response``; then note its tokens, cancel reason or error in ``record``."""
    # The stream response reads the request id from the scope: give it ours.
    inner = {**scope, "headers": [(b"x-request-id", request_id.encode("latin-1"))]}
    try:
        await response(inner, receive, send)
    finally:
        run = response.run
        record.cancel_reason = run.cancel_reason
        final, error = run.final_response, run.error
        if final is not None:
            record.tokens_in = final.usage.input_tokens
            record.tokens_out = final.usage.output_tokens
        elif isinstance(error, UpstreamError):
            record.upstream_kind = error.kind
        if error is not None and not isinstance(error, RunCancelled):
            code = getattr(error, "code", "internal")
            record.code = code if isinstance(code, str) else "internal"
