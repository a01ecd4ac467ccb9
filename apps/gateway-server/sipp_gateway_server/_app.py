"""The gateway application: its lifecycle, its two ASGI apps, and the drain.

:class:`GatewayServer` is the public ASGI application (profile routes and
``/v1/models``); its :attr:`~GatewayServer.management` attribute is the
management one (health, readiness, metrics, status page). Mount either in your
own ASGI stack, or let ``sipp gateway serve`` run both on their listeners.

Lifecycle: :meth:`GatewayServer.running` (also driven by the ASGI
``lifespan`` protocol) opens the shared state and a ``SippClient``, adds every
target (models load here) and only then reports ready; on exit it drains:
new requests get 503, running ones have ``drain_timeout`` seconds to finish,
and whatever is left is cancelled with reason ``server_shutdown`` (a stream
then ends with an ``error`` event, never silently).
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio

from sipp import SippClient
from sipp.gateway import GatewayJSONResponse

from ._auth import Authenticator, ClientAddress
from ._checks import Secrets, load_config
from ._config import GatewayConfig, TargetConfig
from ._cors import Cors
from ._handler import handle_models, handle_profile
from ._management import management_app
from ._observe import Metrics, RecentRequests
from ._state import MemoryState, State

if TYPE_CHECKING:
    import os

    from sipp.gateway.asgi import Receive, Scope, Send

__all__ = ["GatewayServer", "create_app"]


class GatewayServer:
    """The gateway as an ASGI application (the public listener)."""

    def __init__(self, config: GatewayConfig, secrets: Secrets) -> None:
        self.config = config
        self._secrets = secrets
        self.targets: dict[str, TargetConfig] = {t.name: t for t in config.targets}
        self.auth = Authenticator(config, secrets.tokens, secrets.signing_keys)
        security = config.security
        self.addresses = ClientAddress(
            security.client_ip, security.trusted_proxies, security.blocklist
        )
        self.state: State = MemoryState()
        self.metrics = Metrics(self._live)
        self.recent = RecentRequests()
        self.cors = Cors(config.server.allowed_origins)
        self.ready = False
        self.draining = False
        #: Profile requests in flight in this process.
        self.active = 0
        self._idle: anyio.Event | None = None
        self._client: SippClient | None = None
        self._runs: weakref.WeakSet[Any] = weakref.WeakSet()
        routes = config.routes
        self._public = {routes.query: "query", routes.chat: "chat", routes.embed: "embed"}
        self.management = management_app(self)

    def __repr__(self) -> str:
        return f"<GatewayServer targets={sorted(self.targets)} ready={self.ready}>"

    @property
    def client(self) -> SippClient:
        if self._client is None:
            raise RuntimeError("the gateway is not running")
        return self._client

    def track(self, run: Any) -> None:
        self._runs.add(run)

    def describe(self, name: str) -> dict[str, Any]:
        # The core has no public accessor for an endpoint's capabilities yet.
        caps = self.client.get(name).capabilities
        return {
            "id": name,
            "object": "model",
            "owned_by": "sipp",
            "kind": self.targets[name].kind,
            "capabilities": {
                "query": caps.query,
                "chat": caps.chat,
                "embed": caps.embed,
                "streaming": caps.streaming,
            },
        }

    def _live(self) -> Iterable[tuple[str, int, int]]:
        for name in self.targets:
            parallel = self._secrets.decode_slots.get(name, 0)
            yield name, self.state.in_flight(f"target:{name}"), parallel

    # -- lifecycle ---------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[GatewayServer]:
        """Start (state, client, every target), serve, then drain and close."""
        async with anyio.create_task_group() as group:
            self.state = await self._open_state(group)
            try:
                async with SippClient() as client:
                    self._client = client
                    for name in self.targets:
                        await client.add(name, self._descriptor(name))
                    self.ready = True
                    try:
                        yield self
                    finally:
                        self.ready = False
                        await self.drain(self.config.server.drain_timeout)
                        self._client = None
            finally:
                group.cancel_scope.cancel()
                with anyio.CancelScope(shield=True):
                    await self.state.aclose()

    def _descriptor(self, name: str) -> Mapping[str, Any]:
        return self._secrets.descriptors[name]

    async def _open_state(self, group: anyio.abc.TaskGroup) -> State:
        if self.config.state.backend == "memory":
            return MemoryState()
        from ._redis import LEASE_SECONDS, RedisState

        assert self._secrets.redis_url is not None
        state = RedisState(self._secrets.redis_url, self.config.state.key_prefix)
        await state.start()

        async def renew() -> None:
            while True:
                await anyio.sleep(LEASE_SECONDS / 3)
                await state.renew()

        group.start_soon(renew)
        return state

    async def drain(self, grace: float) -> None:
        """Refuse new requests, let running ones finish for ``grace`` s, cancel the rest."""
        self.draining = True
        with anyio.move_on_after(grace):
            await self._wait_idle()
        for run in list(self._runs):
            run.cancel("server_shutdown")
        # Give cancelled streams a moment to write their error event.
        with anyio.move_on_after(2.0):
            await self._wait_idle()

    async def _wait_idle(self) -> None:
        while self.active > 0:
            self._idle = anyio.Event()
            await self._idle.wait()

    def request_started(self) -> None:
        self.active += 1
        self.metrics.in_flight.inc()

    def request_finished(self) -> None:
        self.active -= 1
        self.metrics.in_flight.dec()
        if self.active == 0 and self._idle is not None:
            self._idle.set()

    # -- ASGI --------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        send = self.cors.wrap(scope, send)
        method = scope["method"]
        path = scope["path"]
        if method == "OPTIONS" and self.cors.enabled:
            await self.cors.preflight(scope, send)
            return
        operation = self._public.get(path)
        if self.draining or not self.ready:
            body = {"error": {"code": "server_shutdown", "message": "the gateway is not ready"}}
            await GatewayJSONResponse(body, status=503)(scope, receive, send)
        elif operation is not None and method == "POST":
            await handle_profile(self, operation, scope, receive, send)
        elif path == self.config.routes.models and method == "GET":
            await handle_models(self, scope, receive, send)
        else:
            status, code = (405, "method_not_allowed") if operation else (404, "not_found")
            body = {"error": {"code": code, "message": f"no route {method} {path}"}}
            await GatewayJSONResponse(body, status=status)(scope, receive, send)

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
