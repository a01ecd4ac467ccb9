"""The pool targets' deployments: their opened pools, metrics and a snapshot for consoles.

A ``kind = "pool"`` target is added to the gateway's ``SippClient`` like any
other, with ``extensions={"sipp_pool": PoolHooks(...)}``: the shared cooldown
store (Redis backend) and a callback that hands the opened
``sipp_pool.PoolDriver`` back here. Its ``member_stats()`` are then read at
scrape time (nothing is counted twice, nothing to keep in step):

* ``sipp_gateway_deployment_requests_total{target,deployment}`` — attempts
  sent to the deployment (a request that fell back counts on both);
* ``..._failures_total`` — attempts that failed;
* ``..._fallbacks_total`` — failures whose request went on to the next one;
* ``..._cooldowns_total`` — cooldowns this replica started;
* ``sipp_gateway_deployment_in_flight`` and ``..._cooling`` (0 or 1) gauges;
* ``sipp_gateway_deployment_ttft_seconds`` — moving average of time to first token.

Labels are configuration names only. :meth:`Deployments.snapshot` is the
same data as plain dicts, for the status page (``/status.json``,
``"deployments"``) and the admin console.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from sipp_pool import CooldownStore, PoolDriver

__all__ = ["DeploymentCollector", "Deployments"]

_COUNTERS = (
    ("requests", "Attempts sent to each deployment of a pool target"),
    ("failures", "Attempts that failed, by deployment"),
    ("fallbacks", "Failed attempts whose request went on to another deployment"),
    ("cooldowns", "Cooldowns this replica started, by deployment"),
)


class Deployments:
    """Every pool target's opened pool, by target name."""

    def __init__(self, cooldowns: CooldownStore | None = None) -> None:
        self._cooldowns = cooldowns
        self._pools: dict[str, PoolDriver] = {}

    def extensions(self, target: str) -> dict[str, Any]:
        """What ``client.add`` hands the pool driver of ``target``."""
        from sipp_pool import EXTENSION, PoolHooks

        def opened(pool: PoolDriver) -> None:
            self._pools[target] = pool

        return {EXTENSION: PoolHooks(cooldowns=self._cooldowns, opened=opened)}

    def forget(self) -> None:
        """The client closed: its pools are gone."""
        self._pools.clear()

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Per pool target, one dict per deployment (in configured order).

        Keys: ``deployment``, ``requests``, ``failures``, ``fallbacks``,
        ``cooldowns``, ``in_flight``, ``cooling`` (bool), ``ttft_average``
        (seconds or ``None``). Counters are this replica's since it started.
        """
        out: dict[str, list[dict[str, Any]]] = {}
        for target, pool in self._pools.items():
            out[target] = [
                {
                    "deployment": s.name,
                    "requests": s.requests,
                    "failures": s.failures,
                    "fallbacks": s.fallbacks,
                    "cooldowns": s.cooldowns,
                    "in_flight": s.in_flight,
                    "cooling": s.cooling,
                    "ttft_average": s.ttft_average,
                }
                for s in pool.member_stats()
            ]
        return out


class DeploymentCollector(Collector):
    """The per-deployment series, read from the pools at scrape time."""

    def __init__(self, deployments: Deployments) -> None:
        self._deployments = deployments

    def collect(self) -> Iterable[CounterMetricFamily | GaugeMetricFamily]:
        labels = ["target", "deployment"]
        counters = {
            key: CounterMetricFamily(f"sipp_gateway_deployment_{key}", text, labels=labels)
            for key, text in _COUNTERS
        }
        in_flight = GaugeMetricFamily(
            "sipp_gateway_deployment_in_flight",
            "Attempts running on each deployment",
            labels=labels,
        )
        cooling = GaugeMetricFamily(
            "sipp_gateway_deployment_cooling",
            "1 while the deployment is cooling down (as this replica sees it)",
            labels=labels,
        )
        ttft = GaugeMetricFamily(
            "sipp_gateway_deployment_ttft_seconds",
            "Moving average of each deployment's time to first token",
            labels=labels,
        )
        for target, rows in self._deployments.snapshot().items():
            for row in rows:
                names = [target, row["deployment"]]
                for key, family in counters.items():
                    family.add_metric(names, row[key])
                in_flight.add_metric(names, row["in_flight"])
                cooling.add_metric(names, 1.0 if row["cooling"] else 0.0)
                if row["ttft_average"] is not None:
                    ttft.add_metric(names, row["ttft_average"])
        yield from counters.values()
        yield in_flight
        yield cooling
        yield ttft
