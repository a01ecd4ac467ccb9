"""Rate limits and admission over the shared state, with a deadline and a failure policy.

The request path asks two questions here: may this client and caller send
one more request (GCRA rate limits), and is there a free slot for this target
(admission, global and per target)? The state answers (memory or Redis); this
part bounds every state call with ``[state] timeout`` and decides what a
failure means, per limit (``[state] rate_limits_on_failure`` and
``admission_on_failure``):

* ``"open"`` (the default for both): decide with this process's own counters,
  the same limits counted per replica. The gateway keeps serving while Redis
  restarts, and a runaway client is still bounded by each replica's budget.
* ``"closed"``: refuse with 503 ``unavailable`` until the state answers again.

After a failure the state is marked down for a moment (``_RETRY_AFTER`` s),
so requests meanwhile skip the doomed call instead of each waiting out the
deadline; the health loop (:meth:`Limits.watch`) marks it up again.

Lease members are generated here (random, unique per request), never taken
from the request: a client-chosen id shared by several requests would let
them all count as one slot.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Final, Literal, TypeVar

import anyio

from ._auth import Principal
from ._config import RateLimit
from ._refusal import Refused, state_unavailable
from ._state import Lease, MemoryState, State, StateUnavailable

__all__ = ["Limits"]

logger = logging.getLogger("sipp.gateway")

Policy = Literal["open", "closed"]
_T = TypeVar("_T")
_RETRY_AFTER: Final = 1.0
_WATCH_EVERY: Final = 1.0
_LOG_EVERY: Final = 10.0


class Limits:
    """The gateway's limits, counted in ``state`` (a local fallback when it is down)."""

    def __init__(
        self,
        state: State,
        *,
        ip_rate_limit: RateLimit | None,
        max_concurrent_requests: int,
        per_target: Mapping[str, int | None],
        timeout: float,
        rate_limits_on_failure: Policy = "open",
        admission_on_failure: Policy = "open",
    ) -> None:
        self.state = state
        self._local = state if isinstance(state, MemoryState) else MemoryState()
        self._ip_limit = ip_rate_limit
        self._global = max_concurrent_requests
        self._per_target = dict(per_target)
        self._timeout = timeout
        self._rate_policy = rate_limits_on_failure
        self._admission_policy = admission_on_failure
        self._down_until = 0.0
        self._logged_at = -_LOG_EVERY
        #: Whether the last state call (or health probe) succeeded; a shared
        #: state is in doubt until it first answers.
        self.state_healthy = self._local is state
        #: Live per-caller overrides (the admin console's); ``None`` = no limit.
        self.caller_limits: dict[str, RateLimit | None] = {}
        #: Targets being drained: new requests get 503, running ones finish.
        self.drained: frozenset[str] = frozenset()

    def set_limits(
        self,
        *,
        ip_rate_limit: RateLimit | None,
        max_concurrent_requests: int,
        per_target: Mapping[str, int | None],
    ) -> None:
        """Change the limits live (the admin console); the next request sees them."""
        self._ip_limit = ip_rate_limit
        self._global = max_concurrent_requests
        self._per_target = dict(per_target)

    # -- the request path ----------------------------------------------------------

    async def check_rates(self, client: str, principal: Principal) -> None:
        """Count one request against the client's IP and the caller; 429 when over."""
        limits: list[tuple[str, RateLimit]] = []
        if self._ip_limit is not None:
            limits.append((f"ip:{client}", self._ip_limit))
        caller_limit = self.caller_limits.get(principal.caller, principal.rate_limit)
        if caller_limit is not None:
            limits.append((f"caller:{principal.caller}", caller_limit))
        if not limits:
            return
        wait: float | None
        if self.state is self._local:
            wait = await self._local.hit(limits)  # in memory: no deadline, nothing to fail
        else:
            try:
                wait = await self._shared(lambda: self.state.hit(limits))
            except StateUnavailable:
                if self._rate_policy == "closed":
                    raise state_unavailable() from None
                wait = await self._local.hit(limits)
        if wait is not None:
            raise Refused("rate_limited", "rate limit exceeded", 429, "rate", wait)

    async def admit(self, target: str) -> Lease:
        """Take a global and a per-target slot at once; 429 ``admission`` when one is full."""
        if target in self.drained:
            raise Refused("draining", f"target {target!r} is draining", 503, "draining", 1.0)
        slots = [("global", self._global)]
        per_target = self._per_target.get(target)
        if per_target is not None:
            slots.append((f"target:{target}", per_target))
        member = os.urandom(12).hex()
        taken: Lease | str
        if self.state is self._local:
            # In memory: no deadline and no failure policy to apply, so no
            # cancel scope per request either.
            taken = await self._local.acquire(slots, member)
            if isinstance(taken, str):
                raise Refused("admission", "concurrency limit reached", 429, "admission", 1.0)
            return taken
        try:
            taken = await self._shared(lambda: self.state.acquire(slots, member))
        except StateUnavailable:
            if self._admission_policy == "closed":
                raise state_unavailable() from None
            taken = await self._local.acquire(slots, member)
            if not isinstance(taken, str):
                taken.local = True
        if isinstance(taken, str):
            raise Refused("admission", "concurrency limit reached", 429, "admission", 1.0)
        return taken

    async def release(self, lease: Lease) -> None:
        """Give the slots back (shielded: it runs while a cancelled request unwinds)."""
        if lease.local or self.state is self._local:
            self._local.forget(lease)  # in memory: nothing to await, so nothing to shield
            return
        with anyio.CancelScope(shield=True):
            if lease.local or self.state is self._local:
                await self._local.release(lease)
                return
            # Stop renewing it even if the state cannot be told: it then expires there.
            self.state.forget(lease)
            with contextlib.suppress(StateUnavailable):
                await self._shared(lambda: self.state.release(lease))

    def in_flight(self, key: str) -> int:
        """This process's count of slots taken under ``key`` (shared and fallback)."""
        count = self.state.in_flight(key)
        if self._local is not self.state:
            count += self._local.in_flight(key)
        return count

    # -- state calls -----------------------------------------------------------------

    @property
    def rate_policy(self) -> Policy:
        """What rate limits do when the shared state cannot answer."""
        return self._rate_policy

    async def shared(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """``call()`` on the shared state, with the deadline and the down-time skip."""
        return await self._shared(call)

    async def _shared(self, call: Callable[[], Awaitable[_T]]) -> _T:
        if time.monotonic() < self._down_until:
            raise StateUnavailable("gateway state is down (retrying shortly)")
        try:
            with anyio.fail_after(self._timeout):
                result = await call()
        except (StateUnavailable, TimeoutError) as exc:
            self._failed(exc)
            raise StateUnavailable(str(exc) or "gateway state timed out") from exc
        self.state_healthy = True
        return result

    def _failed(self, error: BaseException) -> None:
        self.state_healthy = False
        now = time.monotonic()
        self._down_until = now + _RETRY_AFTER
        if now - self._logged_at >= _LOG_EVERY:  # one line per outage burst, not per request
            self._logged_at = now
            reason = str(error) or type(error).__name__
            logger.warning("sipp gateway: shared state unavailable: %s", reason)

    async def watch(self) -> None:
        """Keep the state's health known and its leases renewed (runs until cancelled).

        Every failure is caught here: a Redis restart or a stale pooled
        connection must never end this task, and with it the gateway.
        """
        renew_every = self.state.renew_interval
        renewed = time.monotonic()
        while True:
            await anyio.sleep(min(_WATCH_EVERY, renew_every))
            try:
                with anyio.fail_after(self._timeout):
                    await self.state.ping()
                if time.monotonic() - renewed >= renew_every:
                    with anyio.fail_after(self._timeout * 4):
                        await self.state.renew()
                    renewed = time.monotonic()
            except Exception as exc:  # whatever the client raises, this loop goes on
                self._failed(exc)
            else:
                if not self.state_healthy:
                    logger.warning("sipp gateway: shared state available again")
                self.state_healthy = True
                self._down_until = 0.0
