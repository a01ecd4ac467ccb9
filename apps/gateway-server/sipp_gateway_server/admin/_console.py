"""The admin console of one gateway process: its parts, its background loop, its data.

:class:`AdminConsole` is built by the gateway application with the parts it
reports on and changes (limits, client addresses, lifecycle, targets, the
recent list). It always counts and always applies shared live controls (a
replica whose console is off still obeys a change made on another one); its
web page and API (:mod:`._http`) are mounted on the management listener only
when ``[admin] password_env`` names a set variable.

:meth:`AdminConsole.run` runs for the gateway's lifetime: once a second it
samples the in-flight count into the one-hour ring and re-reads the shared
controls; every few seconds it publishes this replica's snapshot (Redis).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

import anyio

from .._state import StateUnavailable
from ._controls import Controls
from ._series import merge
from ._sessions import Sessions
from ._shared import MemoryShared, RedisShared, Shared
from ._stats import Stats, StatsObserver

if TYPE_CHECKING:
    from sipp.gateway.asgi import ASGIApp

    from .._activity import Activity
    from .._auth import ClientAddress
    from .._checks import Secrets
    from .._config import GatewayConfig
    from .._limits import Limits
    from .._observe import Metrics, RecentRequests
    from .._targets import Targets

__all__ = ["AdminConsole"]

audit_logger: Final = logging.getLogger("sipp.gateway.admin")
_TICK: Final = 1.0
_PUBLISH_EVERY: Final = 3.0


class AdminConsole:
    """Statistics, live controls, sessions and the web console of one gateway process."""

    def __init__(
        self,
        config: GatewayConfig,
        secrets: Secrets,
        *,
        limits: Limits,
        addresses: ClientAddress,
        activity: Activity,
        targets: Targets,
        recent: RecentRequests,
    ) -> None:
        admin = config.admin
        self.path = admin.path
        self.replica = os.urandom(6).hex()
        self.stats = Stats()
        self.shared: Shared
        if config.state.backend == "redis" and secrets.redis_url is not None:
            self.shared = RedisShared(secrets.redis_url, config.state.key_prefix)
        else:
            self.shared = MemoryShared()
        self.controls = Controls(config, limits, addresses, self.shared)
        self.sessions: Sessions | None = None
        if secrets.admin_password is not None:
            self.sessions = Sessions(
                secrets.admin_password, admin.session_ttl, admin.login_rate_limit
            )
        self._limits = limits
        self._activity = activity
        self._targets = targets
        self._descriptors = secrets.descriptors
        self.recent = recent

    @property
    def enabled(self) -> bool:
        return self.sessions is not None

    def observer(
        self,
        metrics: Metrics,
        *,
        access_log: bool,
        targets: Iterable[str],
        callers: Iterable[str] = (),
    ) -> StatsObserver:
        """The request path's observer, counting for the console too."""
        return StatsObserver(
            metrics,
            self.recent,
            self.stats,
            access_log=access_log,
            targets=targets,
            callers=callers,
        )

    def mount(self, management: ASGIApp) -> ASGIApp:
        """``management`` with the console under ``[admin] path`` (unchanged when it is off)."""
        if self.sessions is None:
            return management
        from ._http import console_app

        return console_app(self, self.sessions, management)

    # -- the background loop -------------------------------------------------------------

    async def run(self) -> None:
        """Sample, sync controls and publish until cancelled (the gateway's lifetime)."""
        async with self.shared.open():
            published = 0.0
            while True:
                now = time.time()
                self.stats.ring.sample_in_flight(now, self._activity.active)
                try:
                    await self.controls.sync()
                    if now - published >= _PUBLISH_EVERY:
                        await self.shared.publish(self.replica, self.snapshot(now), now)
                        published = now
                except StateUnavailable:
                    pass  # the state's own health loop reports it; try again next tick
                await anyio.sleep(_TICK)

    # -- what the API shows ----------------------------------------------------------------

    def snapshot(self, now: float) -> dict[str, Any]:
        """This replica's numbers, as published for the others."""
        snapshot = self.stats.snapshot(now)
        snapshot["replica"] = self.replica
        snapshot["replicas"] = 1
        snapshot["active"] = self._activity.active
        snapshot["in_flight"] = {
            name: self._limits.in_flight(f"target:{name}") for name in self._targets.configs
        }
        if self.sessions is not None:
            snapshot["logins"] = dict(self.sessions.counts)
        return snapshot

    async def merged(self, now: float) -> dict[str, Any]:
        """This replica's snapshot added to every other replica's latest (Redis)."""
        own = self.snapshot(now)
        if isinstance(self.shared, MemoryShared):
            return own
        try:
            others = await self.shared.snapshots(now)
        except StateUnavailable:
            return own | {"partial": True}
        merged: dict[str, Any] = merge(
            [own, *(s for s in others if s.get("replica") != self.replica)]
        )
        return merged

    def live(self, merged: dict[str, Any]) -> dict[str, Any]:
        return {
            "ready": self._activity.ready,
            "draining": self._activity.draining,
            "state": "ok" if self._limits.state_healthy else "unavailable",
            "in_flight": merged.get("active", self._activity.active),
            "replicas": merged.get("replicas", 1),
            "replica": self.replica,
            "partial": bool(merged.get("partial")),
        }

    def target_live(self) -> list[dict[str, Any]]:
        view = self.controls.view()["targets"]
        try:
            loaded = set(self._targets.available(self._targets.configs))
        except RuntimeError:  # not started yet, or stopping
            loaded = set()
        out = []
        for name, target in self._targets.configs.items():
            draining = view[name]["draining"]
            health = "draining" if draining else ("ready" if name in loaded else "down")
            out.append(
                {
                    "name": name,
                    "kind": target.kind,
                    "health": health,
                    "in_flight": self._limits.in_flight(f"target:{name}"),
                    "limit": view[name]["max_concurrent"],
                    "decode_slots": self._targets.decode_slots(name),
                }
            )
        return out

    def descriptors(self) -> dict[str, Any]:
        return self._descriptors

    async def record_change(self, entry: dict[str, Any]) -> None:
        """Log a change (one JSON line on ``sipp.gateway.admin``) and add it to the audit list."""
        entry = entry | {"replica": self.replica}
        audit_logger.info(json.dumps(entry, separators=(",", ":"), default=str))
        await self.shared.add_audit(entry)
