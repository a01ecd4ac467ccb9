"""What an application hands a pool besides its descriptor: a shared cooldown store.

A pool keeps its members' health in its own process. Several processes that
serve the same pool (gateway replicas behind a load balancer) should agree on
which deployment is cooling down, or each replica would hammer a failing
deployment ``max_failures`` times before it learns on its own. The pool
therefore consults a :class:`CooldownStore` before it orders the members of
a request, and tells it when it starts a cooldown. The store is handed in at
``client.add(name, descriptor, extensions={"sipp_pool": PoolHooks(...)})``
(``OpenContext.extensions``): it is an object, not configuration.

The store speaks in *remaining seconds*, never in clock times, so processes
whose clocks differ still agree (a Redis key's TTL is exactly that).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

import anyio

if TYPE_CHECKING:
    from ._driver import PoolDriver

__all__ = ["EXTENSION", "CooldownStore", "MemoryCooldownStore", "PoolHooks"]

#: The ``OpenContext.extensions`` key the pool reads its :class:`PoolHooks` from.
EXTENSION: Final = "sipp_pool"


@runtime_checkable
class CooldownStore(Protocol):
    """Cooldowns shared by every pool that is handed the same store.

    ``pool`` is the endpoint's name and ``member`` a member's name. A store
    that cannot answer may raise: the pool then goes on with what it knows
    itself (fail open), and logs it. A store with a network behind it should
    bound its own calls with a deadline.
    """

    async def remaining(self, pool: str, members: Sequence[str]) -> Sequence[float]:
        """Seconds each of ``members`` is still cooling down (0 when it is not), in order."""
        ...

    async def start(self, pool: str, member: str, seconds: float) -> None:
        """Cool ``member`` down for ``seconds``; a longer cooldown already running stays."""
        ...


class MemoryCooldownStore:
    """Cooldowns shared by the pools of one process (several clients, or tests)."""

    def __init__(self) -> None:
        self._until: dict[tuple[str, str], float] = {}

    async def remaining(self, pool: str, members: Sequence[str]) -> list[float]:
        now = anyio.current_time()
        return [max(0.0, self._until.get((pool, m), 0.0) - now) for m in members]

    async def start(self, pool: str, member: str, seconds: float) -> None:
        key = (pool, member)
        self._until[key] = max(self._until.get(key, 0.0), anyio.current_time() + seconds)


@dataclass(frozen=True)
class PoolHooks:
    """The pool's entry in ``OpenContext.extensions`` (key :data:`EXTENSION`).

    ``cooldowns``: the shared :class:`CooldownStore` (none: this pool's own
    bookkeeping only). ``opened``: called with the opened :class:`PoolDriver`,
    so an application that added it by descriptor can read its
    ``member_stats()`` (a gateway's per-deployment metrics).
    """

    cooldowns: CooldownStore | None = None
    opened: Callable[[PoolDriver], None] | None = None
