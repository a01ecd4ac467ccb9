"""The token channel between a run's driver and its reader.

The producer (the run task) never waits for the reader: a slow or absent
reader only makes pending text merge. At most ``max_pending`` items are
queued; a push beyond that appends to the newest item (texts concatenated,
token counts summed), so memory is bounded by the text itself and nothing is
lost. Batches are built, with their running totals, when the reader takes
them, so ``stats`` count what the reader actually saw.

Reasoning text and tool-call pieces ride in the same items as the answer
text, so the order between them survives; merging keeps each kind apart
(reasoning joins reasoning, pieces of one tool call join each other).

When tokens arrive one by one, every push wakes the reader, so the wake is on
the hottest path there is: the reader parks on one doorbell made for the
channel (``_doorbell.py``), not on an ``Event`` made for every wait, and a
push rings it only while the reader is parked. A gateway holds a channel per
open stream, so the queue is a plain list (at most ``max_pending`` short
items; a ``deque`` costs 0.6 KB even when empty).
"""

from __future__ import annotations

from ._chat import ToolCallDelta
from ._doorbell import Doorbell, make_doorbell
from ._models import BatchStats, TokenBatch

__all__ = ["TokenChannel", "merge_tool_deltas"]


class _Pending:
    __slots__ = ("frames", "more", "reasoning", "sequence_start", "text", "tools")

    def __init__(self, sequence_start: int, text: str, frames: int) -> None:
        self.sequence_start = sequence_start
        self.text = text
        #: Text merged in after ``text`` (None while the reader keeps up: no list per token).
        self.more: list[str] | None = None
        self.frames = frames
        # Rare kinds stay None on the plain-text hot path.
        self.reasoning: list[str] | None = None
        self.tools: list[ToolCallDelta] | None = None


def merge_tool_deltas(deltas: list[ToolCallDelta]) -> tuple[ToolCallDelta, ...]:
    """Pieces of the same call joined into one, calls kept in the order they started."""
    merged: dict[int, ToolCallDelta] = {}
    for delta in deltas:
        before = merged.get(delta.index)
        if before is None:
            merged[delta.index] = delta
        else:
            merged[delta.index] = ToolCallDelta(
                index=delta.index,
                id=before.id or delta.id,
                name=before.name or delta.name,
                arguments=before.arguments + delta.arguments,
            )
    return tuple(merged.values())


class TokenChannel:
    """Single-producer, single-reader, never-blocking, lossless."""

    __slots__ = (
        "_batches_sent",
        "_bell",
        "_bytes_sent",
        "_closed",
        "_error",
        "_frames_pushed",
        "_frames_sent",
        "_max_pending",
        "_pending",
        "_reader_parked",
        "request_id",
        "stream_id",
    )

    def __init__(self, request_id: str, stream_id: str, max_pending: int = 8) -> None:
        self.request_id = request_id
        self.stream_id = stream_id
        self._max_pending = max_pending
        self._pending: list[_Pending] = []
        self._frames_pushed = 0
        self._frames_sent = 0
        self._bytes_sent = 0
        self._batches_sent = 0
        self._closed = False
        self._error: BaseException | None = None
        # Made at the first wait: a run nobody reads never needs one.
        self._bell: Doorbell | None = None
        self._reader_parked = False

    def push(self, text: str, frames: int) -> None:
        """Queue ``text``; call from the event loop thread only."""
        if self._closed:
            return
        pending = self._pending
        if len(pending) >= self._max_pending:
            last = pending[-1]
            if last.more is None:
                last.more = [text]
            else:
                last.more.append(text)
            last.frames += frames
        else:
            pending.append(_Pending(self._frames_pushed, text, frames))
        self._frames_pushed += frames
        if self._reader_parked:
            self._wake()

    def push_reasoning(self, text: str, frames: int) -> None:
        """Queue reasoning text; call from the event loop thread only."""
        if not self._closed:
            item = self._item_for(frames)
            if item.reasoning is None:
                item.reasoning = [text]
            else:
                item.reasoning.append(text)
            self._wake()

    def push_tool_call(self, delta: ToolCallDelta) -> None:
        """Queue a piece of a tool call; call from the event loop thread only."""
        if not self._closed:
            item = self._item_for(1)
            if item.tools is None:
                item.tools = [delta]
            else:
                item.tools.append(delta)
            self._wake()

    def _item_for(self, frames: int) -> _Pending:
        pending = self._pending
        if len(pending) >= self._max_pending:
            item = pending[-1]
            item.frames += frames
        else:
            item = _Pending(self._frames_pushed, "", frames)
            pending.append(item)
        self._frames_pushed += frames
        return item

    def _wake(self) -> None:
        if self._reader_parked:
            self._reader_parked = False
            assert self._bell is not None
            self._bell.ring()

    def close(self, error: BaseException | None = None) -> None:
        """No more pushes; the reader drains what is queued, then sees ``error`` (if any)."""
        if self._closed:
            return
        self._closed = True
        self._error = error
        self._wake()

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
            bell = self._bell
            if bell is None:
                bell = self._bell = make_doorbell()
            # Only a parked reader is rung, so at most one ring is ever pending (only
            # if the reader was cancelled right after a ring: its next wait just
            # loops once).
            self._reader_parked = True
            try:
                await bell.wait()
            finally:
                self._reader_parked = False
        item = self._pending.pop(0)
        text = item.text if item.more is None else "".join([item.text, *item.more])
        byte_count = len(text) if text.isascii() else len(text.encode("utf-8"))
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
            reasoning="" if item.reasoning is None else "".join(item.reasoning),
            tool_calls=() if item.tools is None else merge_tool_deltas(item.tools),
        )
