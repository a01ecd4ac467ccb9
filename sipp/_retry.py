"""Whether an error may be retried: the one rule every error class asks.

Only answers that mean "try again" are retried: a connection that could not
be opened or broke before the first token, a connect timeout, and the
upstream statuses 408 (request timeout), 409 (conflict), 429 (rate limited),
503 (unavailable) and 529 (overloaded). An unknown 5xx is *not* retried: it
is as likely a bug that would fail again, costing the caller the backoff.
Kinds that no retry can fix (a bad key, an empty quota, a context too long)
are never retried, whatever the status said. An in-band stream error has no
status; its kind alone decides.

The error classes compute ``retryable`` from here when they are built, so
drivers need not set it; a driver that knows better may still override it.
"""

from __future__ import annotations

from typing import Final

__all__ = ["NEVER_RETRY_KINDS", "RETRYABLE_KINDS", "RETRYABLE_STATUSES", "is_retryable"]

#: Upstream statuses that mean "try again later".
RETRYABLE_STATUSES: Final = frozenset({408, 409, 429, 503, 529})
#: Kinds that mean "try again" when there is no status (an in-band error event),
#: plus the transport's own: a refused or broken connection.
RETRYABLE_KINDS: Final = frozenset(
    {"rate_limited", "overloaded", "timeout", "connect", "transport"}
)
#: Kinds no retry can fix, whatever the status.
NEVER_RETRY_KINDS: Final = frozenset(
    {
        "authentication",
        "authorization",
        "quota_exceeded",
        "model_not_found",
        "context_length_exceeded",
        "unsupported_feature",
    }
)


def is_retryable(kind: str, status: int | None = None, *, phase: str | None = None) -> bool:
    """The rule: ``kind`` is an upstream error kind or ``"connect"`` / ``"transport"``.

    ``phase`` is a timeout's phase: only a connect timeout is retried (a slow
    answer retried would multiply the wait; a total timeout has no time left).
    """
    if phase is not None:
        return phase == "connect"
    if kind in NEVER_RETRY_KINDS:
        return False
    if status is None:
        return kind in RETRYABLE_KINDS
    return status in RETRYABLE_STATUSES
