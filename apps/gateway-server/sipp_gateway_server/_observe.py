"""Metrics (Prometheus, through ``prometheus-client``) and the JSON request log.

Each gateway gets its own ``CollectorRegistry``, so several apps in one
process (tests, an embedding application) never share or clash on series.
Label values are configuration names (targets, callers, routes) and status
codes, never request content: a target name a caller sent that is not
configured (a 403 or 404) is counted under ``_unknown``, so a client cannot
grow the label sets (40 refused requests naming distinct 1 MB targets once
made ``/metrics`` 846 MB and a scrape block the event loop for 7 s). The
access log and the status page keep at most :data:`SHOWN_CHARS` of such a
name. A minted token's caller label (``sub``) is
chosen by the application that mints it: keep it a role ("web-app"), not a
user id, or the series multiply.

The request log is one JSON object per line on the ``sipp.gateway.access``
logger: ids, names, numbers and the cancel reason. Prompts, completions,
tokens and secrets are never in it (the record is built from an explicit
list of fields, not from the request).
"""

from __future__ import annotations

import collections
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = [
    "UNKNOWN_LABEL",
    "Metrics",
    "Observer",
    "RecentRequests",
    "RequestRecord",
    "access_logger",
]

#: The one label value every unconfigured target name collapses to.
UNKNOWN_LABEL: Final = "_unknown"
#: How much of an unconfigured name the access log and the status page keep.
SHOWN_CHARS: Final = 64

access_logger: Final = logging.getLogger("sipp.gateway.access")
_encode_line: Final = msgspec.json.Encoder().encode
_LATENCY_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip


@dataclass(slots=True)
class RequestRecord:
    """What one request did; filled in along the request path."""

    request_id: str
    route: str
    started: float
    client: str = ""
    caller: str = ""
    target: str = ""
    status: int = 0
    code: str = ""
    stream: bool = False
    ttft: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cancel_reason: str | None = None
    upstream_kind: str | None = None

    def as_log(self, now: float) -> dict[str, Any]:
        return {
            "time": _timestamp(time.time()),
            "request_id": self.request_id,
            "client": self.client,
            "caller": self.caller or None,
            "target": self.target or None,
            "route": self.route,
            "status": self.status,
            "code": self.code or None,
            "latency_ms": round((now - self.started) * 1000, 3),
            "ttft_ms": None if self.ttft is None else round(self.ttft * 1000, 3),
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "stream": self.stream,
            "cancel_reason": self.cancel_reason,
        }


_second: list[Any] = [-1, ""]  # the last whole second formatted, and its text


def _timestamp(wall: float) -> str:
    """``wall`` as ``YYYY-MM-DDTHH:MM:SS.mmmZ``; the date and time part formatted once a second."""
    whole = int(wall)
    if whole != _second[0]:
        _second[0], _second[1] = whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{_second[1]}.{int(wall * 1000) % 1000:03d}Z"


def _log_line(line: dict[str, Any]) -> str:
    """``line`` as compact ASCII JSON, as ``json.dumps`` writes it, in a tenth of the time.

    msgspec writes the same text except that it leaves non-ASCII characters
    unescaped; such a line (a name sent by a client) goes through ``json``.
    """
    encoded = _encode_line(line)
    if encoded.isascii():
        return encoded.decode("ascii")
    return json.dumps(line, separators=(",", ":"))


class _Children:
    """A labelled metric's children by label values, each looked up in the registry once.

    ``labels()`` validates the values, takes a lock and builds a key on every
    call. A child is never removed from the registry, so this map holds
    exactly the series the registry already holds (bounded as the module
    docstring says), and never a stale one.
    """

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


class _LiveCollector(Collector):
    def __init__(self, read: Callable[[], Iterable[tuple[str, int, int]]]) -> None:
        self._read = read

    def collect(self) -> Iterable[GaugeMetricFamily]:
        in_flight = GaugeMetricFamily(
            "sipp_gateway_target_in_flight", "Requests running on each target", labels=["target"]
        )
        queue = GaugeMetricFamily(
            "sipp_gateway_local_queue_depth",
            "Requests waiting for a decode slot of a local model (in flight beyond n_parallel)",
            labels=["target"],
        )
        for target, running, parallel in self._read():
            in_flight.add_metric([target], running)
            if parallel > 0:
                queue.add_metric([target], max(0, running - parallel))
        yield in_flight
        yield queue


class Metrics:
    """Every series the gateway exports, on its own registry.

    ``live`` yields ``(target, in flight, decode slots)`` and ``active`` the
    requests in flight, both read at scrape time (nothing to keep in step).
    """

    def __init__(
        self, live: Callable[[], Iterable[tuple[str, int, int]]], active: Callable[[], int]
    ) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "sipp_gateway_requests", "Requests answered",
            ["target", "caller", "route", "status"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "sipp_gateway_request_duration_seconds", "Request latency (to the last byte)",
            ["route", "target"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.ttft = Histogram(
            "sipp_gateway_time_to_first_token_seconds", "Time to the first streamed token",
            ["target"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.tokens_in = Counter(
            "sipp_gateway_input_tokens", "Input tokens", ["target", "caller"], registry=r
        )
        self.tokens_out = Counter(
            "sipp_gateway_output_tokens", "Output tokens", ["target", "caller"], registry=r
        )
        self.in_flight = Gauge("sipp_gateway_in_flight", "Requests in flight", registry=r)
        self.in_flight.set_function(lambda: float(active()))
        self.rejections = Counter(
            "sipp_gateway_rejections", "Requests refused before running", ["reason"], registry=r
        )
        self.upstream_errors = Counter(
            "sipp_gateway_upstream_errors", "Failed runs by error kind", ["target", "kind"],
            registry=r,
        )  # fmt: skip
        for reason in (
            "auth",
            "rate",
            "tokens",
            "admission",
            "size",
            "blocked",
            "state",
            "timeout",
        ):
            self.rejections.labels(reason)
        r.register(_LiveCollector(live))
        self.request_count = _Children(self.requests)
        self.latency_of = _Children(self.latency)
        self.ttft_of = _Children(self.ttft)
        self.tokens_in_of = _Children(self.tokens_in)
        self.tokens_out_of = _Children(self.tokens_out)
        self.upstream_errors_of = _Children(self.upstream_errors)
        self.rejections_of = _Children(self.rejections)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RecentRequests:
    """The last few request records, for the status page."""

    def __init__(self, size: int = 50) -> None:
        self.items: collections.deque[dict[str, Any]] = collections.deque(maxlen=size)


class Observer:
    """Where a finished request is counted: metrics, the status page, the access log."""

    def __init__(
        self,
        metrics: Metrics,
        recent: RecentRequests,
        *,
        access_log: bool,
        targets: Iterable[str],
        callers: Iterable[str] = (),
    ) -> None:
        self.metrics = metrics
        self.recent = recent
        self.access_log = access_log
        self.targets = frozenset(targets)
        self.callers = frozenset(callers)

    def rejected(self, reason: str) -> None:
        self.metrics.rejections_of(reason).inc()

    def finish(self, record: RequestRecord) -> None:
        """Count ``record`` in the metrics, the status page, and the access log."""
        if record.target and record.target not in self.targets:
            target = UNKNOWN_LABEL
            record.target = _shorten(record.target)
        else:
            target = record.target or "-"
        # Static callers are configured; a minted token's caller is its signed
        # ``sub``, chosen by the application that holds the signing key.
        caller = record.caller or "-"
        if len(caller) > SHOWN_CHARS and caller not in self.callers:
            caller = UNKNOWN_LABEL
        finish(record, self.metrics, self.recent, self.access_log, target, caller)


def _shorten(name: str) -> str:
    return name if len(name) <= SHOWN_CHARS else name[:SHOWN_CHARS] + "..."


def finish(
    record: RequestRecord,
    metrics: Metrics,
    recent: RecentRequests,
    log: bool,
    target: str,
    caller: str,
) -> None:
    """Count ``record`` under the labels ``target`` and ``caller``; log and keep it."""
    now = time.perf_counter()
    metrics.request_count(target, caller, record.route, str(record.status)).inc()
    metrics.latency_of(record.route, target).observe(now - record.started)
    if record.ttft is not None:
        metrics.ttft_of(target).observe(record.ttft)
    if record.tokens_in:
        metrics.tokens_in_of(target, caller).inc(record.tokens_in)
    if record.tokens_out:
        metrics.tokens_out_of(target, caller).inc(record.tokens_out)
    if record.upstream_kind is not None:
        metrics.upstream_errors_of(target, record.upstream_kind).inc()
    line = record.as_log(now)
    recent.items.append(line)
    if log and access_logger.isEnabledFor(logging.INFO):
        # As ``access_logger.info`` without its caller lookup (a stack walk per
        # line, which would always find this function): handlers, filters and
        # formatters see the same record.
        entry = access_logger.makeRecord(
            access_logger.name, logging.INFO, __file__, 0, _log_line(line), (), None, "finish"
        )
        access_logger.handle(entry)
