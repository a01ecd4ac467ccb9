"""The token channel between a run's driver and its reader.

The producer (the run task) never waits for the reader: a slow or absent
reader only makes pending text merge. At most ``max_pending`` items are
queued; a push beyond that appends to the newest item (texts concatenated,
token counts summed), so memory is bounded by the text itself and nothing is
lost. Batches are built, with their running totals, when the reader takes
them, so ``stats`` count what the reader actually saw.
"""

from __future__ import annotations

from collections import deque

import anyio

from ._models import BatchStats, TokenBatch

__all__ = ["TokenChannel"]


class _Pending:
    __slots__ = ("frames", "parts", "sequence_start")

    def __init__(self, sequence_start: int, text: str, frames: int) -> None:
        self.sequence_start = sequence_start
        self.parts = [text]
        self.frames = frames


class TokenChannel:
    """Single-producer, single-reader, never-blocking, lossless."""

    __slots__ = (
        "_batches_sent",
        "_bytes_sent",
        "_closed",
        "_error",
        "_frames_pushed",
        "_frames_sent",
        "_max_pending",
        "_pending",
        "_waiter",
        "request_id",
        "stream_id",
    )

    def __init__(self, request_id: str, stream_id: str, max_pending: int = 8) -> None:
        self.request_id = request_id
        self.stream_id = stream_id
        self._max_pending = max_pending
        self._pending: deque[_Pending] = deque()
        self._frames_pushed = 0
        self._frames_sent = 0
        self._bytes_sent = 0
        self._batches_sent = 0
        self._closed = False
        self._error: BaseException | None = None
        self._waiter: anyio.Event | None = None

    def push(self, text: str, frames: int) -> None:
        """Queue ``text``; call from the event loop thread only."""
        if self._closed:
            return
        pending = self._pending
        if len(pending) >= self._max_pending:
            last = pending[-1]
            last.parts.append(text)
            last.frames += frames
        else:
            pending.append(_Pending(self._frames_pushed, text, frames))
        self._frames_pushed += frames
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()

    def close(self, error: BaseException | None = None) -> None:
        """No more pushes; the reader drains what is queued, then sees ``error`` (if any)."""
        if self._closed:
            return
        self._closed = True
        self._error = error
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()

    def discard(self) -> None:
        """Drop what is queued (after a cancel, the reader just stops)."""
        self._pending.clear()
        self.close()

    async def receive(self) -> TokenBatch | None:
        """The next batch, or ``None`` at the end; raises the run's error after the text."""
        while not self._pending:
            if self._closed:
                if self._error is not None:
                    raise self._error
                return None
            waiter = self._waiter = anyio.Event()
            await waiter.wait()
        item = self._pending.popleft()
        text = item.parts[0] if len(item.parts) == 1 else "".join(item.parts)
        byte_count = len(text.encode("utf-8"))
        self._frames_sent += item.frames
        self._bytes_sent += byte_count
        self._batches_sent += 1
        return TokenBatch(
            request_id=self.request_id,
            stream_id=self.stream_id,
            sequence_start=item.sequence_start,
            text=text,
            frame_count=item.frames,
            byte_count=byte_count,
            stats=BatchStats(
                frames_sent=self._frames_sent,
                bytes_sent=self._bytes_sent,
                batches_sent=self._batches_sent,
            ),
        )
