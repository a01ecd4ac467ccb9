"""Two gateway processes sharing one real Redis enforce one limit together."""

from __future__ import annotations

import os
from collections.abc import Iterator

import anyio
import httpx
import pytest
from gwtest import ADMIN_TOKEN, TOKEN, Gateway, start_gateway

pytestmark = pytest.mark.anyio

AUTH = {"authorization": f"Bearer {TOKEN}"}
UNLIMITED = {"authorization": f"Bearer {ADMIN_TOKEN}"}
CONFIG = """
[[targets]]
name = "echo"
kind = "scripted"

[[targets]]
name = "slow"
kind = "scripted"
reply = "a b c d e f g h i j k l m n o p q r s t"
token_delay = 0.1
max_concurrent = 1

[[tokens]]
caller = "shared"
token_env = "GW_WEB_TOKEN"
rate_limit = { requests_per_minute = 1, burst = 3 }

[[tokens]]
caller = "unlimited"
token_env = "GW_ADMIN_TOKEN"

[state]
backend = "redis"
redis_url_env = "GW_REDIS_URL"
key_prefix = "PREFIX"
"""


@pytest.fixture
def pair(redis_url: str, backend: str) -> Iterator[tuple[Gateway, Gateway]]:
    # A prefix of its own per test run: both backends share the Redis server.
    config = CONFIG.replace("PREFIX", f"test:{os.urandom(4).hex()}:")
    env = {"GW_REDIS_URL": redis_url}
    first = start_gateway(config, backend, env=env)
    try:
        second = start_gateway(config, backend, env=env)
    except BaseException:
        first.stop()
        raise
    yield first, second
    first.stop()
    second.stop()


async def test_replicas_share_one_rate_limit_and_one_admission_count(
    pair: tuple[Gateway, Gateway],
) -> None:
    first, second = pair
    async with httpx.AsyncClient(timeout=10) as http:
        statuses = []
        for gateway in (first, second, first, second):
            response = await http.post(
                f"{gateway.url}/v1/query", json={"model": "echo", "prompt": "x"}, headers=AUTH
            )
            statuses.append(response.status_code)
        assert statuses == [200, 200, 200, 429]  # burst 3, counted across both replicas
        assert response.json()["error"]["code"] == "rate_limited"
        assert int(response.headers["retry-after"]) > 1


async def test_admission_slot_is_shared_and_freed_on_disconnect(
    pair: tuple[Gateway, Gateway],
) -> None:
    first, second = pair
    body = {"model": "slow", "prompt": "x", "stream": True}
    async with httpx.AsyncClient(timeout=10) as http:
        async with http.stream(
            "POST", f"{first.url}/v1/query", json=body, headers=UNLIMITED
        ) as held:
            chunks = held.aiter_bytes()
            assert b"event: token" in await chunks.__anext__()
            refused = await http.post(f"{second.url}/v1/query", json=body, headers=UNLIMITED)
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "admission"
        # The first replica freed the slot when its client left; the second sees it.
        with anyio.fail_after(5):
            while True:
                again = await http.post(
                    f"{second.url}/v1/query", json={**body, "stream": False}, headers=UNLIMITED
                )
                if again.status_code == 200:
                    break
                assert again.json()["error"]["code"] == "admission"
                await anyio.sleep(0.05)
