"""The core's conformance kit against the gateway driver.

The server (the provider-route example, backed by a scripted endpoint) runs on
uvicorn in its own thread and event loop, so the kit's task and thread
accounting sees only the client side.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from sipp.testing.conformance import DriverConformance

sys.path.insert(0, str(Path(__file__).parents[2] / "examples"))
from gateway_provider_route import create_app

UPSTREAM = {
    "kind": "scripted",
    "tokens": [f"word{i} " for i in range(12)],
    "token_delay": 0.003,
    "embedding": [0.5, -0.25],
}


@pytest.fixture(scope="module")
def route_server() -> Iterator[str]:
    config = uvicorn.Config(create_app(UPSTREAM), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="gateway-route-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not (server.started and server.servers):
        assert time.monotonic() < deadline, "the route server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


class TestGatewayDriverConforms(DriverConformance):
    @pytest.fixture
    def descriptor(self, route_server: str) -> dict[str, Any]:
        return {"kind": "gateway", "target": "gpt-5-mini", "base_url": route_server}
