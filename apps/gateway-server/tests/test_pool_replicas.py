"""Two gateway replicas on one real Redis share their pools' cooldowns."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx
import pytest
from gwtest import TOKEN, start_gateway
from pool_upstream import Upstream, Upstreams
from redistest import RedisServer
from test_pools import deployment_series, pool_config

pytestmark = pytest.mark.anyio

AUTH = {"authorization": f"Bearer {TOKEN}"}
STATE = """
[state]
backend = "redis"
redis_url_env = "GW_REDIS_URL"
"""


@pytest.fixture
def upstreams() -> Iterator[tuple[Upstream, ...]]:
    with Upstreams("a", "b") as running:
        yield running


async def text_of(url: str) -> str:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        body = {"model": "pool", "prompt": "hi"}
        response = await http.post("/v1/query", json=body, headers=AUTH)
        assert response.status_code == 200, response.text
        text: str = response.json()["text"]
        return text


async def test_a_cooldown_seen_by_one_replica_keeps_the_other_away(
    upstreams: tuple[Upstream, ...], redis_server: RedisServer, backend: str
) -> None:
    a, b = upstreams
    config = pool_config(a.deployment(), b.deployment(), max_failures=1, cooldown=3.0) + STATE
    env = {"GW_REDIS_URL": redis_server.url}
    first = start_gateway(config, backend, env=env)
    second = start_gateway(config, backend, env=env)
    try:
        a.mode = "error"
        assert await text_of(first.url) == "b0 b1 b2 b3 "  # a failed once: cooled down
        for _ in range(3):
            assert await text_of(second.url) == "b0 b1 b2 b3 "
        assert a.requests == 1  # the second replica never tried it
        assert (await deployment_series(second, "sipp_gateway_deployment_requests_total"))["a"] == 0
        a.mode = "ok"
        await anyio.sleep(3.1)
        assert await text_of(second.url) == "a0 a1 a2 a3 "  # recovered everywhere
        assert await text_of(first.url) == "a0 a1 a2 a3 "
    finally:
        first.stop()
        second.stop()


async def test_replicas_go_on_alone_while_redis_is_down(
    upstreams: tuple[Upstream, ...], redis_server: RedisServer, backend: str
) -> None:
    a, b = upstreams
    config = pool_config(a.deployment(), b.deployment(), max_failures=1, cooldown=30) + STATE
    gateway = start_gateway(config, backend, env={"GW_REDIS_URL": redis_server.url})
    try:
        redis_server.stop()
        a.mode = "error"
        with anyio.fail_after(5):  # each state call is bounded by [state] timeout
            assert await text_of(gateway.url) == "b0 b1 b2 b3 "
            assert await text_of(gateway.url) == "b0 b1 b2 b3 "
        assert a.requests == 1  # the replica's own cooldown still applies (fail open)
    finally:
        gateway.stop()
