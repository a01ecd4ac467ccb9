"""The blocking run handles of ``SyncClient``: wait, iterate and cancel from any thread.

Each waits through its client (``SyncClient._wait``), which hops into the
client's loop and turns Ctrl-C in the waiting thread into a cancel of the run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Generic, Protocol, TypeVar

from ._endpoint import EndpointRef
from ._handles import EmbedRun, Run
from ._models import EmbeddingResponse, TextResponse, TokenBatch
from ._run import RunStatus

__all__ = ["SyncEmbedRun", "SyncRun"]

T = TypeVar("T")
ResponseT = TypeVar("ResponseT", TextResponse, EmbeddingResponse)


class _Waiter(Protocol):
    def _wait(self, handle: Run | EmbedRun, func: Callable[[], Awaitable[T]]) -> T: ...


class _SyncHandle(Generic[ResponseT]):
    __slots__ = ("_client", "_run")

    def __init__(self, run: Run | EmbedRun, client: _Waiter) -> None:
        self._run = run
        self._client = client

    @property
    def id(self) -> str:
        return self._run.id

    @property
    def status(self) -> RunStatus:
        return self._run.status

    @property
    def endpoint(self) -> EndpointRef:
        return self._run.endpoint

    @property
    def cancel_reason(self) -> str | None:
        return self._run.cancel_reason

    @property
    def final_response(self) -> ResponseT | None:
        """The response once the run completed, else ``None`` (never waits)."""
        return self._run.final_response  # type: ignore[return-value]

    @property
    def error(self) -> BaseException | None:
        return self._run.error

    def cancel(self, reason: str = "caller_cancelled") -> None:
        """Stop the run. Idempotent, safe from any thread."""
        self._run.cancel(reason)

    def response(self) -> ResponseT:
        """Wait for the final response (the same object every time).

        Raises what ``await run`` raises: ``RunCancelled`` after a cancel, the
        run's error after a failure. Ctrl-C while waiting cancels the run.
        """
        run = self._run
        return self._client._wait(run, run._wait)  # type: ignore[return-value]

    result = response

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.status} on {self.endpoint.name!r}>"


class SyncRun(_SyncHandle[TextResponse]):
    """A running blocking ``query`` or ``chat``: iterate ``tokens``, wait for ``response()``."""

    __slots__ = ()

    @property
    def tokens(self) -> Iterator[TokenBatch]:
        """The token batches as a plain iterator (one reader). Ctrl-C while waiting cancels."""
        run = self._run
        assert isinstance(run, Run)
        return _SyncTokens(run, self._client)


class SyncEmbedRun(_SyncHandle[EmbeddingResponse]):
    """A running blocking ``embed``: ``response()`` waits for the vector."""

    __slots__ = ()


class _SyncTokens:
    __slots__ = ("_client", "_iterator", "_run")

    def __init__(self, run: Run, client: _Waiter) -> None:
        self._run = run
        self._client = client
        self._iterator = run.tokens

    def __iter__(self) -> _SyncTokens:
        return self

    def __next__(self) -> TokenBatch:
        batch = self._client._wait(self._run, self._receive)
        if batch is None:
            raise StopIteration
        return batch

    async def _receive(self) -> TokenBatch | None:
        # StopAsyncIteration cannot cross the portal as a value; None marks the end.
        try:
            return await self._iterator.__anext__()
        except StopAsyncIteration:
            return None
