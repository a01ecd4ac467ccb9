"""What the console counts: every finished request, by target, caller and client address.

:class:`StatsObserver` is the gateway's :class:`~.._observe.Observer` with one
more step: after the metrics, the recent list and the access log have the
request, it is counted here from the same log line (so the console never
sees anything the access log does not: ids, names, numbers, never a prompt
or a token).

Client addresses are bounded (:data:`MAX_CLIENTS`, least recently seen
forgotten first): a scan from many addresses must not grow the gateway's
memory. Callers are configuration names (tokens) or minted ``sub`` claims,
bounded the same way.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, Final

from .._observe import Metrics, Observer, RecentRequests, RequestRecord
from ._series import Ring, empty_histogram, observe

__all__ = ["MAX_CALLERS", "MAX_CLIENTS", "Stats", "StatsObserver", "refusal_reason"]

MAX_CLIENTS: Final = 1024
MAX_CALLERS: Final = 1024
REASONS: Final = ("auth", "rate", "admission", "size", "blocked", "draining", "state")
# Error codes of refusals (see _refusal.py and sipp.gateway) and the reason they count as.
_REASON_OF_CODE: Final = {
    "authentication": "auth",
    "authorization": "auth",
    "rate_limited": "rate",
    "admission": "admission",
    "payload_too_large": "size",
    "blocked": "blocked",
    "draining": "draining",
    "unavailable": "state",
}


def refusal_reason(status: int, code: str) -> str | None:
    """The refusal reason of a finished request, or ``None`` when it was not refused."""
    if status < 400:
        return None
    return _REASON_OF_CODE.get(code)


def _party() -> dict[str, Any]:
    return {
        "requests": 0,
        "refusals": dict.fromkeys(REASONS, 0),
        "tokens_in": 0,
        "tokens_out": 0,
    }


def _target() -> dict[str, Any]:
    return {
        "requests": 0,
        "failures": 0,
        "refused": 0,
        "cooldowns": 0,
        "tokens_out": 0,
        "generation_ms": 0.0,
        "latency": empty_histogram(),
        "ttft": empty_histogram(),
    }


class Stats:
    """Counters of this process since it started, plus the one-hour :class:`._series.Ring`."""

    def __init__(self) -> None:
        self.ring = Ring()
        self.targets: dict[str, dict[str, Any]] = {}
        self.callers: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.clients: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.logins = {"succeeded": 0, "failed": 0, "limited": 0}

    def record(self, record: RequestRecord, line: dict[str, Any], now: float) -> None:
        status = record.status
        latency = float(line.get("latency_ms") or 0.0)
        ttft = line.get("ttft_ms")
        tokens_in = record.tokens_in or 0
        tokens_out = record.tokens_out or 0
        reason = refusal_reason(status, record.code)
        self.ring.record(
            now, status=status, latency_ms=latency, ttft_ms=ttft, tokens_out=tokens_out
        )
        if record.target:
            target = self.targets.setdefault(record.target, _target())
            target["requests"] += 1
            if status >= 500 and reason is None:
                target["failures"] += 1
            if reason is not None:
                target["refused"] += 1
            if record.upstream_kind == "rate_limited":  # the upstream asked us to back off
                target["cooldowns"] += 1
            if tokens_out:
                target["tokens_out"] += tokens_out
                target["generation_ms"] += max(0.0, latency - (ttft or 0.0))
            observe(target["latency"], latency)
            if ttft is not None:
                observe(target["ttft"], ttft)
        for table, key, limit in (
            (self.callers, record.caller or "-", MAX_CALLERS),
            (self.clients, record.client or "-", MAX_CLIENTS),
        ):
            party = table.get(key)
            if party is None:
                party = table[key] = _party()
                if len(table) > limit:
                    table.popitem(last=False)
            else:
                table.move_to_end(key)
            party["requests"] += 1
            party["tokens_in"] += tokens_in
            party["tokens_out"] += tokens_out
            if reason is not None:
                party["refusals"][reason] += 1

    def snapshot(self, now: float) -> dict[str, Any]:
        """Everything, as JSON-ready numbers (what a replica publishes)."""
        return {
            "series": self.ring.snapshot(now),
            "targets": self.targets,
            "callers": dict(self.callers),
            "clients": dict(self.clients),
            "logins": self.logins,
        }


class StatsObserver(Observer):
    """The gateway's observer that also counts each finished request in :class:`Stats`."""

    def __init__(
        self,
        metrics: Metrics,
        recent: RecentRequests,
        stats: Stats,
        *,
        access_log: bool,
        targets: Iterable[str],
        callers: Iterable[str] = (),
    ) -> None:
        super().__init__(metrics, recent, access_log=access_log, targets=targets, callers=callers)
        self.stats = stats

    def finish(self, record: RequestRecord) -> None:
        super().finish(record)
        self.stats.record(record, self.recent.items[-1], time.time())
