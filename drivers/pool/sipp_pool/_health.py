"""What the pool knows about each member: load, speed, failures and cooldowns.

Plain bookkeeping on the event loop's thread (no locks): every method is
called between awaits. ``now`` comes from the caller (``anyio.current_time``)
so the rules are testable without a clock.
"""

from __future__ import annotations

__all__ = ["MemberHealth", "MemberStats"]

from typing import NamedTuple

#: Weight of the newest sample in the moving average of time to first token.
_EWMA_ALPHA = 0.3


class MemberStats(NamedTuple):
    """A snapshot for metrics and consoles."""

    name: str
    requests: int
    failures: int
    fallbacks: int
    cooldowns: int
    in_flight: int
    cooling: bool
    ttft_average: float | None


class MemberHealth:
    """One member's counters and state."""

    __slots__ = (
        "consecutive_failures",
        "cooldowns",
        "cooling_until",
        "failures",
        "fallbacks",
        "in_flight",
        "name",
        "requests",
        "ttft_average",
        "unshared",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.requests = 0
        self.failures = 0
        #: Requests this member failed that went on to another member.
        self.fallbacks = 0
        self.cooldowns = 0
        self.in_flight = 0
        self.consecutive_failures = 0
        self.cooling_until = 0.0
        self.ttft_average: float | None = None
        #: A cooldown started here that a shared store has not been told of yet.
        self.unshared = False

    def available(self, now: float) -> bool:
        return now >= self.cooling_until

    def started(self) -> None:
        self.requests += 1
        self.in_flight += 1

    def ended(self) -> None:
        self.in_flight -= 1

    def succeeded(self, ttft: float | None) -> None:
        self.consecutive_failures = 0
        if ttft is not None:
            before = self.ttft_average
            self.ttft_average = ttft if before is None else before + _EWMA_ALPHA * (ttft - before)

    def failed(
        self, now: float, *, max_failures: int, cooldown: float, retry_after: float | None
    ) -> None:
        """Count a failure; start a cooldown after ``max_failures`` in a row or on a hint."""
        self.failures += 1
        self.consecutive_failures += 1
        until = self.cooling_until
        if self.consecutive_failures >= max_failures:
            until = max(until, now + cooldown)
        if retry_after is not None and retry_after > 0:
            # The member told us when to come back: no request before then.
            until = max(until, now + retry_after)
        if until > max(self.cooling_until, now):
            self.cooldowns += 1
            self.cooling_until = until
            self.unshared = True

    def snapshot(self, now: float) -> MemberStats:
        return MemberStats(
            name=self.name,
            requests=self.requests,
            failures=self.failures,
            fallbacks=self.fallbacks,
            cooldowns=self.cooldowns,
            in_flight=self.in_flight,
            cooling=not self.available(now),
            ttft_average=self.ttft_average,
        )
