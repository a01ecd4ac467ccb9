"""``sipp gateway serve``: both listeners on a real ASGI server, signals, and the drain.

uvicorn (asyncio) is the default: the fastest of the two here, and the one
most deployments know; it runs on uvloop with httptools' parser when they
are installed (the default dependencies install them where they have
wheels). hypercorn is used when ``server = "hypercorn"``, and runs the
gateway on trio. Each listener is its own server instance in the
same event loop, so the management app never shares a port with the public
one. The servers' own signal handling is turned off: this module listens for
``SIGTERM``/``SIGINT`` with anyio and runs the drain itself:

1. readiness turns 503 and the public listener stops accepting connections;
2. requests in flight have ``drain_timeout`` seconds to finish;
3. what is left is cancelled with reason ``server_shutdown`` (streams end
   with an ``error`` event), targets are closed, the process exits 0.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import anyio.abc

from ._app import GatewayServer
from ._checks import parse_listen
from ._config import ServerConfig
from ._gc import freeze_startup
from ._guard import ConnectionGuard, uvicorn_protocol
from ._serve_trio import serve_hypercorn

__all__ = ["run_gateway", "serve_gateway"]

logger = logging.getLogger("sipp.gateway")


def _bind(address: str) -> socket.socket:
    host, port = parse_listen(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP (not 0): asyncio sets TCP_NODELAY on accepted
    # connections only then, and without it every answer waits ~40 ms (Nagle
    # meeting delayed ACKs). Linux also copies the option to accepted sockets.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class _Listener:
    """One ASGI server on one socket: ``start`` in a task group, ``stop`` to stop accepting.

    The public listener gets the connection guard (cap and header deadline,
    ``_guard.py``); the management one is small, on its own socket, and has
    to stay reachable when the public one is flooded.
    """

    def __init__(
        self,
        app: Any,
        sock: socket.socket,
        server: ServerConfig,
        grace: float,
        guard: ConnectionGuard | None = None,
    ) -> None:
        self.app = app
        self.sock = sock
        self.kind = server.server
        self.server = server
        self.grace = grace
        self.guard = guard
        self.done = anyio.Event()
        self._stop: Callable[[], None] = lambda: None

    async def run(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        try:
            if self.kind == "uvicorn":
                await self._uvicorn(task_status)
            else:
                await self._hypercorn(task_status)
        finally:
            self.done.set()

    async def _uvicorn(self, task_status: anyio.abc.TaskStatus[None]) -> None:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield  # signals are ours (see the module docstring)

        server = self.server
        protocol: Any = "auto"  # httptools when installed, else h11
        if self.guard is not None:
            protocol = uvicorn_protocol(self.guard, server.header_timeout, server.keepalive_timeout)
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=int(self.grace) + 1,
            server_header=False,
            http=protocol,
            timeout_keep_alive=max(1, math.ceil(server.keepalive_timeout)),
            # Off: uvicorn would take the client address from X-Forwarded-For
            # of any loopback peer, even with client_ip = "peer". The gateway
            # reads forwarding headers itself, under [security] (_auth.py).
            proxy_headers=False,
            forwarded_allow_ips="",
        )
        running = Server(config)

        def stop() -> None:
            running.should_exit = True

        self._stop = stop
        task_status.started()
        await running.serve([self.sock])

    async def _hypercorn(self, task_status: anyio.abc.TaskStatus[None]) -> None:
        from hypercorn.config import Config
        from hypercorn.trio import serve

        server = self.server
        config = Config()
        config.bind = [f"fd://{self.sock.fileno()}"]
        config.loglevel = "WARNING"
        config.graceful_timeout = self.grace + 1
        config.include_server_header = False
        # hypercorn's idle timer runs from a connection's start (and from each
        # response's end) until a request's headers are complete: it is the
        # header deadline and the keep-alive timeout at once.
        config.keep_alive_timeout = min(server.header_timeout, server.keepalive_timeout)
        stopped = anyio.Event()
        self._stop = stopped.set
        task_status.started()
        if self.guard is None:
            await serve(self.app, config, shutdown_trigger=stopped.wait)
        else:
            await serve_hypercorn(self.app, config, self.sock, self.guard, stopped.wait)

    def stop(self) -> None:
        self._stop()


async def serve_gateway(
    app: GatewayServer, *, on_ready: Callable[[str, str], Awaitable[None] | None] | None = None
) -> None:
    """Serve ``app`` on its two listeners until ``SIGTERM``/``SIGINT``, then drain."""
    server = app.config.server
    grace = server.drain_timeout + 2.0
    public_sock = _bind(server.listen)
    management_sock = _bind(server.management_listen)
    public = _Listener(app, public_sock, server, grace, ConnectionGuard(server.max_connections))
    management = _Listener(app.management, management_sock, server, grace)
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with anyio.create_task_group() as group:
            await group.start(management.run)
            await group.start(public.run)
            async with app.running():
                freeze_startup()
                public_url = _url(public_sock)
                management_url = _url(management_sock)
                logger.warning(
                    "sipp gateway ready: public %s, management %s (%d targets)",
                    public_url,
                    management_url,
                    len(app.targets),
                )
                if on_ready is not None:
                    result = on_ready(public_url, management_url)
                    if result is not None:
                        await result
                async for signum in signals:
                    logger.warning(
                        "sipp gateway: %s, draining (up to %gs)",
                        signal.Signals(signum).name,
                        server.drain_timeout,
                    )
                    break
                app.activity.stop_accepting()
                public.stop()
            # app.running() drained and closed every target; now let the servers go.
            with anyio.move_on_after(grace):
                await public.done.wait()
            management.stop()
            with anyio.move_on_after(grace):
                await management.done.wait()
            group.cancel_scope.cancel()
    logger.warning("sipp gateway stopped")


def _raise_descriptor_limit(connections: int) -> None:
    """Raise the soft open-file limit towards the hard one, for ``max_connections``."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Unix
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + 256  # the management listener, upstreams, Redis, logs
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def run_gateway(app: GatewayServer) -> int:
    """Run ``serve_gateway`` on the backend the configuration asks for; the exit status."""
    _raise_descriptor_limit(app.config.server.max_connections)
    backend = "trio" if app.config.server.server == "hypercorn" else "asyncio"
    if not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        for name in ("sipp.gateway", "sipp.gateway.access"):
            named = logging.getLogger(name)
            named.addHandler(handler)
            named.setLevel(logging.INFO)
            named.propagate = False
    try:
        anyio.run(serve_gateway, app, backend=backend, backend_options=_backend_options(backend))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # report why the gateway could not start or run, then exit 1
        for error in _leaves(exc):
            logger.error("sipp gateway failed: %s", error)
        return 1
    return 0


def _backend_options(backend: str) -> dict[str, Any]:
    """uvloop under asyncio when it is installed: its loop and transports cost about
    half of asyncio's own per request (hypercorn on trio is unchanged)."""
    if backend != "asyncio":
        return {}
    try:
        import uvloop  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        return {}
    return {"use_uvloop": True}


def _leaves(error: BaseException) -> list[BaseException]:
    inner = getattr(error, "exceptions", None)  # an exception group (3.10: the backport)
    if isinstance(inner, tuple):
        return [leaf for each in inner for leaf in _leaves(each)]
    return [error]


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"
