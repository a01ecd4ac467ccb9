"""Pool targets end to end: a gateway process in front of two or three loopback upstreams.

The upstreams (``pool_upstream.py``) fail, stall, answer 429 or cut a stream
on demand; each test starts its own gateway (uvicorn on asyncio, hypercorn on
trio) because a pool's health is state the test changes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import anyio
import httpx
import pytest
from gwtest import TOKEN, Gateway, sse_events, start_gateway
from pool_upstream import Upstream, Upstreams

pytestmark = pytest.mark.anyio

AUTH = {"authorization": f"Bearer {TOKEN}"}
TOKENS = """
[[tokens]]
caller = "web-app"
token_env = "GW_WEB_TOKEN"
"""


def pool_config(*deployments: str, **pool: object) -> str:
    settings = "".join(f"{key} = {json.dumps(value)}\n" for key, value in pool.items())
    return '[[targets]]\nname = "pool"\nkind = "pool"\n' + settings + "".join(deployments) + TOKENS


@pytest.fixture
def upstreams() -> Iterator[tuple[Upstream, ...]]:
    with Upstreams("a", "b", "c") as running:
        yield running


async def query(http: httpx.AsyncClient, *, stream: bool = False) -> httpx.Response:
    body = {"model": "pool", "prompt": "hi", "stream": stream}
    return await http.post("/v1/query", json=body, headers=AUTH)


async def deployment_series(gateway: Gateway, name: str) -> dict[str, float]:
    """``{deployment: value}`` of one per-deployment series of the pool target."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{gateway.management}/metrics")).text
    out = {}
    for found in re.finditer(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.MULTILINE):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', found.group(1)))
        if labels["target"] == "pool":
            out[labels["deployment"]] = float(found.group(2))
    return out


async def test_a_failure_before_the_first_token_falls_back(
    upstreams: tuple[Upstream, ...], backend: str
) -> None:
    a, b, _ = upstreams
    gateway = start_gateway(pool_config(a.deployment(), b.deployment()), backend)
    try:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
            a.mode = "error"
            response = await query(http)
            assert response.status_code == 200
            assert response.json()["text"] == "b0 b1 b2 b3 "
            a.mode = "busy"  # a 429 is worth the next deployment too, streamed or not
            response = await query(http, stream=True)
            tokens = [json.loads(d)["text"] for e, d in sse_events(response.text) if e == "token"]
            assert "".join(tokens) == "b0 b1 b2 b3 "
        assert a.hits == {"error": 1, "busy": 1}
        assert await deployment_series(gateway, "sipp_gateway_deployment_fallbacks_total") == {
            "a": 2,
            "b": 0,
        }
        assert (await deployment_series(gateway, "sipp_gateway_deployment_requests_total"))[
            "b"
        ] == 2
    finally:
        gateway.stop()


async def test_no_other_deployment_is_tried_after_the_first_token(
    upstreams: tuple[Upstream, ...], backend: str
) -> None:
    a, b, _ = upstreams
    gateway = start_gateway(pool_config(a.deployment(), b.deployment()), backend)
    try:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
            a.mode = "break"
            response = await query(http, stream=True)
        events = sse_events(response.text)
        text = "".join(json.loads(d)["text"] for e, d in events if e == "token")
        assert text == "a0 a1 "  # what the client saw, never repeated by b
        assert events[-1][0] == "error"
        assert b.requests == 0
    finally:
        gateway.stop()


async def test_weighted_shares_hold_within_five_percent_over_2000_requests(
    upstreams: tuple[Upstream, ...], backend: str
) -> None:
    a, b, c = upstreams
    config = pool_config(
        a.deployment(weight=5), b.deployment(weight=3), c.deployment(weight=2), strategy="weighted"
    )
    gateway = start_gateway(config, backend)
    try:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
            answers: list[str] = []

            async def client(count: int) -> None:
                for _ in range(count):
                    response = await query(http)
                    assert response.status_code == 200
                    answers.append(response.json()["text"][0])

            async with anyio.create_task_group() as group:
                for _ in range(16):
                    group.start_soon(client, 125)
        assert len(answers) == 2000
        for upstream, share in ((a, 0.5), (b, 0.3), (c, 0.2)):
            seen = answers.count(upstream.name) / 2000
            assert abs(seen - share) <= 0.05 * share, (upstream.name, seen)
            assert upstream.requests == answers.count(upstream.name)
    finally:
        gateway.stop()


async def test_least_busy_spreads_concurrent_requests_evenly(
    upstreams: tuple[Upstream, ...], backend: str
) -> None:
    a, b, c = upstreams
    config = pool_config(a.deployment(), b.deployment(), c.deployment(), strategy="least_busy")
    gateway = start_gateway(config, backend)
    try:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
            # Warm up first: a cold gateway's first requests (connections to open)
            # can arrive late enough on a loaded machine to miss the overlap.
            for _ in range(3):
                await query(http)
            for upstream in upstreams:
                upstream.reset()
                upstream.first_delay = 1.0  # far longer than the 90 ms it takes to send all 9
            async with anyio.create_task_group() as group:
                for _ in range(9):
                    group.start_soon(query, http)
                    await anyio.sleep(0.01)
        assert [u.requests for u in upstreams] == [3, 3, 3]
        assert [u.peak for u in upstreams] == [3, 3, 3]
    finally:
        gateway.stop()


async def test_least_busy_sends_new_requests_around_a_busy_deployment(
    upstreams: tuple[Upstream, ...], backend: str
) -> None:
    a, b, _ = upstreams
    a.first_delay = 3.0  # the one request a takes keeps it busy past the last one sent
    gateway = start_gateway(
        pool_config(a.deployment(), b.deployment(), strategy="least_busy"), backend
    )
    try:
        async with (
            httpx.AsyncClient(base_url=gateway.url, timeout=10) as http,
            anyio.create_task_group() as group,
        ):
            group.start_soon(query, http)  # two at once: one of them lands on a
            group.start_soon(query, http)
            while a.running == 0:  # noqa: ASYNC110 (set by the upstream's own thread)
                await anyio.sleep(0.01)
            for _ in range(8):  # while a is busy, every new request goes to idle b
                assert (await query(http)).json()["text"].startswith("b0")
        assert a.requests == 1  # a's one request is still running while b answers the rest
        assert b.requests == 9
    finally:
        gateway.stop()


async def test_a_failing_deployment_cools_down_and_recovers(
    upstreams: tuple[Upstream, ...], backend: str
) -> None:
    a, b, _ = upstreams
    config = pool_config(a.deployment(), b.deployment(), max_failures=2, cooldown=1.0)
    gateway = start_gateway(config, backend)
    try:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
            a.mode = "error"
            texts = [(await query(http)).json()["text"] for _ in range(5)]
            assert texts == ["b0 b1 b2 b3 "] * 5
            assert a.requests == 2  # then left out
            assert await deployment_series(gateway, "sipp_gateway_deployment_cooling") == {
                "a": 1,
                "b": 0,
            }
            a.mode = "ok"
            await anyio.sleep(1.1)
            assert (await query(http)).json()["text"] == "a0 a1 a2 a3 "  # probed back
        cooldowns = await deployment_series(gateway, "sipp_gateway_deployment_cooldowns_total")
        assert cooldowns == {"a": 1, "b": 0}
        async with httpx.AsyncClient() as http:
            status = (await http.get(f"{gateway.management}/status.json")).json()
            page = (await http.get(f"{gateway.management}/")).text
        assert "<td>pool</td><td>a</td><td>3</td><td>2</td><td>2</td><td>1</td>" in page
        row = status["deployments"]["pool"][0]
        assert (row["deployment"], row["failures"], row["cooling"]) == ("a", 2, False)
    finally:
        gateway.stop()


async def test_retry_after_and_a_stall_send_requests_elsewhere(
    upstreams: tuple[Upstream, ...], backend: str
) -> None:
    a, b, _ = upstreams
    config = pool_config(
        a.deployment(), b.deployment(), max_failures=5, member_first_token_timeout=0.5
    )
    gateway = start_gateway(config, backend)
    try:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
            a.mode, a.retry_after = "busy", 1
            assert (await query(http)).json()["text"].startswith("b0")
            assert (await query(http)).json()["text"].startswith("b0")
            assert a.requests == 1  # its Retry-After kept the second request away
            a.mode = "stall"
            await anyio.sleep(1.1)
            with anyio.fail_after(3):  # the stall costs member_first_token_timeout, no more
                assert (await query(http, stream=True)).status_code == 200
            assert a.hits["stall"] == 1
    finally:
        gateway.stop()
