"""The gateway examples, run against real servers on loopback with scripted endpoints."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from sipp import SippClient

sys.path.insert(0, str(Path(__file__).parents[2] / "examples"))
import gateway_client
import gateway_stream_route
from gateway_provider_route import create_app

pytestmark = pytest.mark.anyio


async def test_client_picks_local_or_gateway_per_request(
    serve: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    route = create_app({"kind": "scripted", "reply": "An answer from the route."})
    async with serve(route) as url:
        monkeypatch.setenv("SIPP_GATEWAY_URL", url)
        await gateway_client.main("Hi")
    assert capsys.readouterr().out.splitlines() == [
        "[local] A local answer. (stop)",
        "[cloud] An answer from the route. (stop)",
    ]


async def test_plain_stream_route_sends_text(serve: Any) -> None:
    async with SippClient() as client:
        await client.add("model", gateway_stream_route.DESCRIPTOR)
        app = gateway_stream_route.create_app(client)
        async with serve(app) as url, httpx.AsyncClient() as http:
            response = await http.post(url, content=b"Hi")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "Streaming plain text."
