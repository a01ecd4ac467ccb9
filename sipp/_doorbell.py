"""A doorbell: one reader parks until a writer on the same loop rings.

The token channel's reader parks on one of these between batches, for the
whole life of a stream, so it is kept small. On asyncio a parked reader
waits on a bare future made for that one wait (about 0.2 KB); anyio's
``Semaphore`` (used elsewhere, trio's are cheap) carries a ``deque`` of
waiters, about 0.75 KB whether anyone waits or not, and a gateway holds one
per open stream.

Only the one reader waits, and only the loop's own thread rings; a ring
with nobody parked is the caller's business (the channel only rings a
parked reader).
"""

from __future__ import annotations

from typing import Any

import anyio

from ._run_tasks import running_asyncio_loop

__all__ = ["Doorbell", "make_doorbell"]


class Doorbell:
    """anyio's semaphore as a doorbell (any backend)."""

    __slots__ = ("_semaphore",)

    def __init__(self) -> None:
        self._semaphore = anyio.Semaphore(0, fast_acquire=True)

    async def wait(self) -> None:
        await self._semaphore.acquire()

    def ring(self) -> None:
        self._semaphore.release()


class _FutureDoorbell(Doorbell):
    """asyncio: a future per wait, rung by resolving it."""

    __slots__ = ("_loop", "_waiter")

    def __init__(self, loop: Any) -> None:
        self._loop = loop
        self._waiter: Any = None

    async def wait(self) -> None:
        waiter = self._waiter = self._loop.create_future()
        try:
            # A cancel (anyio's cancel scopes cancel the task) cancels the future too.
            await waiter
        finally:
            self._waiter = None

    def ring(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def make_doorbell() -> Doorbell:
    """A doorbell for the running loop (call on the loop)."""
    loop = running_asyncio_loop()
    return Doorbell() if loop is None else _FutureDoorbell(loop)
