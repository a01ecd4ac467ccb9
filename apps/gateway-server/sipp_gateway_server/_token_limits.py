"""Per-caller token limits: tokens per minute and a daily budget, reserved then settled.

A request cannot know its cost before it runs, so the limit works in two
steps over one number per limit:

1. **reserve** before the run: ``max_tokens`` (or the limit's
   ``default_reservation``) is added to the caller's minute bucket and to
   today's count, all or nothing; when either would go over, the request is
   refused with 429 ``rate_limited`` and the ``Retry-After`` of the limit
   that refused (the bucket's drain time, or the seconds to the next UTC
   midnight);
2. **settle** after it: the difference between the real usage (input plus
   output tokens) and the reservation is added (usually a refund; a long
   prompt can put the caller into debt, which the next requests wait out).
   A run that produced nothing is refunded entirely; a stream cut before its
   usage was known keeps its reservation (the conservative choice).

The minute limit is a leaky bucket: the level drains at
``tokens_per_minute / 60`` per second, and a request is allowed while its
reservation fits (one larger than the whole bucket is let through an empty
bucket, else it could never run). The day is the UTC day of the state's
clock. In Redis both steps are one Lua script on the server's clock, so
replicas share budgets exactly; when Redis cannot answer, the
``rate_limits_on_failure`` policy applies (``open``: this process's own
counts; ``closed``: 503).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import anyio

from ._refusal import Refused, state_unavailable
from ._state import MemoryState, StateUnavailable

if TYPE_CHECKING:
    from ._auth import Principal
    from ._config import TokenLimit
    from ._limits import Limits
    from ._observe import RequestRecord

__all__ = ["Reservation", "TokenLimits", "spend"]

_DAY: Final = 86400.0

#: KEYS[1] the minute bucket (hash: level, at), KEYS[2] the day counter's prefix.
#: ARGV: tokens_per_minute (0 = none), tokens_per_day (0 = none), amount, "reserve"|"settle".
_SPEND: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local tpm = tonumber(ARGV[1])
local tpd = tonumber(ARGV[2])
local amount = tonumber(ARGV[3])
local reserve = ARGV[4] == 'reserve'
local level = 0
if tpm > 0 then
  local saved = redis.call('HMGET', KEYS[1], 'level', 'at')
  if saved[1] then
    level = math.max(0, tonumber(saved[1]) - (now - tonumber(saved[2])) * tpm / 60)
  end
end
local day = math.floor(now / 86400)
local day_key = KEYS[2] .. ':' .. day
local used = tonumber(redis.call('GET', day_key) or '0')
if reserve then
  local wait = 0
  if tpm > 0 and level > 0 and level + amount > tpm then
    wait = (level + amount - tpm) * 60 / tpm
  end
  if tpd > 0 and used > 0 and used + amount > tpd then
    wait = math.max(wait, (day + 1) * 86400 - now)
  end
  if wait > 0 then return tostring(wait) end
end
if tpm > 0 then
  level = math.max(0, level + amount)
  redis.call('HSET', KEYS[1], 'level', tostring(level), 'at', tostring(now))
  redis.call('PEXPIRE', KEYS[1], math.ceil(level * 60000 / tpm) + 1000)
end
if tpd > 0 then
  used = math.max(0, used + amount)
  redis.call('SET', day_key, tostring(used), 'EX', 2 * 86400)
end
return '0'
"""


def spend(
    level: float,
    at: float,
    used: float,
    now: float,
    limit: TokenLimit,
    amount: float,
    reserve: bool,
) -> tuple[float | None, float, float]:
    """The same rule as the script, for one process: ``(wait or None, level, used)``.

    ``used`` is today's count (the caller resets it when the day changes).
    """
    tpm, tpd = limit.tokens_per_minute, limit.tokens_per_day
    if tpm is not None:
        level = max(0.0, level - (now - at) * tpm / 60)
    if reserve:
        wait = 0.0
        if tpm is not None and level > 0 and level + amount > tpm:
            wait = (level + amount - tpm) * 60 / tpm
        if tpd is not None and used > 0 and used + amount > tpd:
            wait = max(wait, (now // _DAY + 1) * _DAY - now)
        if wait > 0:
            return wait, level, used
    return None, max(0.0, level + amount), max(0.0, used + amount)


@dataclass(slots=True)
class Reservation:
    caller: str
    limit: TokenLimit
    amount: int
    local: bool = False


class _Local:
    """The per-process counts (the memory backend, and Redis's fallback)."""

    def __init__(self) -> None:
        self._minute: dict[str, tuple[float, float]] = {}
        self._day: dict[str, tuple[int, float]] = {}

    def apply(self, caller: str, limit: TokenLimit, amount: float, reserve: bool) -> float | None:
        now = time.time()  # wall clock: the day is a calendar day
        level, at = self._minute.get(caller, (0.0, now))
        day, used = self._day.get(caller, (int(now // _DAY), 0.0))
        if day != int(now // _DAY):
            day, used = int(now // _DAY), 0.0
        wait, level, used = spend(level, at, used, now, limit, amount, reserve)
        if wait is None:
            self._minute[caller] = (level, now)
            self._day[caller] = (day, used)
        return wait


class TokenLimits:
    """Reserves and settles callers' token limits in the limits' shared state."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._local = _Local()
        self._shared = not isinstance(limits.state, MemoryState)

    async def _apply(
        self, caller: str, limit: TokenLimit, amount: int, reserve: bool, local: bool
    ) -> tuple[float | None, bool]:
        if not self._shared or local:
            return self._local.apply(caller, limit, amount, reserve), True
        args: list[Any] = [
            limit.tokens_per_minute or 0,
            limit.tokens_per_day or 0,
            amount,
            "reserve" if reserve else "settle",
        ]
        keys = [f"tokens:minute:{caller}", f"tokens:day:{caller}"]
        state: Any = self._limits.state
        try:
            result = await self._limits.shared(lambda: state.script(_SPEND, keys, args))
        except StateUnavailable:
            if self._limits.rate_policy == "closed":
                raise state_unavailable() from None
            return self._local.apply(caller, limit, amount, reserve), True
        wait = float(result)
        return (wait if wait > 0 else None), False

    async def reserve(self, principal: Principal, max_tokens: int | None) -> Reservation | None:
        """Reserve ``max_tokens`` for ``principal``; ``None`` when it has no token limit."""
        limit = principal.token_limit
        if limit is None:
            return None
        amount = max_tokens or limit.default_reservation
        wait, local = await self._apply(principal.caller, limit, amount, True, False)
        if wait is not None:
            raise Refused("rate_limited", "token limit exceeded", 429, "tokens", wait)
        return Reservation(principal.caller, limit, amount, local)

    async def settle(self, reservation: Reservation, used: int | None) -> None:
        """Replace the reservation with ``used`` tokens (``None``: keep the reservation)."""
        if used is None or used == reservation.amount:
            return
        # A closed policy while Redis is down refuses: then the reservation stands.
        with contextlib.suppress(Refused):
            await self._apply(
                reservation.caller,
                reservation.limit,
                used - reservation.amount,
                False,
                reservation.local,
            )

    async def settle_record(self, reservation: Reservation, record: RequestRecord) -> None:
        """Settle from what a finished request's record says it used (shielded)."""
        used = used_tokens(record.status, record.tokens_in, record.tokens_out)
        with anyio.CancelScope(shield=True):
            await self.settle(reservation, used)


def used_tokens(status: int, tokens_in: int | None, tokens_out: int | None) -> int | None:
    """What a finished request used: its usage, 0 when it never answered, else unknown."""
    if tokens_in is not None or tokens_out is not None:
        return (tokens_in or 0) + (tokens_out or 0)
    return 0 if status != 200 else None
