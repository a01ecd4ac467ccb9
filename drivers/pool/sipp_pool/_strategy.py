"""The order in which a request tries the pool's members, one function per strategy.

Each strategy orders the members that are available (not cooling down); the
members still cooling come last, soonest-back first, so a pool whose every
member is cooling still probes one rather than failing without trying.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._descriptor import Strategy
from ._health import MemberHealth

__all__ = ["Picker"]


class Picker:
    """Orders members for one request. Holds the weighted strategy's running state."""

    def __init__(self, strategy: Strategy, weights: Sequence[float]) -> None:
        self.strategy = strategy
        self._weights = list(weights)
        self._credit = [0.0] * len(self._weights)
        self._turn = 0

    def order(self, members: Sequence[MemberHealth], now: float) -> list[int]:
        """Indexes of ``members`` in the order to try them."""
        ready = [i for i, m in enumerate(members) if m.available(now)]
        cooling = sorted(
            (i for i, m in enumerate(members) if not m.available(now)),
            key=lambda i: members[i].cooling_until,
        )
        return self._rank(ready, members) + cooling

    def _rank(self, ready: list[int], members: Sequence[MemberHealth]) -> list[int]:
        if len(ready) <= 1 or self.strategy == "ordered":
            return ready
        if self.strategy == "weighted":
            first = self._smooth_weighted(ready)
            rest = sorted((i for i in ready if i != first), key=lambda i: -self._weights[i])
            return [first, *rest]
        # Ties go round-robin, so equal members share the load instead of the first
        # one taking every request.
        self._turn += 1
        rotation = {index: (pos - self._turn) % len(ready) for pos, index in enumerate(ready)}
        if self.strategy == "least_busy":
            return sorted(ready, key=lambda i: (members[i].in_flight, rotation[i]))
        # fastest: a member never measured goes first, so every member gets measured.
        return sorted(
            ready,
            key=lambda i: (
                members[i].ttft_average is not None,
                members[i].ttft_average or 0.0,
                rotation[i],
            ),
        )

    def _smooth_weighted(self, ready: list[int]) -> int:
        """Smooth weighted round-robin: exact shares over any window, no bursts."""
        total = 0.0
        best = ready[0]
        for index in ready:
            self._credit[index] += self._weights[index]
            total += self._weights[index]
            if self._credit[index] > self._credit[best]:
                best = index
        self._credit[best] -= total
        return best
