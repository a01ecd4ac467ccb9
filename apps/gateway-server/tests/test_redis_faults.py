"""Redis faults against real gateway processes: restart, freeze, shared ids, TLS and sockets.

Each test has a ``redis-server`` of its own that it stops, freezes (SIGSTOP)
and restarts. uvicorn serves the asyncio runs, hypercorn (on trio) the trio
runs. These are the regression tests of issue 11, items 1, 4, 5 and 8.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import anyio
import httpx
import pytest
from gwtest import ADMIN_TOKEN, TOKEN, Gateway, sse_events, start_gateway
from redistest import RedisServer

pytestmark = pytest.mark.anyio

AUTH = {"authorization": f"Bearer {TOKEN}"}
UNLIMITED = {"authorization": f"Bearer {ADMIN_TOKEN}"}
WORDS = [f"w{i}" for i in range(30)]
CONFIG = f"""
[[targets]]
name = "echo"
kind = "scripted"

[[targets]]
name = "slow"
kind = "scripted"
reply = "{" ".join(WORDS)}"
token_delay = 0.1
max_concurrent = 2

[[tokens]]
caller = "limited"
token_env = "GW_WEB_TOKEN"
rate_limit = {{ requests_per_minute = 1, burst = 1 }}

[[tokens]]
caller = "unlimited"
token_env = "GW_ADMIN_TOKEN"

[state]
backend = "redis"
redis_url_env = "GW_REDIS_URL"
timeout = 0.2
lease_seconds = 3
"""


@pytest.fixture
def started() -> Iterator[list[Gateway]]:
    gateways: list[Gateway] = []
    yield gateways
    for gateway in gateways:
        gateway.stop()


def _serve(
    started: list[Gateway], redis: RedisServer, backend: str, extra: str = "", wait: str = "/readyz"
) -> Gateway:
    gateway = start_gateway(CONFIG + extra, backend, env={"GW_REDIS_URL": redis.url}, wait=wait)
    started.append(gateway)
    return gateway


async def _readiness(http: httpx.AsyncClient, gateway: Gateway, status: int) -> dict[str, str]:
    """Poll ``/readyz`` until it answers ``status`` (within 5 s); its body."""
    with anyio.fail_after(5):
        while True:
            response = await http.get(f"{gateway.management}/readyz")
            if response.status_code == status:
                body: dict[str, str] = response.json()
                return body
            await anyio.sleep(0.05)


async def test_redis_restart_mid_stream_neither_kills_the_gateway_nor_cuts_the_stream(
    redis_server: RedisServer, backend: str, started: list[Gateway]
) -> None:
    # Item 1: lease renewals (every second here) meet Redis down, then a stale pooled
    # connection after the restart; the process and the stream must both survive.
    gateway = _serve(started, redis_server, backend)
    body = {"model": "slow", "prompt": "x", "stream": True}
    async with httpx.AsyncClient(timeout=15) as http:
        async with http.stream(
            "POST", f"{gateway.url}/v1/query", json=body, headers=UNLIMITED
        ) as stream:
            assert stream.status_code == 200
            chunks = stream.aiter_text()
            text = await chunks.__anext__()
            await anyio.to_thread.run_sync(redis_server.stop)
            await anyio.sleep(1.5)  # at least one renewal fails
            assert gateway.process.poll() is None
            await anyio.to_thread.run_sync(redis_server.start)
            async for chunk in chunks:
                text += chunk
        events = sse_events(text)
        assert [name for name, _ in events][-2:] == ["usage", "done"]
        tokens = [json.loads(data)["text"] for name, data in events if name == "token"]
        assert "".join(tokens).split() == WORDS  # nothing lost, nothing reordered
        assert gateway.process.poll() is None
        assert (await _readiness(http, gateway, 200))["state"] == "ok"
        # The shared state works again: the limited caller's burst of 1 is counted there.
        first = await http.post(
            f"{gateway.url}/v1/query", json={"model": "echo", "prompt": "a"}, headers=AUTH
        )
        second = await http.post(
            f"{gateway.url}/v1/query", json={"model": "echo", "prompt": "b"}, headers=AUTH
        )
        assert (first.status_code, second.status_code) == (200, 429)
        assert redis_server.process is not None
    logs = gateway.logs()
    assert "shared state unavailable" in logs
    assert "Traceback" not in logs


@pytest.mark.parametrize("policy", ["open", "closed"])
async def test_frozen_redis_answers_within_the_deadline_by_policy(
    redis_server: RedisServer, backend: str, started: list[Gateway], policy: str
) -> None:
    # Item 5: a frozen Redis never hangs a request; readiness reports it.
    extra = f'rate_limits_on_failure = "{policy}"\nadmission_on_failure = "{policy}"\n'
    gateway = _serve(started, redis_server, backend, extra)
    async with httpx.AsyncClient(timeout=10) as http:
        redis_server.freeze()
        try:
            for _ in range(3):
                began = time.monotonic()
                response = await http.post(
                    f"{gateway.url}/v1/query",
                    json={"model": "echo", "prompt": "x"},
                    headers=UNLIMITED,
                )
                assert time.monotonic() - began < 1.5
                if policy == "open":
                    assert response.status_code == 200
                else:
                    assert response.status_code == 503
                    assert response.json()["error"]["code"] == "unavailable"
                    assert response.headers["retry-after"] == "1"
            body = await _readiness(http, gateway, 503)
            assert body["state"] == "unavailable"
            assert (await http.get(f"{gateway.management}/healthz")).status_code == 200
        finally:
            redis_server.thaw()
        await _readiness(http, gateway, 200)
        response = await http.post(
            f"{gateway.url}/v1/query", json={"model": "echo", "prompt": "x"}, headers=UNLIMITED
        )
        assert response.status_code == 200
    assert gateway.process.poll() is None


async def test_gateway_starts_while_redis_is_frozen_and_turns_ready_when_it_thaws(
    redis_server: RedisServer, backend: str, started: list[Gateway]
) -> None:
    redis_server.freeze()
    try:
        gateway = _serve(started, redis_server, backend, wait="/healthz")
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await _readiness(http, gateway, 503))["state"] == "unavailable"
            redis_server.thaw()
            await _readiness(http, gateway, 200)
    finally:
        redis_server.thaw()


async def test_requests_sharing_an_x_request_id_are_admitted_separately(
    redis_server: RedisServer, backend: str, started: list[Gateway]
) -> None:
    # Item 4: the lease member was the client's x-request-id, so ten requests that
    # shared one all fitted in a single slot of a target allowing two.
    gateway = _serve(started, redis_server, backend)
    body = {"model": "slow", "prompt": "x", "stream": True}
    headers = {**UNLIMITED, "x-request-id": "same-id"}
    statuses: list[int] = []
    async with httpx.AsyncClient(timeout=15) as http:

        async def one() -> None:
            async with http.stream(
                "POST", f"{gateway.url}/v1/query", json=body, headers=headers
            ) as response:
                statuses.append(response.status_code)
                await response.aread()

        async with anyio.create_task_group() as group:
            for _ in range(10):
                group.start_soon(one)
    assert sorted(statuses) == [200, 200] + [429] * 8


@pytest.mark.parametrize("kind", ["unix", "tls"])
async def test_unix_socket_and_tls_redis_urls_serve(
    backend: str, started: list[Gateway], kind: str
) -> None:
    # Item 8: unix:// passed check and then crashed; rediss:// was refused.
    redis = RedisServer(unix_socket=kind == "unix", tls=kind == "tls")
    try:
        assert redis.url.startswith("unix://" if kind == "unix" else "rediss://")
        gateway = _serve(started, redis, backend)
        async with httpx.AsyncClient(timeout=10) as http:
            statuses = []
            for prompt in "ab":
                response = await http.post(
                    f"{gateway.url}/v1/query",
                    json={"model": "echo", "prompt": prompt},
                    headers=AUTH,
                )
                statuses.append(response.status_code)
            assert statuses == [200, 429]  # the burst of 1 was counted in Redis
            assert (await _readiness(http, gateway, 200))["state"] == "ok"
    finally:
        for gateway in started:
            gateway.stop()
        started.clear()
        redis.close()
