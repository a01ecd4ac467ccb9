"""Run and EmbedRun: the handles a caller holds over a run's state (``_run.py``).

A handle owns nothing the task needs: when the caller drops it, it is
collected at once and its finalizer cancels the work (reason ``dropped``).
The token iterator keeps its run alive while someone reads it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Generator
from typing import Any, Generic, TypeVar

import anyio

from ._endpoint import EndpointRef
from ._models import EmbeddingResponse, TextResponse, TokenBatch
from ._run import RunState, RunStatus

__all__ = ["EmbedRun", "Run"]

ResponseT = TypeVar("ResponseT", TextResponse, EmbeddingResponse)


class _RunHandle(Generic[ResponseT]):
    __slots__ = ("__weakref__", "_state")

    def __init__(self, state: RunState) -> None:
        self._state = state

    @property
    def id(self) -> str:
        """The request id (also sent upstream where the transport has a place for it)."""
        return self._state.id

    @property
    def status(self) -> RunStatus:
        return self._state.status

    @property
    def endpoint(self) -> EndpointRef:
        return self._state.endpoint.ref

    @property
    def cancel_reason(self) -> str | None:
        return self._state.cancel_reason

    @property
    def final_response(self) -> ResponseT | None:
        """The response once the run completed, else ``None`` (never waits, never raises)."""
        return self._state.response  # type: ignore[return-value]

    @property
    def error(self) -> BaseException | None:
        """What ``await run`` raises once the run failed or was cancelled, else ``None``."""
        return self._state.error

    def cancel(self, reason: str = "caller_cancelled") -> None:
        """Stop the run. Synchronous, idempotent, safe from any task or thread."""
        if not isinstance(reason, str) or not reason:
            raise ValueError("cancel reason must be a non-empty string")
        self._state.cancel(reason)

    @property
    def response(self) -> Awaitable[ResponseT]:
        """Await it for the final response (the same object every time)."""
        return self

    def __await__(self) -> Generator[Any, None, ResponseT]:
        return self._wait().__await__()

    async def _wait(self) -> ResponseT:
        return await self._state.wait()  # type: ignore[return-value]

    def __del__(self) -> None:
        state = self._state
        if state.status == "running":
            state.cancel("dropped", from_finalizer=True)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.status} on {self.endpoint.name!r}>"


class Run(_RunHandle[TextResponse]):
    """A running ``query`` or ``chat``: stream its ``tokens``, await its response, cancel it."""

    __slots__ = ()

    @property
    def tokens(self) -> AsyncIterator[TokenBatch]:
        """The token batches; read by one reader. Ends after a cancel, raises after a failure."""
        return _TokenIterator(self)


class EmbedRun(_RunHandle[EmbeddingResponse]):
    """A running ``embed``: await it for the vector, or cancel it."""

    __slots__ = ()


class _TokenIterator:
    __slots__ = ("_channel", "_run")

    def __init__(self, run: Run) -> None:
        self._run = run  # keeps the run alive while someone reads
        channel = run._state.channel
        assert channel is not None
        self._channel = channel

    def __aiter__(self) -> _TokenIterator:
        return self

    async def __anext__(self) -> TokenBatch:
        try:
            batch = await self._channel.receive()
        except anyio.get_cancelled_exc_class():
            self._run.cancel("caller_cancelled")
            raise
        if batch is None:
            raise StopAsyncIteration
        return batch
