"""Real HTTP servers on 127.0.0.1 for the gateway tests.

On asyncio the app is served by uvicorn, on trio by hypercorn; both run
inside the test's own event loop, on a socket the fixture bound first.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
import pytest
import sniffio

Serve = Callable[[Any], AbstractAsyncContextManager[str]]


def _listening_socket() -> socket.socket:
    # The explicit IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only
    # when the listener says it is TCP; without it every answer waits ~40 ms (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


@asynccontextmanager
async def _uvicorn(app: Any, sock: socket.socket) -> AsyncIterator[None]:
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", lifespan="auto", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve, [sock])
        with anyio.fail_after(10):
            while not server.started:  # noqa: ASYNC110  (uvicorn has no started event)
                await anyio.sleep(0.01)
        try:
            yield
        finally:
            server.should_exit = True
            server.force_exit = True


@asynccontextmanager
async def _hypercorn(app: Any, sock: socket.socket) -> AsyncIterator[None]:
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    config.loglevel = "WARNING"
    config.graceful_timeout = 1
    stop = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(lambda: serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
        # hypercorn listens on our socket: wait until it answers.
        host, port = sock.getsockname()
        with anyio.fail_after(10):
            while True:
                try:
                    stream = await anyio.connect_tcp(host, port)
                except OSError:
                    await anyio.sleep(0.01)
                    continue
                await stream.aclose()
                break
        await anyio.sleep(0.05)
        try:
            yield
        finally:
            stop.set()


@pytest.fixture
def serve() -> Serve:
    """``async with serve(app) as base_url``: the app on a real server on loopback."""

    @asynccontextmanager
    async def run(app: Any) -> AsyncIterator[str]:
        sock = _listening_socket()
        host, port = sock.getsockname()
        server = _uvicorn if sniffio.current_async_library() == "asyncio" else _hypercorn
        try:
            async with server(app, sock):
                yield f"http://{host}:{port}"
        finally:
            with contextlib.suppress(OSError):  # hypercorn closes the descriptor itself
                sock.close()

    return run
