"""Whether the gateway takes requests, how many are running, and waiting for them to end.

Its own part so the listeners, the request path and the management app can
each see the lifecycle without seeing each other: the request path counts
itself in and out, the management app reads ``ready``/``draining``, and the
drain waits here for the count to reach zero.
"""

from __future__ import annotations

import anyio

__all__ = ["Activity"]


class Activity:
    """The gateway's lifecycle flags and its count of profile requests in flight."""

    def __init__(self) -> None:
        self.ready = False
        self.draining = False
        #: Profile requests in flight in this process.
        self.active = 0
        self._idle: anyio.Event | None = None

    @property
    def accepting(self) -> bool:
        return self.ready and not self.draining

    def stop_accepting(self) -> None:
        """New requests get 503 from now on (the first step of the drain)."""
        self.ready = False
        self.draining = True

    def started(self) -> None:
        self.active += 1

    def finished(self) -> None:
        self.active -= 1
        if self.active == 0 and self._idle is not None:
            self._idle.set()

    async def wait_idle(self) -> None:
        while self.active > 0:
            self._idle = anyio.Event()
            await self._idle.wait()
