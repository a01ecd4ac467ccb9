"""Shared counters: rate limits and admission slots, in memory or in Redis.

Rate limits are GCRA (the generic cell rate algorithm, a token bucket kept as
one number per key: the "theoretical arrival time"). A request at ``now`` with
emission interval ``T = 60 / requests_per_minute`` and burst ``B`` is allowed
when ``max(tat, now) + T - B*T <= now``; then ``tat`` moves on by ``T``. When
refused, the wait until it would be allowed is the ``Retry-After``. One
number per key makes the Redis version a single atomic script.

All the limits of one request are checked together and consumed only when
every one allows it, so a request refused by its caller's limit does not use
up its IP's budget.

Admission slots are counted per key (``global``, ``target:<name>``); a request
takes all of its slots at once or none. Deadlines and what a failure means
are decided by the caller (:mod:`._limits`), not here.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from ._config import RateLimit

__all__ = ["Lease", "MemoryState", "State", "StateUnavailable"]


class StateUnavailable(Exception):
    """The shared state (Redis) cannot be reached; the request is refused with 503."""


class Lease:
    """Admission slots held by one request; give it back with :meth:`State.release`."""

    __slots__ = ("keys", "local", "member", "names", "released")

    def __init__(self, names: Sequence[str], member: str, keys: Sequence[str] = ()) -> None:
        self.names = tuple(names)  # the slot names (``global``, ``target:x``)
        self.keys = tuple(keys) or self.names  # where the backend keeps them
        self.member = member
        self.released = False
        #: Taken from the process-local fallback while the shared state was down.
        self.local = False


class State(Protocol):
    #: Seconds between lease renewals (``inf`` when leases never expire).
    renew_interval: float

    def open(self) -> AbstractAsyncContextManager[object]:
        """Connect for the lifetime of the block (entered and left in one task)."""
        ...

    async def ping(self) -> None:
        """Raise :class:`StateUnavailable` unless the state answers."""
        ...

    async def renew(self) -> None:
        """Extend every lease this process holds, so a live request keeps its slots."""
        ...

    async def hit(self, limits: Sequence[tuple[str, RateLimit]]) -> float | None:
        """Consume one request from every limit, or none: ``None`` or the seconds to wait."""
        ...

    async def acquire(self, slots: Sequence[tuple[str, int]], member: str) -> Lease | str:
        """Take one slot of every ``(key, limit)``; the lease, or the key that is full."""
        ...

    def forget(self, lease: Lease) -> None:
        """Stop counting and renewing ``lease`` here (``release`` does this first)."""
        ...

    async def release(self, lease: Lease) -> None:
        """:meth:`forget` the lease, then free its slots in the state."""
        ...

    def in_flight(self, key: str) -> int:
        """This process's view of a key's slots (for the status page and gauges)."""
        ...


def gcra(tat: float, now: float, limit: RateLimit) -> tuple[float | None, float]:
    """``(retry_after or None, new_tat)`` for one request under ``limit``."""
    interval = 60.0 / limit.requests_per_minute
    new_tat = max(tat, now) + interval
    allow_at = new_tat - limit.burst * interval
    if allow_at > now:
        return allow_at - now, tat
    return None, new_tat


class MemoryState:
    """Counters in this process (the default): exact for one gateway process."""

    renew_interval = float("inf")

    def __init__(self) -> None:
        self._tat: dict[str, float] = {}
        self._slots: dict[str, int] = {}
        self._clock = time.monotonic

    @asynccontextmanager
    async def open(self) -> AsyncIterator[MemoryState]:
        yield self

    async def ping(self) -> None:
        pass

    async def renew(self) -> None:
        pass

    async def hit(self, limits: Sequence[tuple[str, RateLimit]]) -> float | None:
        now = self._clock()
        updates: list[tuple[str, float]] = []
        wait = 0.0
        for key, limit in limits:
            retry, tat = gcra(self._tat.get(key, now), now, limit)
            if retry is not None:
                wait = max(wait, retry)
            updates.append((key, tat))
        if wait > 0:
            return wait
        for key, tat in updates:
            self._tat[key] = tat
        if len(self._tat) > 100_000:  # forget buckets that are full again
            self._tat = {k: v for k, v in self._tat.items() if v > now}
        return None

    async def acquire(self, slots: Sequence[tuple[str, int]], member: str) -> Lease | str:
        for key, limit in slots:
            if self._slots.get(key, 0) >= limit:
                return key
        for key, _ in slots:
            self._slots[key] = self._slots.get(key, 0) + 1
        return Lease([key for key, _ in slots], member)

    def forget(self, lease: Lease) -> None:
        if lease.released:
            return
        lease.released = True
        for key in lease.names:
            self._slots[key] -= 1

    async def release(self, lease: Lease) -> None:
        self.forget(lease)

    def in_flight(self, key: str) -> int:
        return self._slots.get(key, 0)
