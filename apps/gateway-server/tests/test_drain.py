"""SIGTERM: stop accepting, let streams finish within drain_timeout, cancel the rest."""

from __future__ import annotations

import json
import signal

import anyio
import httpx
import pytest
from gwtest import TOKEN, sse_events, start_gateway

pytestmark = pytest.mark.anyio

CONFIG = """
[server]
drain_timeout = 1.0

[[targets]]
name = "long"
kind = "scripted"
tokens = TOKENS
token_delay = 0.1

[[targets]]
name = "short"
kind = "scripted"
reply = "a b c d e f g h"
token_delay = 0.05

[[tokens]]
caller = "web-app"
token_env = "GW_WEB_TOKEN"
"""
AUTH = {"authorization": f"Bearer {TOKEN}"}


async def _stream(http: httpx.AsyncClient, target: str, started: anyio.Event) -> str:
    body = {"model": target, "prompt": "p", "stream": True}
    text = ""
    async with http.stream("POST", "/v1/query", json=body, headers=AUTH) as response:
        assert response.status_code == 200
        async for chunk in response.aiter_text():
            text += chunk
            started.set()
    return text


async def test_sigterm_drains_then_cancels_with_server_shutdown(backend: str) -> None:
    gateway = start_gateway(CONFIG.replace("TOKENS", json.dumps(["x "] * 200)), backend)
    results: dict[str, str] = {}
    try:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=20) as http:

            async def run(target: str, started: anyio.Event) -> None:
                results[target] = await _stream(http, target, started)

            long_started, short_started = anyio.Event(), anyio.Event()
            async with anyio.create_task_group() as group:
                group.start_soon(run, "long", long_started)
                group.start_soon(run, "short", short_started)
                await long_started.wait()
                await short_started.wait()
                gateway.process.send_signal(signal.SIGTERM)
                await anyio.sleep(0.3)
                # Not ready any more, and no new connection is accepted.
                async with httpx.AsyncClient() as fresh:
                    ready = await fresh.get(f"{gateway.management}/readyz")
                    assert ready.status_code == 503
                    with pytest.raises(httpx.ConnectError):
                        await fresh.get(f"{gateway.url}/v1/models", headers=AUTH)
        assert await anyio.to_thread.run_sync(gateway.process.wait, 10) == 0
    finally:
        gateway.stop(signal.SIGKILL)
    short = sse_events(results["short"])
    assert "".join(json.loads(d)["text"] for e, d in short if e == "token") == "a b c d e f g h"
    assert short[-1][0] == "done"
    long = sse_events(results["long"])
    assert long[-1][0] == "error"
    error = json.loads(long[-1][1])["error"]
    assert error["code"] == "cancelled"
    assert "server_shutdown" in error["message"]
    assert '"cancel_reason":"server_shutdown"' in gateway.logs()
