"""The HTTP transport under httpx: httpx's default (httpcore) against sipp's LeanTransport.

What it measures, in this process's CPU time (``time.process_time``), against
a raw asyncio mock server in its own process that answers as fast as it can
over keep-alive connections:

1. ``json c=1`` / ``json c=32``: CPU per non-streaming request (a ~300-byte
   JSON answer with ``Content-Length``), 1 and 32 concurrent callers;
2. ``sse``: CPU per streamed chunk of a 2,000-event chunked SSE stream, the
   body read with ``aiter_raw`` as the drivers do;
3. ``json under 1000 streams``: CPU per non-streaming request (32 concurrent)
   while 1,000 slow SSE streams hold 1,000 connections of the same pool open
   (the pool has room for 1,032), the case where httpcore scans its whole
   connection list on every request;
4. ``json c=1 trio``: the first figure on trio (the lean transport is anyio).

Each figure is repeated ``ROUNDS`` times, both transports in the same round,
and reported as median and spread (min..max) with the ratio lean/httpx per
round. ``--profile`` also prints where httpx + httpcore spend a request
(cProfile, own time grouped by package). Writes
``benchmarks/results/http_transport.json``.
Run: ``python benchmarks/bench_http_transport.py [--quick] [--profile]``.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import resource
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _raw_server import serve

ROUNDS = 5
REQUESTS = 2000
STREAMS = 5
EVENTS = 2000
SLOW_STREAMS = 1000
SLOW_PERIOD = 2.0  # seconds between events of a slow stream

# -- the mock server (its own process) ---------------------------------------------

_ANSWER = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "model": "bench",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello there, how can I help?"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }
).encode()
JSON_REPLY = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-request-id: bench\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(_ANSWER), _ANSWER)
)
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
    b"transfer-encoding: chunked\r\nx-request-id: bench\r\n\r\n"
)


def _event(i: int) -> bytes:
    data = b'data: {"choices":[{"index":0,"delta":{"content":" tok%d"}}]}\n\n' % i
    return b"%x\r\n%s\r\n" % (len(data), data)


SSE_REPLY = SSE_HEAD + b"".join(_event(i) for i in range(EVENTS)) + b"0\r\n\r\n"


async def _respond(path: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
    if path == b"/json":
        writer.write(JSON_REPLY)
    elif path == b"/sse":
        writer.write(SSE_REPLY)
    else:  # /slow: one event every SLOW_PERIOD until the client leaves
        writer.write(SSE_HEAD)
        i = 0
        while True:
            writer.write(_event(i))
            await writer.drain()
            await asyncio.sleep(SLOW_PERIOD)
            i += 1


def _serve(port: int) -> None:
    serve(_respond, port, backlog=4096)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, 8192) if hard != resource.RLIM_INFINITY else 8192
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


# -- the clients ---------------------------------------------------------------------


def make_client(kind: str, connections: int) -> Any:
    import httpx

    from sipp.http._h1 import LeanTransport

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    timeout = httpx.Timeout(None, connect=10.0)
    if kind == "lean":
        return httpx.AsyncClient(transport=LeanTransport(limits=limits), timeout=timeout)
    return httpx.AsyncClient(limits=limits, timeout=timeout)


async def _json_requests(client: Any, url: str, count: int) -> None:
    for _ in range(count):
        response = await client.post(url, content=b'{"model":"bench"}')
        assert len(response.content) == len(_ANSWER)


async def _concurrently(n: int, make: Callable[[], Awaitable[None]]) -> None:
    import anyio

    async with anyio.create_task_group() as group:
        for _ in range(n):
            group.start_soon(make)


async def measure_json(kind: str, base: str, concurrency: int, requests: int) -> float:
    """CPU seconds per request."""
    async with make_client(kind, max(concurrency, 1)) as client:
        await _json_requests(client, base + "/json", concurrency)  # warm the pool
        each = requests // concurrency
        start = time.process_time()
        await _concurrently(concurrency, lambda: _json_requests(client, base + "/json", each))
        return (time.process_time() - start) / (each * concurrency)


async def measure_sse(kind: str, base: str) -> float:
    """CPU seconds per streamed event."""
    async with make_client(kind, 1) as client:
        total = 0.0
        for round_ in range(STREAMS + 1):
            start = time.process_time()
            async with client.stream("POST", base + "/sse", content=b"{}") as response:
                size = 0
                async for chunk in response.aiter_raw():
                    size += len(chunk)
            if round_:  # the first stream only warms the connection
                total += time.process_time() - start
            assert size > EVENTS * 40
        return total / (STREAMS * EVENTS)


async def measure_under_streams(kind: str, base: str, requests: int) -> float:
    """CPU seconds per request while SLOW_STREAMS streams hold connections of the pool."""
    import anyio

    async with make_client(kind, SLOW_STREAMS + 32) as client:
        opened = 0
        all_open = anyio.Event()

        async def slow() -> None:
            nonlocal opened
            async with client.stream("POST", base + "/slow", content=b"{}") as response:
                chunks = response.aiter_raw()
                await chunks.__anext__()
                opened += 1
                if opened == SLOW_STREAMS:
                    all_open.set()
                async for _ in chunks:
                    pass

        async with anyio.create_task_group() as group:
            for _ in range(SLOW_STREAMS):
                group.start_soon(slow)
            await all_open.wait()
            result = await measure_json_on(client, base, 32, requests)
            group.cancel_scope.cancel()
        return result


async def measure_json_on(client: Any, base: str, concurrency: int, requests: int) -> float:
    await _concurrently(concurrency, lambda: _json_requests(client, base + "/json", 1))
    each = requests // concurrency
    start = time.process_time()
    await _concurrently(concurrency, lambda: _json_requests(client, base + "/json", each))
    return (time.process_time() - start) / (each * concurrency)


# -- the rounds ----------------------------------------------------------------------

Case = tuple[str, str, Callable[[str, str], Awaitable[float]]]


def cases(requests: int) -> list[Case]:
    return [
        ("json c=1", "asyncio", lambda k, b: measure_json(k, b, 1, requests)),
        ("json c=32", "asyncio", lambda k, b: measure_json(k, b, 32, requests)),
        ("sse per event", "asyncio", measure_sse),
        # httpcore takes tens of ms per request here: fewer requests keep a round short.
        (
            "json under 1000 streams",
            "asyncio",
            lambda k, b: measure_under_streams(k, b, requests // 4),
        ),
        ("json c=1 trio", "trio", lambda k, b: measure_json(k, b, 1, requests)),
    ]


def run(rounds: int, requests: int, base: str) -> list[dict[str, Any]]:
    import anyio
    from _report import summary

    samples: dict[str, dict[str, list[float]]] = {}
    for round_ in range(rounds):
        for name, backend, measure in cases(requests):
            per = samples.setdefault(name, {"httpx": [], "lean": [], "ratio": []})
            # Alternate which transport goes first, so drift hits both alike.
            order = ("httpx", "lean") if round_ % 2 == 0 else ("lean", "httpx")
            got = {kind: anyio.run(measure, kind, base, backend=backend) for kind in order}
            per["httpx"].append(got["httpx"])
            per["lean"].append(got["lean"])
            per["ratio"].append(got["lean"] / got["httpx"])
            print(f"round {round_ + 1} {name}: ratio {got['lean'] / got['httpx']:.3f}", flush=True)
    rows = []
    for name, per in samples.items():
        httpx_s, lean_s, ratio_s = (
            summary(per["httpx"]),
            summary(per["lean"]),
            summary(per["ratio"]),
        )
        rows.append(
            {
                "case": name,
                "httpx us": httpx_s["median"] * 1e6,
                "lean us": lean_s["median"] * 1e6,
                "ratio": ratio_s["median"],
                "ratio min..max": f"{ratio_s['min']:.3f}..{ratio_s['max']:.3f}",
            }
        )
    return rows


def profile(base: str, requests: int) -> dict[str, float]:
    """Own CPU time of one-client JSON requests through httpx's default, by package."""
    import cProfile
    import pstats

    import anyio

    profiler = cProfile.Profile()
    profiler.enable()
    anyio.run(measure_json, "httpx", base, 1, requests)
    profiler.disable()
    stats = pstats.Stats(profiler)
    groups: dict[str, float] = {}
    for (filename, _, _), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        for package in ("httpcore", "h11", "httpx", "anyio", "asyncio", "ssl", "socket"):
            if f"/{package}/" in filename or filename.endswith(f"/{package}.py"):
                break
        else:
            package = "other"
        groups[package] = groups.get(package, 0.0) + own
    total = sum(groups.values())
    shares = {name: round(value / total, 3) for name, value in sorted(groups.items())}
    print("profile, share of own time:", shares)
    return shares


def main() -> None:
    from _report import write

    quick = "--quick" in sys.argv
    rounds, requests = (1, 320) if quick else (ROUNDS, REQUESTS)
    _raise_fd_limit()
    port = _free_port()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(port,), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        extra: dict[str, Any] = {"load": os.getloadavg(), "rounds": rounds, "requests": requests}
        if "--profile" in sys.argv:
            extra["profile_httpx_json_c1"] = profile(base, requests)
        rows = run(rounds, requests, base)
        extra["load_after"] = os.getloadavg()
        print("load average before/after:", extra["load"], extra["load_after"])
        write("http_transport", rows, extra)
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
