"""Shared by the surface tests: the gateway configuration and its processes.

One gateway per anyio backend (uvicorn for asyncio, hypercorn for trio),
started with ``rich_gateway.py`` so the ``rich`` test driver is registered,
and one local target serving the real test model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gwtest import HERE, Gateway, start_gateway
from sipp_llama.testing import test_model_path

LAUNCHER = HERE / "rich_gateway.py"


def config(model: Path) -> str:
    return f"""
[[targets]]
name = "rich"
kind = "rich"

[[targets]]
name = "steady"
kind = "rich"
token_delay = 0.01

[[targets]]
name = "slowrich"
kind = "rich"
token_delay = 0.2

[[targets]]
name = "words"
kind = "scripted"
reply = "one two three four five six seven eight"
token_delay = 0.005

[[targets]]
name = "busy"
kind = "scripted"
reply = "never"
fail_at = 0
failure = "rate_limited"
retry_after = 7

[[targets]]
name = "broken"
kind = "scripted"
reply = "never"
fail_at = 0
failure = "provider"

[[targets]]
name = "midway"
kind = "scripted"
reply = "one two three four"
fail_at = 2
failure = "transport"

[[targets]]
name = "private"
kind = "scripted"
reply = "private answer"

[[targets]]
name = "smol"
kind = "local"
source = "{model}"
n_ctx = 1024
n_threads = 1

[[tokens]]
caller = "web-app"
token_env = "GW_WEB_TOKEN"
targets = ["rich", "steady", "slowrich", "words", "busy", "broken", "midway", "smol"]

[[tokens]]
caller = "admin"
token_env = "GW_ADMIN_TOKEN"
"""


@pytest.fixture(scope="session")
def surface_gateways() -> Iterator[Callable[[str], Gateway]]:
    running: dict[str, Gateway] = {}

    def get(backend: str) -> Gateway:
        gateway = running.get(backend)
        if gateway is None or gateway.process.poll() is not None:
            gateway = start_gateway(config(test_model_path()), backend, launcher=LAUNCHER)
            running[backend] = gateway
        return gateway

    yield get
    for gateway in running.values():
        gateway.stop()


@pytest.fixture
def surface_gateway(surface_gateways: Callable[[str], Gateway], backend: str) -> Gateway:
    return surface_gateways(backend)
