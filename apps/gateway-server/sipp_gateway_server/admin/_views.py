"""The JSON answers of the console's read API, built from (merged) statistics and live state.

Each function takes the merged statistics (:func:`._series.merge` of every
replica's snapshot) and returns plain JSON. Nothing here reads a request's
content: the inputs are counters, names from the configuration, and the
access log's lines (ids, names, numbers), so no prompt, completion, token or
key can reach an answer. A target's descriptor is reduced to an allowlist
of harmless fields (:data:`_DESCRIPTOR_FIELDS`): it may hold resolved secrets.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

from ._series import STEP, merge, percentile, series

__all__ = ["clients", "overview", "recent", "targets"]

#: Descriptor fields shown for a target (everything else, keys included, never is).
_DESCRIPTOR_FIELDS: Final = ("provider", "model", "n_ctx", "n_parallel")
_RECENT_FIELDS: Final = (
    "time", "request_id", "client", "caller", "target", "route", "status", "code", "latency_ms",
    "ttft_ms", "tokens_in", "tokens_out", "stream", "cancel_reason",
)  # fmt: skip
_TOP: Final = 100


def _rate(count: float, seconds: float) -> float:
    return round(count / seconds, 3) if seconds > 0 else 0.0


def overview(
    merged: Mapping[str, Any], live: Mapping[str, Any], now: float, window: int
) -> dict[str, Any]:
    """Status, the last minute's numbers, and chart series over ``window`` seconds."""
    buckets = merged.get("series", {})
    last = int(now // STEP)
    minute = [buckets[str(i)] for i in range(last - 60 // STEP + 1, last + 1) if str(i) in buckets]
    recent = merge(minute) if minute else {}
    requests = recent.get("requests", 0)
    latency = recent.get("latency", [])
    ttft = recent.get("ttft", [])
    return {
        "status": live,
        "last_minute": {
            "requests_per_s": _rate(requests, 60),
            "error_rate": round(recent.get("errors", 0) / requests, 4) if requests else 0.0,
            "refused_per_s": _rate(recent.get("refused", 0), 60),
            "in_flight": live["in_flight"],
            "latency_p50_ms": percentile(latency, 0.5),
            "latency_p95_ms": percentile(latency, 0.95),
            "ttft_p50_ms": percentile(ttft, 0.5),
            "ttft_p95_ms": percentile(ttft, 0.95),
            "tokens_per_s": _rate(recent.get("tokens_out", 0), 60),
        },
        "logins": merged.get("logins", {}),
        "window": window,
        "step": STEP,
        "series": series(buckets, now, window),
    }


def _deployment(descriptor: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: descriptor[k] for k in _DESCRIPTOR_FIELDS if k in descriptor}
    source = descriptor.get("source")
    if isinstance(source, str):  # a file name says which model; the directory says nothing useful
        out["model"] = os.path.basename(source)
    return out


def targets(
    merged: Mapping[str, Any], live: list[dict[str, Any]], descriptors: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Per target (each is one deployment here): health, load, counts, latency, speed."""
    counted = merged.get("targets", {})
    in_flight = merged.get("in_flight", {})
    out = []
    for item in live:
        name = item["name"]
        stats = counted.get(name, {})
        generation = stats.get("generation_ms", 0.0) / 1000
        latency = stats.get("latency", [])
        ttft = stats.get("ttft", [])
        out.append(
            {
                **item,
                "in_flight": in_flight.get(name, item["in_flight"]),
                "deployment": _deployment(descriptors.get(name, {})),
                "requests": stats.get("requests", 0),
                "failures": stats.get("failures", 0),
                "refused": stats.get("refused", 0),
                "cooldowns": stats.get("cooldowns", 0),
                "latency_p50_ms": percentile(latency, 0.5),
                "latency_p95_ms": percentile(latency, 0.95),
                "ttft_p50_ms": percentile(ttft, 0.5),
                "ttft_p95_ms": percentile(ttft, 0.95),
                "tokens_out": stats.get("tokens_out", 0),
                "tokens_per_s": _rate(stats.get("tokens_out", 0), generation),
            }
        )
    return out


def _table(rows: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    ranked = sorted(rows.items(), key=lambda kv: -int(kv[1].get("requests", 0)))[:_TOP]
    return [{key: name, **values} for name, values in ranked]


def clients(merged: Mapping[str, Any]) -> dict[str, Any]:
    """Callers and client addresses (the busiest first): requests, refusals, tokens."""
    callers = merged.get("callers", {})
    addresses = merged.get("clients", {})
    return {
        "callers": _table(callers, "caller"),
        "clients": _table(addresses, "client"),
        "tracked": {"callers": len(callers), "clients": len(addresses)},
    }


def recent(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The recent requests, newest first, reduced to the table's fields."""
    return [{k: line.get(k) for k in _RECENT_FIELDS} for line in reversed(lines)]
