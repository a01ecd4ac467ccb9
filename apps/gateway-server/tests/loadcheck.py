"""Many streaming clients through a gateway to the mock upstream; every token checked.

Used by ``test_load.py`` (a short run in the default suite) and by
``benchmarks/bench_gateway_load.py`` (64 clients for a minute, with memory).
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx
from gwtest import TOKEN

LOAD_CONFIG = """
[server]
max_concurrent_requests = 512
access_log = false

[[targets]]
name = "mock"
kind = "provider"
provider = "openai_compatible"
model = "mock"
base_url = "UPSTREAM"
max_connections = 256

[[tokens]]
caller = "load"
token_env = "GW_WEB_TOKEN"
"""


@dataclass
class LoadResult:
    streams: int = 0
    tokens: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: ``time.monotonic()`` at the end of each complete stream.
    finished: list[float] = field(default_factory=list)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


async def run_load(
    url: str,
    *,
    clients: int,
    seconds: float,
    tokens: int = 32,
    result: LoadResult | None = None,
    stop: anyio.Event | None = None,
    read_timeout: float = 60.0,
) -> LoadResult:
    """``clients`` loops of streamed queries for ``seconds``; checks order and completeness.

    With ``stop``, the loops run until it is set instead (``seconds`` is then a
    safety limit); ``result`` lets the caller watch progress while it runs.
    """
    result = result if result is not None else LoadResult()
    expected = "".join(f"t{i} " for i in range(tokens))
    body = {"model": "mock", "prompt": "go", "stream": True, "max_tokens": tokens}
    headers = {"authorization": f"Bearer {TOKEN}"}
    # Pools of at most 50 connections: one pool of 1,000 makes httpcore's pool
    # scan the load generator's bottleneck (the same cost the gateway avoids).
    pools = -(-clients // 50)
    each = -(-clients // pools)
    limits = httpx.Limits(max_connections=each, max_keepalive_connections=each)
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    async with contextlib.AsyncExitStack() as stack:
        https = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=url, timeout=read_timeout, limits=limits)
            )
            for _ in range(pools)
        ]

        async def client(http: httpx.AsyncClient) -> None:
            last = time.monotonic()
            while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
                try:
                    await stream(http)
                except httpx.TransportError as error:
                    # A stream that never started: counted, never a crash of the run.
                    idle = time.monotonic() - last
                    result.failures.append(f"{type(error).__name__} ({idle:.1f}s after the last)")
                last = time.monotonic()

        async def stream(http: httpx.AsyncClient) -> None:
            text, sequence, buffer, ended = [], 0, "", None
            async with http.stream("POST", "/v1/query", json=body, headers=headers) as response:
                if response.status_code != 200:
                    result.failures.append(f"status {response.status_code}")
                    return
                async for chunk in response.aiter_text():
                    buffer += chunk
                    *frames, buffer = buffer.split("\n\n")
                    for frame in frames:
                        event, _, data = frame.partition("\ndata: ")
                        event = event.removeprefix("event: ")
                        payload = json.loads(data)
                        if event == "token":
                            if payload["sequence"] < sequence:
                                result.failures.append("out of order")
                            sequence = payload["sequence"] + 1
                            text.append(payload["text"])
                        elif event in ("done", "error"):
                            ended = event
            joined = "".join(text)
            if ended != "done" or joined != expected:
                result.failures.append(f"ended={ended} text={joined[:60]!r}")
            else:
                result.streams += 1
                result.tokens += tokens
                result.finished.append(time.monotonic())

        async with anyio.create_task_group() as group:
            for index in range(clients):
                group.start_soon(client, https[index % pools])
    result.seconds = time.monotonic() - started
    return result
