"""A short load run in the default suite: 64 streaming clients for 5 seconds.

The minute-long run with memory sampling is ``benchmarks/bench_gateway_load.py``
(``nox -s bench -- gateway_load``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gwtest import Gateway, start_gateway
from loadcheck import LOAD_CONFIG, run_load

pytestmark = pytest.mark.anyio


@pytest.fixture
def load_gateway(mock_upstream: str, backend: str) -> Iterator[Gateway]:
    gateway = start_gateway(LOAD_CONFIG.replace("UPSTREAM", mock_upstream), backend)
    yield gateway
    gateway.stop()


async def test_64_streaming_clients_lose_nothing(load_gateway: Gateway) -> None:
    result = await run_load(load_gateway.url, clients=64, seconds=5.0, tokens=32)
    assert result.failures == []
    assert result.streams >= 64  # every client finished at least one stream
