"""Pool cooldowns shared by every replica through the gateway's Redis state.

The pool driver (``sipp_pool``) asks its :class:`~sipp_pool.CooldownStore`
before it orders a request's deployments, and tells it when a deployment
starts cooling down. Here that store is two Lua scripts on the state's
Redis (``_redis.py``): one key per target and deployment whose TTL is the
time left, so a replica that sees a deployment fail keeps every other
replica away from it for the same time.

Every call has the ``[state] timeout`` deadline and shares the state's
down-marking (``Limits.shared``). A cooldown is advice, so a failure is
always *open*: the pool then decides with its own process's view (each
replica learns of a failing deployment on its own, as without Redis). The
memory backend needs no store: one process holds one pool per target,
whose own bookkeeping is exact.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._state import StateUnavailable

if TYPE_CHECKING:
    from ._limits import Limits
    from ._redis import RedisState

__all__ = ["SharedCooldowns"]


class SharedCooldowns:
    """A ``sipp_pool.CooldownStore`` over Redis, with the state's deadline; fails open."""

    def __init__(self, redis: RedisState, limits: Limits) -> None:
        self._redis = redis
        self._limits = limits

    async def remaining(self, pool: str, members: Sequence[str]) -> list[float]:
        keys = [f"{pool}:{member}" for member in members]
        try:
            return await self._limits.shared(lambda: self._redis.cooldowns(keys))
        except StateUnavailable:
            return [0.0] * len(members)  # open: the pool's own view decides

    async def start(self, pool: str, member: str, seconds: float) -> None:
        # Unavailable: the other replicas learn of the failing deployment on their own.
        with contextlib.suppress(StateUnavailable):
            await self._limits.shared(lambda: self._redis.cool(f"{pool}:{member}", seconds))
