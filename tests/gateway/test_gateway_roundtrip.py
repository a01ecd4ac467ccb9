"""The gateway driver against route-helper apps on real servers (uvicorn / hypercorn)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

import sipp
from sipp import SippClient

sys.path.insert(0, str(Path(__file__).parents[2] / "examples"))
from gateway_provider_route import create_app

pytestmark = pytest.mark.anyio

SCRIPT: dict[str, Any] = {
    "kind": "scripted",
    "reply": "Hello from the gateway route.",
    "embedding": [0.25, -0.5],
}


def gateway(base_url: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "gateway", "target": "gpt-5-mini", "base_url": base_url, **extra}


async def test_query_json(serve: Any) -> None:
    async with serve(create_app(SCRIPT)) as url, SippClient() as client:
        await client.add("gw", gateway(url))
        response = await client.query("Hi", endpoint="gw", max_tokens=16)
    assert response.text == "Hello from the gateway route."
    assert response.finish_reason == "stop"
    assert response.usage.output_tokens == 5


async def test_chat_streams_tokens(serve: Any) -> None:
    async with serve(create_app({**SCRIPT, "token_delay": 0.005})) as url, SippClient() as client:
        await client.add("gw", gateway(url))
        run = client.chat([{"role": "user", "content": "Hi"}], endpoint="gw", emit_tokens=True)
        batches = [batch.text async for batch in run.tokens]
        response = await run
    assert "".join(batches) == "Hello from the gateway route."
    assert len(batches) > 1
    assert response.usage.total_tokens == 6


async def test_embed(serve: Any) -> None:
    async with serve(create_app(SCRIPT)) as url, SippClient() as client:
        await client.add("gw", gateway(url))
        response = await client.embed("some text", endpoint="gw")
    assert response.values == [0.25, -0.5]


async def test_unknown_target_is_model_not_found(serve: Any) -> None:
    async with serve(create_app(SCRIPT)) as url, SippClient() as client:
        await client.add("gw", {**gateway(url), "target": "other"})
        with pytest.raises(sipp.ModelNotFoundError) as caught:
            await client.query("Hi", endpoint="gw")
    error = caught.value
    assert isinstance(error, sipp.GatewayError)
    assert (error.status, error.code) == (404, "resolution")
    assert error.message == "unknown target 'other'"
    assert error.request_id and error.request_id.startswith("req_")


async def test_upstream_rate_limit_is_429_with_retry_hint(serve: Any) -> None:
    script = {**SCRIPT, "fail_at": 0, "failure": "rate_limited", "retry_after": 3.0}
    async with serve(create_app(script)) as url, SippClient() as client:
        await client.add("gw", gateway(url, retries=0))
        with pytest.raises(sipp.RateLimitedError) as caught:
            await client.query("Hi", endpoint="gw", emit_tokens=True)
    assert (caught.value.status, caught.value.code) == (429, "rate_limited")
    assert caught.value.retry_after == 3.0


async def test_failure_mid_stream_is_an_error_event(serve: Any) -> None:
    script = {**SCRIPT, "fail_at": 2, "failure": "local"}
    async with serve(create_app(script)) as url, SippClient() as client:
        await client.add("gw", gateway(url))
        run = client.query("Hi", endpoint="gw", emit_tokens=True)
        with pytest.raises(sipp.GatewayError) as caught:
            async for _ in run.tokens:
                pass
    assert caught.value.code == "execution"
    assert caught.value.message == "scripted decode failure"
    assert caught.value.partial is not None
    assert caught.value.partial.text == "Hello from "


async def test_client_disconnect_cancels_the_server_run(serve: Any) -> None:
    app = create_app({**SCRIPT, "reply": "word " * 400, "token_delay": 0.01})
    async with serve(app) as url, SippClient() as client:
        await client.add("gw", gateway(url))
        server_client: SippClient = app.state.client
        run = client.query("Hi", endpoint="gw", emit_tokens=True)
        async for _ in run.tokens:
            break  # the first token arrived: the server-side run is streaming
        server_runs = list(server_client._runs)
        assert len(server_runs) == 1
        run.cancel("caller_cancelled")
        with anyio.fail_after(5), pytest.raises(sipp.RunCancelled):
            await server_runs[0].wait()
    assert server_runs[0].status == "cancelled"
    assert server_runs[0].cancel_reason == "client_disconnected"


async def test_stalled_stream_is_an_idle_timeout(serve: Any) -> None:
    script = {**SCRIPT, "tokens": ["a", "b"], "token_delay": 30.0}
    async with serve(create_app(script)) as url, SippClient() as client:
        await client.add("gw", gateway(url, timeout={"idle": 0.3}, retries=0))
        with pytest.raises(sipp.TimeoutError) as caught:
            await client.query("Hi", endpoint="gw", emit_tokens=True)
    assert caught.value.phase == "idle"
    assert caught.value.partial is not None and caught.value.partial.text == "a"
