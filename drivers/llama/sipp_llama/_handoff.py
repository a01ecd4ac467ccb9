"""The hand-off of one request's text from the worker thread to the event loop.

The worker never blocks on the loop and never wakes it more than once per
batch: text is appended under a lock, and only the first append after the
reader took everything schedules a wake-up (``run_sync_soon`` on the loop's
token, which does not wait). While the reader is busy, later tokens simply
join the pending text, so a reader that falls behind receives one merged
batch instead of one wake-up per token.

A wake-up is dear for the worker, and not because of the loop's work alone.
Scheduling one writes to the loop's wake-up socket, a call that lets go of
the GIL; the loop thread wakes, takes the GIL and relays the text, and the
worker gets the GIL back only when the loop sleeps again. So the loop's work
for every hand-off lands on the decode path (0.4-1.5 ms per token measured
on a busy 2-CPU machine, against a 15-30 ms token), and when the decode
threads fill every CPU the loop thread also takes a core away from them.
A mailbox made with an ``interval`` therefore hands over the first text at
once (time to first token is untouched) and afterwards at most once per
``interval``: text that arrives sooner is held, and goes with the next
``put`` or ``flush`` after the interval, or with ``finish``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Generic, TypeVar

import anyio
import anyio.lowlevel
from anyio import RunFinishedError

__all__ = ["Mailbox"]

ResultT = TypeVar("ResultT")


class Mailbox(Generic[ResultT]):
    """Single producer (a worker thread), single consumer (a task on the loop).

    The outcome is either a result or an exception, delivered once, after all text.
    """

    __slots__ = (
        "_error",
        "_event",
        "_finished",
        "_frames",
        "_interval",
        "_lock",
        "_next_wake",
        "_parts",
        "_result",
        "_token",
        "_wake_scheduled",
        "holding",
    )

    def __init__(self, interval: float = 0.0) -> None:
        # Built on the loop: the token says how to reach it from the worker.
        self._token = anyio.lowlevel.current_token()
        self._lock = threading.Lock()
        self._event = anyio.Event()
        self._parts: list[str] = []
        self._frames = 0
        self._finished = False
        self._result: ResultT | None = None
        self._error: BaseException | None = None
        self._wake_scheduled = False
        # Worker-only state: no lock needed.
        self._interval = interval
        #: Before this ``perf_counter`` time, ``put`` holds text instead of waking the loop.
        self._next_wake = 0.0
        #: Text is waiting for the interval to pass (the worker must ``flush`` it later).
        self.holding = False

    # -- the worker's side --------------------------------------------------------

    def put(self, text: str, frames: int) -> None:
        """Add text for the reader; wake the loop unless a wake-up is pending or not yet due."""
        now = time.perf_counter() if self._interval else 0.0
        with self._lock:
            if text:
                self._parts.append(text)
            self._frames += frames
            if self._wake_scheduled:
                # The pending wake-up will carry this text too.
                self.holding = False
                return
            if now < self._next_wake:
                self.holding = True
                return
            self._wake_scheduled = True
        self.holding = False
        self._next_wake = now + self._interval
        self._wake()

    def flush(self) -> None:
        """Hand over held text if its interval has passed (worker; cheap when nothing is held)."""
        if self.holding:
            self.put("", 0)

    def finish(self, result: ResultT | None = None, error: BaseException | None = None) -> None:
        with self._lock:
            if self._finished:
                return
            self._finished = True
            self._result = result
            self._error = error
            wake = not self._wake_scheduled
            self._wake_scheduled = True
        # The end is never held back: it carries whatever text is still held.
        self.holding = False
        if wake:
            self._wake()

    def _wake(self) -> None:
        token = self._token
        # RunFinishedError: the loop is gone, and with it anyone who could read this.
        with contextlib.suppress(RunFinishedError):
            token.backend_class.run_sync_soon(self._set_event, (), token.native_token)

    def _set_event(self) -> None:
        self._event.set()

    # -- the loop's side ----------------------------------------------------------

    async def take(self) -> tuple[str, int, bool]:
        """Wait for news: ``(text, frames, finished)``; text may be empty."""
        await self._event.wait()
        with self._lock:
            parts, self._parts = self._parts, []
            frames, self._frames = self._frames, 0
            finished = self._finished
            self._wake_scheduled = False
            self._event = anyio.Event()
        text = parts[0] if len(parts) == 1 else "".join(parts)
        return text, frames, finished

    def outcome(self) -> ResultT:
        """The result, or the worker's error raised; only after ``take`` said finished."""
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result
