"""The public listener's uvicorn protocol offers the sipp.on_disconnect scope extension.

With it the gateway notices a client that left through a callback from the
protocol instead of a watcher task per request (a few KB per open stream).
"""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import threading
from typing import Any

import pytest
import uvicorn
from gwtest import free_port
from sipp_gateway_server._guard import ConnectionGuard, uvicorn_protocol

from sipp.gateway import DISCONNECT_EXTENSION

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("httptools") is None, reason="httptools is not installed"
)


def test_a_dropped_connection_calls_the_registered_callback() -> None:
    offered = threading.Event()
    called = threading.Event()
    withdrawn = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        register = (scope.get("extensions") or {}).get(DISCONNECT_EXTENSION)
        if register is None:
            return
        offered.set()
        gone = asyncio.Event()

        def on_lost() -> None:
            called.set()
            gone.set()

        withdraw = register(on_lost)
        await gone.wait()  # a stalled answer: only the callback ends it
        withdraw()
        withdrawn.set()

    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=uvicorn_protocol(ConnectionGuard(10), 5.0, 5.0),
        lifespan="off",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            threading.Event().wait(0.05)
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            assert offered.wait(10)
        # The client is gone: the protocol's connection_lost calls back at once.
        assert called.wait(10)
        assert withdrawn.wait(10)
    finally:
        server.should_exit = True
        thread.join(10)
