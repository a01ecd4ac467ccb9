"""``sipp gateway serve``: both listeners on a real ASGI server, signals, and the drain.

uvicorn (asyncio) is the default: the fastest of the two here, and the one
most deployments know. hypercorn is used when ``server = "hypercorn"``, and
runs the gateway on trio. Each listener is its own server instance in the
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
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import anyio.abc

from ._app import GatewayServer
from ._checks import parse_listen

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
    """One ASGI server on one socket: ``start`` in a task group, ``stop`` to stop accepting."""

    def __init__(self, app: Any, sock: socket.socket, kind: str, grace: float) -> None:
        self.app = app
        self.sock = sock
        self.kind = kind
        self.grace = grace
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

        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=int(self.grace) + 1,
            server_header=False,
        )
        server = Server(config)

        def stop() -> None:
            server.should_exit = True

        self._stop = stop
        task_status.started()
        await server.serve([self.sock])

    async def _hypercorn(self, task_status: anyio.abc.TaskStatus[None]) -> None:
        from hypercorn.config import Config
        from hypercorn.trio import serve

        config = Config()
        config.bind = [f"fd://{self.sock.fileno()}"]
        config.loglevel = "WARNING"
        config.graceful_timeout = self.grace + 1
        config.include_server_header = False
        stopped = anyio.Event()
        self._stop = stopped.set
        task_status.started()
        await serve(self.app, config, shutdown_trigger=stopped.wait)

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
    public = _Listener(app, public_sock, server.server, grace)
    management = _Listener(app.management, management_sock, server.server, grace)
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with anyio.create_task_group() as group:
            await group.start(management.run)
            await group.start(public.run)
            async with app.running():
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


def run_gateway(app: GatewayServer) -> int:
    """Run ``serve_gateway`` on the backend the configuration asks for; the exit status."""
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
        anyio.run(serve_gateway, app, backend=backend)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # report why the gateway could not start or run, then exit 1
        for error in _leaves(exc):
            logger.error("sipp gateway failed: %s", error)
        return 1
    return 0


def _leaves(error: BaseException) -> list[BaseException]:
    inner = getattr(error, "exceptions", None)  # an exception group (3.10: the backport)
    if isinstance(inner, tuple):
        return [leaf for each in inner for leaf in _leaves(each)]
    return [error]


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"
