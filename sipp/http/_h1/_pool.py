"""The connection pool: O(1) per request, bounded, fair.

* Idle connections are kept per origin in a deque and reused last-in
  first-out (the warmest socket; the coldest ones age out), so finding one is
  a dict lookup and a pop, however many connections are open. httpcore scans
  every connection of the pool on every request instead.
* ``max_connections`` bounds everything open or opening. At the limit,
  callers wait in a FIFO; a released connection (or, for another origin, its
  slot) is handed straight to the first waiter, so nobody is overtaken.
* A connection comes back (:meth:`Pool.release`) only when its response was
  fully read and the server did not say ``close``; everything else is
  closed and its slot passed on (:meth:`Pool.discard`).

Only bookkeeping happens between awaits, so the state needs no lock: every
change is synchronous, and the only awaits are connecting, waiting and
closing.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable

import anyio
import httpx

from ._connection import Connection

__all__ = ["Origin", "Pool"]

Origin = tuple[bytes, bytes, int]


class _Waiter:
    __slots__ = ("cancelled", "connection", "event", "granted", "origin")

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.event = anyio.Event()
        self.connection: Connection | None = None  # an idle connection handed over
        self.granted = False  # or the right to open one
        self.cancelled = False


class Pool:
    """Connections by origin, at most ``max_connections`` open or opening."""

    def __init__(
        self,
        connect: Callable[[Origin, float | None], Awaitable[Connection]],
        *,
        max_connections: int | None,
        max_keepalive: int | None,
        keepalive_expiry: float | None,
    ) -> None:
        self._connect = connect
        self._max = max_connections if max_connections is not None else 1 << 62
        self._max_idle = max_keepalive if max_keepalive is not None else 1 << 62
        self._expiry = keepalive_expiry
        self._idle: dict[Origin, deque[Connection]] = {}
        self._idle_count = 0
        self._active: set[Connection] = set()
        self._slots = 0  # connections open or opening, idle ones included
        self._waiters: deque[_Waiter] = deque()
        self._closing: list[Connection] = []
        self._closed = False

    @property
    def connections(self) -> int:
        """Connections open or opening (idle ones included)."""
        return self._slots

    @property
    def idle(self) -> int:
        return self._idle_count

    async def acquire(
        self, origin: Origin, *, fresh: bool, connect_timeout: float | None,
        pool_timeout: float | None,
    ) -> Connection:  # fmt: skip
        """A connection to ``origin``: an idle one (unless ``fresh``) or a new one."""
        if self._closed:
            raise RuntimeError("the transport is closed")
        if not fresh:
            connection = self._take_idle(origin)
            if connection is not None:
                self._active.add(connection)
                return connection
        if not self._claim_slot(origin):
            handed = await self._wait(origin, pool_timeout)
            if self._closed:
                if handed is not None:
                    await handed.aclose()
                raise RuntimeError("the transport is closed")
            if handed is not None:
                self._active.add(handed)
                return handed
        try:
            await self._close_pending()
            connection = await self._connect(origin, connect_timeout)
        except BaseException:
            self._free_slot()
            raise
        self._active.add(connection)
        return connection

    def _take_idle(self, origin: Origin) -> Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic() if self._expiry is not None else 0.0
        while idle:
            connection = idle.pop()
            self._idle_count -= 1
            expired = self._expiry is not None and now - connection.idle_since > self._expiry
            if not expired and connection.looks_alive():
                return connection
            self._drop(connection)
        return None

    def _claim_slot(self, origin: Origin) -> bool:
        """Count one more connection, evicting an idle one of another origin if full."""
        if self._slots < self._max:
            self._slots += 1
            return True
        for other, idle in self._idle.items():
            if idle and other != origin:
                self._idle_count -= 1
                self._close_soon(idle.popleft())  # its slot is now ours
                return True
        return False

    async def _wait(self, origin: Origin, pool_timeout: float | None) -> Connection | None:
        waiter = _Waiter(origin)
        self._waiters.append(waiter)
        try:
            with anyio.fail_after(pool_timeout):
                await waiter.event.wait()
        except BaseException as exc:
            waiter.cancelled = True
            if waiter.connection is not None:
                self._hand_on(waiter.connection)
            elif waiter.granted:
                self._free_slot()
            if isinstance(exc, TimeoutError):
                raise httpx.PoolTimeout("timed out waiting for a connection") from exc
            raise
        return waiter.connection

    def _next_waiter(self) -> _Waiter | None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.cancelled:
                return waiter
        return None

    def _hand_on(self, connection: Connection) -> None:
        """Give a reusable connection to the first waiter, or keep it idle."""
        waiter = self._next_waiter()
        if waiter is None:
            connection.mark_idle()
            self._idle.setdefault(connection.origin, deque()).append(connection)
            self._idle_count += 1
            if self._idle_count > self._max_idle:
                self._idle_count -= 1
                self._drop(self._idle[connection.origin].popleft())
            return
        if waiter.origin == connection.origin:
            waiter.connection = connection
        else:
            self._close_soon(connection)  # the slot, not the socket, is what it needs
            waiter.granted = True
        waiter.event.set()

    def _free_slot(self) -> None:
        waiter = self._next_waiter()
        if waiter is None:
            self._slots -= 1
        else:
            waiter.granted = True
            waiter.event.set()

    def _drop(self, connection: Connection) -> None:
        self._close_soon(connection)
        self._free_slot()

    def _close_soon(self, connection: Connection) -> None:
        connection.reusable = False
        self._closing.append(connection)

    async def release(self, connection: Connection) -> None:
        """Return ``connection`` after a complete response (closed if not reusable)."""
        self._active.discard(connection)
        if connection.reusable and not self._closed:
            self._hand_on(connection)
        else:
            self._drop(connection)
        await self._close_pending()

    async def discard(self, connection: Connection) -> None:
        """Close ``connection`` (a response not read to its end, or a failure)."""
        if connection in self._active:
            self._active.discard(connection)
            self._drop(connection)
        await self._close_pending()

    async def _close_pending(self) -> None:
        # Sockets to close are queued by the synchronous bookkeeping above and
        # closed here, once the pool's state is consistent again.
        while self._closing:
            await self._closing.pop().aclose()

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            self._closing.extend(idle)
            idle.clear()
        self._idle_count = 0
        self._closing.extend(self._active)
        self._active.clear()
        self._slots = 0
        while self._waiters:  # wake them to be told the pool is closed
            self._waiters.popleft().event.set()
        await self._close_pending()
