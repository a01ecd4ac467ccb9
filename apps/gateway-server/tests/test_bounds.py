"""Bounds on a run (issue 11, item 8): max_tokens and max_seconds per target, and 499.

The upstream is the mock's ``endless`` model, which ignores ``max_tokens``
and never stops: the gateway must end the stream itself, with a terminal
event. A client that leaves before the answer's headers is logged as 499
with its cancel reason (it used to be status 0).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest
from gwtest import TOKEN, Gateway, sse_events

pytestmark = pytest.mark.anyio

AUTH = {"authorization": f"Bearer {TOKEN}"}

BOUNDED = """
[[targets]]
name = "runaway"
kind = "provider"
provider = "openai_compatible"
model = "endless"
base_url = "UPSTREAM"
max_tokens = 5

[[targets]]
name = "runaway-timed"
kind = "provider"
provider = "openai_compatible"
model = "endless"
base_url = "UPSTREAM"
max_seconds = 1.0

[[targets]]
name = "late"
kind = "scripted"
reply = "late answer"
first_token_delay = 3.0

[[tokens]]
caller = "web-app"
token_env = "GW_WEB_TOKEN"
"""


@pytest.fixture
def gateway(gateways: Callable[[str, str], Gateway], backend: str, mock_upstream: str) -> Gateway:
    return gateways(BOUNDED.replace("UPSTREAM", mock_upstream), backend)


async def _stream(gateway: Gateway, body: dict[str, object]) -> tuple[float, list[str], str]:
    """Seconds to the end of the stream, its tokens, and its last event's name and data."""
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=20) as http:
        response = await http.post("/v1/query", json={**body, "stream": True}, headers=AUTH)
    events = sse_events(response.text)
    text = "".join(json.loads(d)["text"] for e, d in events if e == "token")
    name, data = events[-1]
    return time.monotonic() - started, text.split(), f"{name} {data}"


async def test_an_upstream_ignoring_max_tokens_is_cut_at_the_target_limit(
    gateway: Gateway,
) -> None:
    elapsed, tokens, last = await _stream(gateway, {"model": "runaway", "prompt": "go"})
    assert elapsed < 10
    assert tokens[:5] == ["t0", "t1", "t2", "t3", "t4"]
    assert len(tokens) <= 6  # a batch is forwarded whole; never an endless stream
    assert last.startswith("error ")
    assert "max_tokens" in last


async def test_the_request_max_tokens_is_enforced_too(gateway: Gateway) -> None:
    body = {"model": "runaway", "prompt": "go", "max_tokens": 2}
    _, tokens, last = await _stream(gateway, body)
    assert tokens[:2] == ["t0", "t1"]
    assert len(tokens) <= 3
    assert "max_tokens" in last


async def test_a_run_past_max_seconds_ends_with_an_error_event(gateway: Gateway) -> None:
    elapsed, tokens, last = await _stream(gateway, {"model": "runaway-timed", "prompt": "go"})
    assert 0.9 < elapsed < 1.0 + 3.0
    assert len(tokens) > 5
    assert last.startswith("error ")
    assert json.loads(last.split(" ", 1)[1])["error"]["code"] == "upstream_timeout"


@pytest.mark.parametrize("stream", [False, True])
async def test_disconnect_before_headers_is_logged_as_499(gateway: Gateway, stream: bool) -> None:
    request_id = f"leaves-early-{stream}-{time.monotonic_ns()}"
    headers = {**AUTH, "x-request-id": request_id}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=0.5) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(
                "/v1/query",
                json={"model": "late", "prompt": "x", "stream": stream},
                headers=headers,
            )
    logs = gateway.wait_log(request_id)
    line = json.loads(next(x for x in logs.splitlines() if request_id in x))
    assert line["status"] == 499
    assert line["cancel_reason"] == "client_disconnected"
