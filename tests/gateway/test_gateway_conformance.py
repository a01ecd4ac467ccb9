"""The core's conformance kit against the gateway driver.

The server (the provider-route example, backed by a scripted endpoint) runs in
a ``ThreadedServer``, so the kit's task and thread accounting sees only the
client side.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sipp.testing import ThreadedServer
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
    with ThreadedServer(create_app(UPSTREAM)) as server:
        yield server.url


class TestGatewayDriverConforms(DriverConformance):
    @pytest.fixture
    def descriptor(self, route_server: str) -> dict[str, Any]:
        return {"kind": "gateway", "target": "gpt-5-mini", "base_url": route_server}
