"""The ``sipp.driver.Call`` a driver gets for one attempt of a run.

A thin, slotted view of the run's state: the ids and timeouts a driver
reads, and the state's own emit coroutines (so ``await call.emit(...)`` is one
call, not two).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._run import RunState

__all__ = ["AttemptCall"]


class AttemptCall:
    """The ``sipp.driver.Call`` the core hands a driver for one attempt."""

    __slots__ = (
        "_state",
        "attempt",
        "emit",
        "emit_reasoning",
        "emit_tool_call",
        "request_id",
        "stream",
        "timeouts",
    )

    def __init__(self, state: RunState, attempt: int) -> None:
        self._state = state
        self.request_id = state.id
        self.stream = state.stream
        self.timeouts = state.timeouts
        self.attempt = attempt
        # The state's own coroutines, so a driver's `await call.emit(...)` is one call, not two.
        self.emit = state.emit
        self.emit_reasoning = state.emit_reasoning
        self.emit_tool_call = state.emit_tool_call

    @property
    def cancel_requested(self) -> bool:
        return self._state.cancel_reason is not None
