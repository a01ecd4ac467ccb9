"""From token bytes to the text a reader may see: UTF-8 safe, stop strings never leaked.

A pure state machine (no llama.cpp, no I/O) so it can be tested exhaustively.
Tokens arrive as bytes; a character may be split across tokens, so bytes go
through an incremental decoder that keeps an incomplete character back. Text
that could still turn into a stop string is held back too: only text that can
no longer be part of one is released.
"""

from __future__ import annotations

import codecs

__all__ = ["TextAssembler"]


class TextAssembler:
    """Feed token bytes with :meth:`feed`; take releasable text from its return value.

    Once a stop string matched, :attr:`stopped` is True and the text before
    it has been released; everything after it is dropped.
    """

    __slots__ = ("_decoder", "_held", "_stops", "stopped")

    def __init__(self, stops: list[str] | None) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stops = [stop for stop in stops or () if stop]
        self._held = ""
        self.stopped = False

    def feed(self, data: bytes) -> str:
        """Add one token's bytes; return the text that is now safe to release."""
        if self.stopped:
            return ""
        text = self._decoder.decode(data)
        if not self._stops:
            return text
        return self._release(self._held + text)

    def finish(self) -> str:
        """The end of generation: release what was held (an incomplete character as U+FFFD)."""
        if self.stopped:
            return ""
        text = self._held + self._decoder.decode(b"", final=True)
        self._held = ""
        if not self._stops:
            return text
        cut = self._find_stop(text)
        if cut is not None:
            self.stopped = True
            return text[:cut]
        return text

    def _release(self, text: str) -> str:
        cut = self._find_stop(text)
        if cut is not None:
            self.stopped = True
            self._held = ""
            return text[:cut]
        keep = self._partial_suffix(text)
        if keep:
            self._held = text[-keep:]
            return text[:-keep]
        self._held = ""
        return text

    def _find_stop(self, text: str) -> int | None:
        found: int | None = None
        for stop in self._stops:
            index = text.find(stop)
            if index >= 0 and (found is None or index < found):
                found = index
        return found

    def _partial_suffix(self, text: str) -> int:
        """Length of the longest end of ``text`` that begins some stop string."""
        best = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(text)), best, -1):
                if text.endswith(stop[:size]):
                    best = size
                    break
        return best
