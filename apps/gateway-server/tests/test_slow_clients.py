"""Slow and idle connections (issue 11, item 3), with raw sockets, on uvicorn and hypercorn.

Each kind of slowloris must be closed within its configured time: a
connection that sends nothing, one that trickles its headers, an
authenticated request that trickles its body, and an idle keep-alive
connection. With more slow connections open than the process has file
descriptors, ``max_connections`` keeps the management listener answering.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterator

import anyio
import anyio.abc
import httpx
import pytest
from gwtest import TOKEN, Gateway, start_gateway

pytestmark = pytest.mark.anyio

SLOW = """
[server]
header_timeout = 1.0
body_timeout = 1.0
keepalive_timeout = 1.0

[[targets]]
name = "echo"
kind = "scripted"

[[tokens]]
caller = "web-app"
token_env = "GW_WEB_TOKEN"
"""

#: Long header deadline (the slow connections stay), a small cap, few descriptors.
CAPPED = """
[server]
header_timeout = 60.0
max_connections = 24

[[targets]]
name = "echo"
kind = "scripted"

[[tokens]]
caller = "web-app"
token_env = "GW_WEB_TOKEN"
"""
FD_LIMIT = 160
SLOW_CONNECTIONS = 220  # more than FD_LIMIT: without the cap, accept() runs out

#: How late a close may come after its deadline (loaded 2-core machine).
SLACK = 1.5


def _port(gateway: Gateway) -> int:
    return int(gateway.url.rsplit(":", 1)[1])


async def _closed_within(stream: anyio.abc.ByteStream, limit: float) -> tuple[float, bytes]:
    """Seconds until the server closed ``stream``, and what it sent before."""
    started = time.monotonic()
    received = b""
    with anyio.fail_after(limit):
        while True:
            try:
                received += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return time.monotonic() - started, received


async def _trickle(stream: anyio.abc.ByteStream, data: bytes, every: float) -> None:
    for index in range(len(data)):
        try:
            await stream.send(data[index : index + 1])
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            return
        await anyio.sleep(every)


@pytest.fixture
def slow_gateway(gateways: Callable[[str, str], Gateway], backend: str) -> Gateway:
    return gateways(SLOW, backend)


async def test_idle_connection_is_closed(slow_gateway: Gateway) -> None:
    async with await anyio.connect_tcp("127.0.0.1", _port(slow_gateway)) as stream:
        elapsed, _ = await _closed_within(stream, 1.0 + SLACK + 3)
    assert elapsed < 1.0 + SLACK


async def test_trickled_headers_are_cut_off(slow_gateway: Gateway) -> None:
    headers = b"POST /v1/query HTTP/1.1\r\nhost: x\r\n" + b"x-pad: " + b"a" * 200
    stream = await anyio.connect_tcp("127.0.0.1", _port(slow_gateway))
    async with stream, anyio.create_task_group() as group:
        group.start_soon(_trickle, stream, headers, 0.05)  # 10 s if never cut
        elapsed, _ = await _closed_within(stream, 1.0 + SLACK + 3)
        group.cancel_scope.cancel()
    assert elapsed < 1.0 + SLACK


async def test_authenticated_slow_body_gets_408_and_is_closed(slow_gateway: Gateway) -> None:
    body = b'{"model": "echo", "prompt": "' + b"x" * 100 + b'"}'
    head = (
        b"POST /v1/query HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        + f"authorization: Bearer {TOKEN}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
    )
    async with await anyio.connect_tcp("127.0.0.1", _port(slow_gateway)) as stream:
        await stream.send(head)
        async with anyio.create_task_group() as group:
            group.start_soon(_trickle, stream, body, 0.05)  # 6 s if never cut
            elapsed, received = await _closed_within(stream, 1.0 + SLACK + 3)
            group.cancel_scope.cancel()
    assert elapsed < 1.0 + SLACK
    assert received.startswith(b"HTTP/1.1 408")
    assert b"request_timeout" in received


async def test_idle_keepalive_connection_is_closed(slow_gateway: Gateway) -> None:
    body = b'{"model": "echo", "prompt": "hi"}'
    request = (
        b"POST /v1/query HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        + f"authorization: Bearer {TOKEN}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    async with await anyio.connect_tcp("127.0.0.1", _port(slow_gateway)) as stream:
        await stream.send(request)
        with anyio.fail_after(5):
            first = await stream.receive()
        assert first.startswith(b"HTTP/1.1 200")
        elapsed, _ = await _closed_within(stream, 1.0 + SLACK + 3)
    assert elapsed < 1.0 + SLACK


def _few_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


@pytest.fixture
def capped_gateway(backend: str) -> Iterator[Gateway]:
    gateway = start_gateway(CAPPED, backend, preexec_fn=_few_descriptors)
    yield gateway
    gateway.stop()


async def test_health_answers_while_slow_connections_flood_the_public_listener(
    capped_gateway: Gateway,
) -> None:
    port = _port(capped_gateway)
    streams: list[anyio.abc.SocketStream] = []
    try:
        for _ in range(SLOW_CONNECTIONS):
            stream = await anyio.connect_tcp("127.0.0.1", port)
            await stream.send(b"GET /v1/models HTTP/1.1\r\n")  # and never the rest
            streams.append(stream)
        await anyio.sleep(0.5)
        async with httpx.AsyncClient(timeout=5) as http:
            for _ in range(5):
                health = await http.get(f"{capped_gateway.management}/healthz")
                assert health.status_code == 200
    finally:
        for stream in streams:
            await stream.aclose()
    # Once they are gone the public listener serves again.
    async with httpx.AsyncClient(timeout=5) as http:
        headers = {"authorization": f"Bearer {TOKEN}"}
        for _ in range(50):
            try:
                models = await http.get(f"{capped_gateway.url}/v1/models", headers=headers)
                break
            except httpx.TransportError:
                await anyio.sleep(0.1)
        assert models.status_code == 200
    logs = capped_gateway.wait_log("refused (max_connections reached)")
    assert "Too many open files" not in logs
    # Hundreds of refusals, a handful of lines (at most one per 10 s).
    assert logs.count("refused (max_connections reached)") <= 2
    assert capped_gateway.process.poll() is None
