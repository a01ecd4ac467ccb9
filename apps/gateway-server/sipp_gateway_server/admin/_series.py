"""Numbers the console shows: latency histograms and a fixed-size ring of time buckets.

Everything here is plain dicts and lists of numbers on purpose: a replica
publishes its snapshot as JSON (see :mod:`._shared`), and snapshots of
several replicas merge by adding numbers leaf by leaf (:func:`merge`).
Percentiles are read from merged histograms, never averaged, so p95 across
replicas is the p95 of all their requests (to a bucket's resolution).

The ring keeps :data:`SLOTS` buckets of :data:`STEP` seconds (one hour),
indexed by absolute time (``int(unix_time // STEP)``), so buckets of
different replicas line up without any clock agreement beyond NTP's. Memory
is fixed: a bucket that falls out of the hour is overwritten.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from typing import Any, Final

__all__ = [
    "BOUNDS_MS",
    "SLOTS",
    "STEP",
    "Ring",
    "empty_histogram",
    "merge",
    "observe",
    "percentile",
]

#: Upper bounds (ms) of the latency histogram's buckets; the last one is open.
BOUNDS_MS: Final = (
    1, 2, 5, 10, 20, 50, 100, 200, 350, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000, 30000,
    60000, math.inf,
)  # fmt: skip
STEP: Final = 5
SLOTS: Final = 3600 // STEP


def empty_histogram() -> list[int]:
    return [0] * len(BOUNDS_MS)


def observe(histogram: list[int], value_ms: float) -> None:
    histogram[bisect.bisect_left(BOUNDS_MS, value_ms)] += 1


def percentile(histogram: list[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) in ms, interpolated inside its bucket; ``None`` if empty."""
    total = sum(histogram)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(histogram):
        if count and seen + count >= rank:
            low = 0.0 if index == 0 else float(BOUNDS_MS[index - 1])
            high = float(BOUNDS_MS[index])
            if math.isinf(high):  # the open bucket: its lower bound is all we know
                return low
            return round(low + (high - low) * (rank - seen) / count, 1)
        seen += count
    return float(BOUNDS_MS[-2])


def _bucket() -> dict[str, Any]:
    return {
        "requests": 0,
        "errors": 0,
        "refused": 0,
        "tokens_out": 0,
        "in_flight": 0,
        "latency": empty_histogram(),
        "ttft": empty_histogram(),
    }


class Ring:
    """The last hour of this process in :data:`SLOTS` buckets of :data:`STEP` seconds."""

    def __init__(self) -> None:
        self._slots: list[tuple[int, dict[str, Any]] | None] = [None] * SLOTS

    def _at(self, now: float) -> dict[str, Any]:
        index = int(now // STEP)
        slot = self._slots[index % SLOTS]
        if slot is None or slot[0] != index:  # a bucket from an hour ago: start it afresh
            slot = (index, _bucket())
            self._slots[index % SLOTS] = slot
        return slot[1]

    def record(
        self,
        now: float,
        *,
        status: int,
        latency_ms: float,
        ttft_ms: float | None,
        tokens_out: int,
    ) -> None:
        bucket = self._at(now)
        bucket["requests"] += 1
        if status >= 500:
            bucket["errors"] += 1
        elif status >= 400:
            bucket["refused"] += 1
        bucket["tokens_out"] += tokens_out
        observe(bucket["latency"], latency_ms)
        if ttft_ms is not None:
            observe(bucket["ttft"], ttft_ms)

    def sample_in_flight(self, now: float, in_flight: int) -> None:
        """Keep the bucket's highest in-flight count (sampled about once a second)."""
        bucket = self._at(now)
        bucket["in_flight"] = max(bucket["in_flight"], in_flight)

    def snapshot(self, now: float) -> dict[str, dict[str, Any]]:
        """The buckets of the last hour, by absolute index (as strings, for JSON)."""
        oldest = int(now // STEP) - SLOTS + 1
        return {
            str(i): b
            for slot in self._slots
            if slot and (i := slot[0]) >= oldest
            for b in [slot[1]]
        }


def merge(values: Iterable[Any]) -> Any:
    """Add numbers leaf by leaf: dicts by key, lists by position, numbers by ``+``."""
    items = list(values)
    if not items:
        return {}
    first = items[0]
    if isinstance(first, Mapping):
        keys: dict[str, None] = {}
        for item in items:
            keys.update(dict.fromkeys(item))
        return {k: merge(item[k] for item in items if k in item) for k in keys}
    if isinstance(first, list):
        width = max(len(item) for item in items)
        return [sum(item[i] for item in items if i < len(item)) for i in range(width)]
    if isinstance(first, (int, float)) and not isinstance(first, bool):
        return sum(items)
    return first  # text (a name, a status): the first replica's


def series(buckets: Mapping[str, Mapping[str, Any]], now: float, window: int) -> dict[str, Any]:
    """Chart points for the last ``window`` seconds: one per bucket, oldest first."""
    last = int(now // STEP)
    count = max(1, min(SLOTS, window // STEP))
    points: dict[str, list[Any]] = {
        key: []
        for key in ("time", "rps", "error_rate", "in_flight", "p50", "p95", "ttft_p50",
                    "ttft_p95", "tokens_per_s")
    }  # fmt: skip
    for index in range(last - count + 1, last + 1):
        bucket = buckets.get(str(index)) or _bucket()
        requests = bucket["requests"]
        points["time"].append(index * STEP)
        points["rps"].append(round(requests / STEP, 3))
        points["error_rate"].append(round(bucket["errors"] / requests, 4) if requests else 0)
        points["in_flight"].append(bucket["in_flight"])
        points["p50"].append(percentile(bucket["latency"], 0.5))
        points["p95"].append(percentile(bucket["latency"], 0.95))
        points["ttft_p50"].append(percentile(bucket["ttft"], 0.5))
        points["ttft_p95"].append(percentile(bucket["ttft"], 0.95))
        points["tokens_per_s"].append(round(bucket["tokens_out"] / STEP, 2))
    return points
