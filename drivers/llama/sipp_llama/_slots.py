"""Sequence slots: which request owns which llama.cpp sequence, and what its cache holds.

A context has ``n_parallel`` sequences for text. A finished request leaves its
tokens in its sequence's cache, labelled with its ``context_key``; the next
request with that key gets the same slot back and recomputes only what comes
after the shared prefix. Slots without a key are handed out first, so keyed
caches survive as long as possible (least recently used goes first).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._sequence import TextJob

__all__ = ["Slot", "SlotTable", "common_prefix"]


def common_prefix(left: list[int], right: list[int]) -> int:
    size = min(len(left), len(right))
    index = 0
    while index < size and left[index] == right[index]:
        index += 1
    return index


class Slot:
    __slots__ = ("cached", "job", "key", "last_used", "seq")

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.job: TextJob | None = None
        self.key: str | None = None
        #: The tokens whose state the cache holds for this sequence, in order.
        self.cached: list[int] = []
        self.last_used = 0


class SlotTable:
    def __init__(self, count: int) -> None:
        self.slots = [Slot(seq) for seq in range(count)]
        self._clock = 0

    @property
    def has_free(self) -> bool:
        return any(slot.job is None for slot in self.slots)

    def active(self) -> list[TextJob]:
        return [slot.job for slot in self.slots if slot.job is not None]

    def choose(self, key: str | None) -> Slot | None:
        """The free slot for a request with ``key``: its own cache if any, else the cheapest."""
        free = [slot for slot in self.slots if slot.job is None]
        if not free:
            return None
        if key is not None:
            mine = [slot for slot in free if slot.key == key]
            if mine:
                return max(mine, key=lambda slot: slot.last_used)
        return min(free, key=lambda slot: (slot.key is not None, slot.last_used))

    def release(self, slot: Slot, key: str | None, cached: list[int]) -> None:
        self._clock += 1
        slot.job = None
        slot.key = key
        slot.cached = cached
        slot.last_used = self._clock
