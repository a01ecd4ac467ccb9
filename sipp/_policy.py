"""Retry policy: exponential backoff with full jitter, honouring server hints.

Only the core retries, and only before the first token reached the caller,
and only errors whose ``retryable`` is set (computed by the one rule in
``_retry.py`` when the error is built). A server hint
(``retry-after-ms`` / ``retry-after``) replaces the computed delay; a hint
longer than :data:`MAX_RETRY_AFTER` is not waited for, the error goes to the
caller with its ``retry_after`` so it can decide.
"""

from __future__ import annotations

from typing import Final

from ._models import Timeouts

__all__ = ["DEFAULT_TIMEOUTS", "MAX_RETRY_AFTER", "backoff_delay"]

BASE_DELAY: Final = 0.25
MAX_DELAY: Final = 8.0
MAX_RETRY_AFTER: Final = 20.0

#: Used for a phase neither the request, the endpoint nor its driver set.
DEFAULT_TIMEOUTS: Final = Timeouts(connect=10.0, first_token=120.0, idle=60.0, total=None)


def backoff_delay(attempt: int, retry_after: float | None) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``, or ``None`` to give up."""
    if retry_after is not None:
        if retry_after > MAX_RETRY_AFTER:
            return None
        return max(0.0, retry_after)
    import random  # only a run that retries pays for it

    return random.uniform(0.0, min(MAX_DELAY, BASE_DELAY * (2**attempt)))
