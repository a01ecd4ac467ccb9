"""The gateway application: it builds the narrow parts, runs their lifecycle, routes ASGI.

:class:`GatewayServer` is the public ASGI application (profile routes and
``/v1/models``); its :attr:`~GatewayServer.management` attribute is the
management one (health, readiness, metrics, status page). Mount either in your
own ASGI stack, or let ``sipp-gateway serve`` run both on their listeners.

The parts, each built here from the configuration and handed to whoever
needs it (none of them knows this class): :class:`._auth.Authenticator` and
:class:`._auth.ClientAddress` (who is calling), :class:`._limits.Limits` over
a :class:`._state.State` (rate limits and admission), :class:`._targets.Targets`
(the ``SippClient`` and its runs), :class:`._activity.Activity` (lifecycle and
the in-flight count), :class:`._observe.Observer` (metrics, status page, access
log). :class:`._handler.RequestPath` is the request path over them.

Lifecycle: :meth:`GatewayServer.running` (also driven by the ASGI
``lifespan`` protocol) opens the shared state and a ``SippClient``, adds every
target (models load here) and only then reports ready; on exit it drains:
new requests get 503, running ones have ``drain_timeout`` seconds to finish,
and whatever is left is cancelled with reason ``server_shutdown`` (a stream
then ends with an ``error`` event, never silently).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypedDict

import anyio

from sipp import SippClient
from sipp.gateway import GatewayJSONResponse

from ._activity import Activity
from ._auth import Authenticator, ClientAddress
from ._checks import Secrets, load_config
from ._config import GatewayConfig
from ._cooldowns import SharedCooldowns
from ._cors import Cors
from ._handler import RequestPath
from ._limits import Limits
from ._management import management_app
from ._observe import Metrics, Observer, RecentRequests
from ._pools import DeploymentCollector, Deployments
from ._state import MemoryState, State, StateUnavailable
from ._surface import SurfacePath
from ._surfaces import Surfaces
from ._targets import Targets
from ._token_limits import TokenLimits
from ._trace import continued_trace, tracing
from .admin import AdminConsole

if TYPE_CHECKING:
    import os

    from sipp.gateway.asgi import Receive, Scope, Send

__all__ = ["GatewayServer", "create_app"]

logger = logging.getLogger("sipp.gateway")


def _open_state(config: GatewayConfig, secrets: Secrets) -> State:
    if config.state.backend == "memory":
        return MemoryState()
    from ._redis import RedisState  # coredis is imported only when Redis is configured

    assert secrets.redis_url is not None  # load_config guarantees it
    state = config.state
    return RedisState(secrets.redis_url, state.key_prefix, lease_seconds=state.lease_seconds)


class _Parts(TypedDict):
    """What the profile path and the surfaces' path are both built from."""

    auth: Authenticator
    addresses: ClientAddress
    limits: Limits
    targets: Targets
    activity: Activity
    observer: Observer
    max_request_bytes: int
    body_timeout: float
    tokens: TokenLimits


def _shared_cooldowns(config: GatewayConfig, limits: Limits) -> SharedCooldowns | None:
    """Pools share cooldowns through Redis; in memory, each pool's own view is exact."""
    if config.state.backend != "redis":
        return None
    from ._redis import RedisState

    assert isinstance(limits.state, RedisState)
    return SharedCooldowns(limits.state, limits)


class GatewayServer:
    """The gateway as an ASGI application (the public listener)."""

    def __init__(self, config: GatewayConfig, secrets: Secrets) -> None:
        self.config = config
        security = config.security
        self.activity = Activity()
        state = config.state
        self.limits = Limits(
            _open_state(config, secrets),
            ip_rate_limit=security.ip_rate_limit,
            max_concurrent_requests=config.server.max_concurrent_requests,
            per_target={t.name: t.max_concurrent for t in config.targets},
            timeout=state.timeout,
            rate_limits_on_failure=state.rate_limits_on_failure,
            admission_on_failure=state.admission_on_failure,
        )
        #: The pool targets' deployments: ``deployments.snapshot()`` for consoles.
        self.deployments = Deployments(_shared_cooldowns(config, self.limits))
        self.targets = Targets(
            config.targets, secrets.descriptors, secrets.decode_slots, self.deployments
        )
        self.metrics = Metrics(self._live, lambda: self.activity.active)
        self.metrics.registry.register(DeploymentCollector(self.deployments))
        recent = RecentRequests()
        addresses = ClientAddress(security.client_ip, security.trusted_proxies, security.blocklist)
        self.admin = AdminConsole(
            config, secrets, limits=self.limits, addresses=addresses,
            activity=self.activity, targets=self.targets, recent=recent,
        )  # fmt: skip
        parts: _Parts = {
            "auth": Authenticator(config, secrets.tokens, secrets.signing_keys),
            "addresses": addresses,
            "limits": self.limits,
            "targets": self.targets,
            "activity": self.activity,
            "observer": self.admin.observer(
                self.metrics,
                access_log=config.server.access_log,
                targets=self.targets.configs,
                callers=[token.caller for token in config.tokens],
            ),
            "max_request_bytes": config.server.max_request_bytes,
            "body_timeout": config.server.body_timeout,
            "tokens": TokenLimits(self.limits),
        }
        self.path = RequestPath(**parts)
        # The OpenAI- and Anthropic-compatible routes, served with the same parts.
        self.surfaces = Surfaces(SurfacePath(**parts))
        self.cors = Cors(config.server.allowed_origins)
        routes = config.routes
        self._models_route = routes.models
        self._public = {routes.query: "query", routes.chat: "chat", routes.embed: "embed"}
        self.management = management_app(
            routes,
            activity=self.activity,
            limits=self.limits,
            targets=self.targets,
            metrics=self.metrics,
            recent=recent,
            deployments=self.deployments.snapshot,
        )
        self.management = self.admin.mount(self.management)  # the console, when it is on

    def __repr__(self) -> str:
        return f"<GatewayServer targets={sorted(self.targets.configs)} ready={self.ready}>"

    @property
    def ready(self) -> bool:
        return self.activity.ready

    def _live(self) -> Iterable[tuple[str, int, int]]:
        for name in self.targets.configs:
            yield name, self.limits.in_flight(f"target:{name}"), self.targets.decode_slots(name)

    # -- lifecycle ---------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[GatewayServer]:
        """Start (state, client, every target), serve, then drain and close."""
        state = self.limits.state
        async with state.open(), anyio.create_task_group() as group:
            await self._first_contact()
            group.start_soon(self.limits.watch)
            group.start_soon(self.admin.run)
            try:
                async with SippClient() as client, self.targets.serve(client):
                    self.activity.ready = True
                    try:
                        yield self
                    finally:
                        self.activity.ready = False
                        await self.drain(self.config.server.drain_timeout)
            finally:
                group.cancel_scope.cancel()

    async def _first_contact(self) -> None:
        # A state that is down at startup is not fatal: the limits apply their
        # failure policy and /readyz reports it until the watch loop sees it back.
        try:
            with anyio.fail_after(max(self.config.state.timeout, 2.0)):
                await self.limits.state.ping()
            self.limits.state_healthy = True
        except (StateUnavailable, TimeoutError) as exc:
            self.limits.state_healthy = False
            logger.warning("sipp gateway: shared state unavailable at startup: %s", exc)

    async def drain(self, grace: float) -> None:
        """Refuse new requests, let running ones finish for ``grace`` s, cancel the rest."""
        self.activity.stop_accepting()
        with anyio.move_on_after(grace):
            await self.activity.wait_idle()
        self.targets.cancel_all("server_shutdown")
        # Give cancelled streams a moment to write their error event.
        with anyio.move_on_after(2.0):
            await self.activity.wait_idle()

    # -- ASGI --------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if not tracing():
                await self._http(scope, receive, send)
                return
            # The caller's W3C trace goes on through the run to the upstream (sipp[otel]).
            with continued_trace(scope):
                await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    def _http(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # The route's coroutine is returned, not awaited here: a frame less for as
        # long as a request is open (a gateway holds one per open stream).
        send = self.cors.wrap(scope, send)
        method = scope["method"]
        path = scope["path"]
        if method == "OPTIONS" and self.cors.enabled:
            return self.cors.preflight(scope, send)
        operation = self._public.get(path)
        if not self.activity.accepting:
            body = {"error": {"code": "server_shutdown", "message": "the gateway is not ready"}}
            return GatewayJSONResponse(body, status=503)(scope, receive, send)
        if operation is not None and method == "POST":
            return self.path.profile(operation, scope, receive, send)
        if path == self._models_route and method == "GET":
            return self.path.models(scope, receive, send)
        if path in self.surfaces:
            return self.surfaces.serve(path, scope, receive, send)
        status, code = (405, "method_not_allowed") if operation else (404, "not_found")
        body = {"error": {"code": code, "message": f"no route {method} {path}"}}
        return GatewayJSONResponse(body, status=status)(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        try:
            async with self.running():
                await send({"type": "lifespan.startup.complete"})
                message = await receive()
        except Exception as exc:
            if not self.ready:
                await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                return
            raise
        await send({"type": "lifespan.shutdown.complete"})


def create_app(
    config: str | os.PathLike[str] | GatewayConfig,
    secrets: Secrets | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> GatewayServer:
    """The gateway for a configuration file (or a loaded configuration and its secrets).

    The result is the public ASGI app; ``app.management`` is the management app.
    Targets load when the app starts (ASGI lifespan, or ``async with app.running()``).
    """
    if isinstance(config, GatewayConfig):
        if secrets is None:
            raise TypeError("a loaded GatewayConfig needs its Secrets")
        return GatewayServer(config, secrets)
    loaded, loaded_secrets = load_config(config, environ=environ)
    return GatewayServer(loaded, loaded_secrets)
