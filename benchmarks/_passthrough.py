"""The floor for a Python gateway hop: forward the request, stream the answer back.

``python benchmarks/_passthrough.py PORT UPSTREAM``

A raw ASGI app under uvicorn with one pooled ``httpx.AsyncClient``: it reads
the body, sends it to ``UPSTREAM`` + the request path, and streams the
upstream's status, content type and body back as they arrive. No auth, no
parsing, no limits, no logging: whatever a real gateway does beyond this
is its own overhead. It runs under the same uvicorn options as the gateway
it is compared with (uvloop and httptools when installed, access log off).
"""

from __future__ import annotations

import itertools
import sys
from typing import Any

import httpx
import uvicorn

UPSTREAM = sys.argv[2].rstrip("/")
# 32 pools of 64 taken in turn, as the gateway splits a target's: httpcore scans a
# whole pool per request start and end, and one pool of 1,000 busy connections
# makes that scan the pass-through's bottleneck (28 ms of CPU per stream).
LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=64)
TIMEOUT = httpx.Timeout(None, connect=10.0)
clients = [httpx.AsyncClient(timeout=TIMEOUT, limits=LIMITS) for _ in range(32)]
turn = itertools.cycle(clients)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        for client in clients:
            await client.aclose()
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    client = next(turn)
    upstream = client.build_request(
        scope["method"],
        UPSTREAM + scope["path"],
        content=body,
        headers={"content-type": "application/json"},
    )
    response = await client.send(upstream, stream=True)
    try:
        kind = response.headers.get("content-type", "application/json").encode()
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [(b"content-type", kind)],
            }
        )
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        await response.aclose()


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=False, log_level="warning")
