"""Per-target bounds on a run: at most ``max_tokens`` tokens, at most ``max_seconds``.

An upstream that ignores ``max_tokens`` used to stream through the gateway
forever. Two limits now hold whatever the upstream does:

* the request's ``max_tokens`` is capped at the target's (and set to it when
  the caller gave none), so a well-behaved upstream stops by itself; and the
  stream is *counted*: when a token arrives past the allowed count, the run
  is cancelled with reason ``max_tokens`` and the stream ends with its
  terminal ``error`` event (``code: cancelled``, ``run cancelled:
  max_tokens``) after the allowed tokens;
* the run's ``total`` timeout is capped at the target's ``max_seconds`` (the
X
  ``error`` event, a JSON request gets 504).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from typing import Any

import msgspec

from sipp import Run, Timeouts, TokenBatch

__all__ = ["BoundedRun", "bound_request"]


def bound_request(request: Any, max_tokens: int | None, max_seconds: float | None) -> Any:
    """``request`` with its ``max_tokens`` and total timeout capped at the target's."""
    changes: dict[str, Any] = {}
    if max_tokens is not None and hasattr(request, "max_tokens"):
        asked = request.max_tokens
        if asked is None or asked > max_tokens:
            changes["max_tokens"] = max_tokens
    if max_seconds is not None:
        timeouts = Timeouts.of(request.timeout) or Timeouts()
        if timeouts.total is None or timeouts.total > max_seconds:
            changes["timeout"] = msgspec.structs.replace(timeouts, total=max_seconds)
    return msgspec.structs.replace(request, **changes) if changes else request


class BoundedRun:
    """A streaming run whose tokens stop at ``limit``: what the SSE response reads.

    It forwards what :class:`sipp.gateway.GatewayStreamResponse` uses of a
    run (``tokens``, awaiting, ``cancel`` and the outcome); past ``limit``
    tokens it cancels the run (``max_tokens``) and ends the iteration, so the
    response writes the cancelled run's error event.
    """

    __slots__ = ("limit", "run")

    def __init__(self, run: Run, limit: int) -> None:
        self.run = run
        self.limit = limit

    @property
    def tokens(self) -> AsyncIterator[TokenBatch]:
        return self._tokens()

    async def _tokens(self) -> AsyncIterator[TokenBatch]:
        sent = 0
        async for batch in self.run.tokens:
            if sent >= self.limit:
                # A token past max_tokens: the upstream ignored it. Cut here;
                # awaiting the cancelled run gives the stream its error event.
                self.run.cancel("max_tokens")
                return
            # A batch is forwarded whole (it keeps no token boundaries); one
            # that crosses the limit is the last.
            sent += batch.frame_count
            yield batch

    def cancel(self, reason: str = "caller_cancelled") -> None:
        self.run.cancel(reason)

    def __await__(self) -> Generator[Any, None, Any]:
        return self.run.__await__()

    def __getattr__(self, name: str) -> Any:
        # cancel_reason, final_response, error, status...: the run's own.
        return getattr(self.run, name)
