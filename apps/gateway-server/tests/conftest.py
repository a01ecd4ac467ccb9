"""Real processes on loopback: gateways (``sipp gateway serve``), Redis, a mock upstream.

A gateway runs under uvicorn when the test runs on asyncio and under
hypercorn (on trio) when it runs on trio, so every end-to-end test covers
both servers. Starting a process costs about a second, so gateways with the
same configuration are shared by the tests of a session (``gateways``
caches them by configuration and backend); tests that change a gateway's
state (drain, shared limits) start their own.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from gwtest import HERE, Gateway, free_port, start_gateway, wait_for
from redistest import RedisServer
from surfaces import surface_gateway, surface_gateways  # noqa: F401  (the surface tests' fixtures)


@pytest.fixture(scope="session")
def gateways() -> Iterator[Callable[[str, str], Gateway]]:
    """``gateways(config_body, backend)``: a shared gateway for that configuration."""
    running: dict[tuple[str, str], Gateway] = {}

    def get(body: str, backend: str) -> Gateway:
        key = (body, backend)
        if key not in running or running[key].process.poll() is not None:
            running[key] = start_gateway(body, backend)
        return running[key]

    yield get
    for gateway in running.values():
        gateway.stop()


@pytest.fixture
def backend(anyio_backend: tuple[str, dict[str, object]] | str) -> str:
    return anyio_backend if isinstance(anyio_backend, str) else anyio_backend[0]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real ``redis-server`` on a loopback port, shared by the session, never disturbed."""
    server = RedisServer()
    yield server.url
    server.close()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A ``redis-server`` of the test's own, to stop, freeze and restart."""
    server = RedisServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def mock_upstream() -> Iterator[str]:
    """The OpenAI-compatible mock (``mock_openai.py``) in its own process; its ``/v1`` URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(HERE / "mock_openai.py"), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(f"http://127.0.0.1:{port}/v1/models", process=process)
    yield f"http://127.0.0.1:{port}/v1"
    process.terminate()
    process.wait(10)
