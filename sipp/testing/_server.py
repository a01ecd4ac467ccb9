"""Serve an ASGI app on loopback from a thread, for tests of HTTP drivers.

The server runs uvicorn in a thread with its own event loop, so a test on
either backend talks to it over real HTTP and the test's own task and thread
accounting sees only the client side. uvicorn is imported when a server
starts, so ``sipp.testing`` does not need it.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Literal

__all__ = ["ThreadedServer"]


class ThreadedServer:
    """``with ThreadedServer(app) as server:`` serves ``app`` at ``server.url``."""

    def __init__(
        self,
        app: Any,
        *,
        lifespan: Literal["auto", "on", "off"] = "auto",
        start_timeout: float = 10.0,
    ) -> None:
        import uvicorn

        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only
        # when the listener says it is TCP, and without it answers wait ~40 ms.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._start_timeout = start_timeout
        config = uvicorn.Config(
            app,
            log_level="error",
            lifespan=lifespan,
            timeout_graceful_shutdown=1,
            backlog=2048,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"sipp-test-server-{self.port}",
            daemon=True,
        )

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        deadline = time.monotonic() + self._start_timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the test server on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(5)
        self._socket.close()
