"""Every step of the request path, end to end: a real gateway process on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx
import pytest
from gw_configs import IP_LIMITED, MAIN
from gwtest import ADMIN_TOKEN, LIMITED_TOKEN, TOKEN, Gateway, sse_events

pytestmark = pytest.mark.anyio

AUTH = {"authorization": f"Bearer {TOKEN}"}
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def gateway(gateways: Callable[[str, str], Gateway], backend: str) -> Gateway:
    return gateways(MAIN, backend)


@pytest.fixture
async def http(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
        yield client


def _error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


async def test_json_query_answers_with_the_public_target_name(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/v1/query", json={"model": "echo", "prompt": "hi there"}, headers=AUTH
    )
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "echo"
    assert body["text"] == "hi there"
    assert body["usage"] == {"input_tokens": 2, "output_tokens": 2, "total_tokens": 4}
    assert response.headers["x-request-id"].startswith("req_")


async def test_streamed_chat_sends_every_token_then_done(http: httpx.AsyncClient) -> None:
    body = {"model": "words", "messages": [{"role": "user", "content": "go"}], "stream": True}
    response = await http.post("/v1/chat", json=body, headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    events = sse_events(response.text)
    text = "".join(json.loads(d)["text"] for e, d in events if e == "token")
    assert text == "one two three four five six seven eight"
    assert [e for e, _ in events[-2:]] == ["usage", "done"]


async def test_embed_returns_the_vector(http: httpx.AsyncClient) -> None:
    response = await http.post("/v1/embed", json={"model": "vectors", "input": "x y"}, headers=AUTH)
    assert response.status_code == 200
    assert response.json()["embedding"] == [0.25, -0.5]


async def test_inbound_request_id_is_echoed(http: httpx.AsyncClient) -> None:
    headers = {**AUTH, "x-request-id": "my-id-42"}
    response = await http.post("/v1/query", json={"model": "nope", "prompt": "x"}, headers=headers)
    assert response.headers["x-request-id"] == "my-id-42"


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        pytest.param({}, {"model": "echo", "prompt": "x"}, 401, "authentication", id="no-token"),
        pytest.param(
            {"authorization": "Basic abc"}, {"model": "echo", "prompt": "x"}, 401,
            "authentication", id="not-bearer",
        ),
        pytest.param(
            {"authorization": "Bearer wrong-token"}, {"model": "echo", "prompt": "x"}, 401,
            "authentication", id="unknown-token",
        ),
        pytest.param(
            {"authorization": f"Bearer {TOKEN}x"}, {"model": "echo", "prompt": "x"}, 401,
            "authentication", id="token-prefix",
        ),
        pytest.param(AUTH, {"model": "private", "prompt": "x"}, 403, "authorization",
                     id="not-in-allowlist"),
        pytest.param(AUTH, {"model": "nothing", "prompt": "x"}, 403, "authorization",
                     id="unknown-target-outside-allowlist"),
        pytest.param(ADMIN, {"model": "nothing", "prompt": "x"}, 404, "resolution",
                     id="unknown-target"),
        pytest.param(AUTH, {"model": "echo"}, 400, "invalid_request", id="no-prompt"),
        pytest.param(AUTH, [1, 2], 400, "invalid_request", id="not-an-object"),
        pytest.param(AUTH, {"model": "broken", "prompt": "x"}, 500, "execution",
                     id="upstream-failure"),
    ],
)  # fmt: skip
async def test_refusals(
    http: httpx.AsyncClient, headers: dict[str, str], body: Any, status: int, code: str
) -> None:
    response = await http.post("/v1/query", json=body, headers=headers)
    assert _error(response) == (status, code)
    assert response.headers["x-request-id"]


async def test_body_that_is_not_json_is_invalid_json(http: httpx.AsyncClient) -> None:
    response = await http.post("/v1/query", content=b"{nope", headers=AUTH)
    assert _error(response) == (400, "invalid_json")


async def test_body_over_the_limit_is_413_before_authentication(http: httpx.AsyncClient) -> None:
    body = {"model": "echo", "prompt": "x" * 4096}
    response = await http.post("/v1/query", json=body)  # no token: the size check comes first
    assert _error(response) == (413, "payload_too_large")


async def test_chunked_body_over_the_limit_is_413(http: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"model": "echo", "prompt": "'
        for _ in range(10):
            yield b"x" * 512
        yield b'"}'

    response = await http.post("/v1/query", content=chunks(), headers=AUTH)
    assert _error(response) == (413, "payload_too_large")


async def test_blocked_client_behind_a_trusted_proxy(http: httpx.AsyncClient) -> None:
    headers = {**AUTH, "x-forwarded-for": "203.0.113.9"}
    response = await http.post("/v1/query", json={"model": "echo", "prompt": "x"}, headers=headers)
    assert _error(response) == (403, "blocked")
    # Refused before its body was read: the client must not reuse the connection
    # (hypercorn may close it under the next request; 1 in ~300 did before).
    assert response.headers["connection"] == "close"
    allowed = {**AUTH, "x-forwarded-for": "198.51.100.9"}
    response = await http.post("/v1/query", json={"model": "echo", "prompt": "x"}, headers=allowed)
    assert response.status_code == 200


async def test_upstream_rate_limit_becomes_429_with_its_retry_hint(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post("/v1/query", json={"model": "busy", "prompt": "x"}, headers=AUTH)
    assert _error(response) == (429, "rate_limited")
    assert response.headers["retry-after"] == "7"


async def test_failure_mid_stream_is_an_error_event(http: httpx.AsyncClient) -> None:
    body = {"model": "midway", "prompt": "x", "stream": True}
    response = await http.post("/v1/query", json=body, headers=AUTH)
    assert response.status_code == 200
    events = sse_events(response.text)
    assert {e for e, _ in events[:-1]} == {"token"}
    assert "".join(json.loads(d)["text"] for _, d in events[:-1]) == "one two "
    assert events[-1][0] == "error"
    assert json.loads(events[-1][1])["error"]["code"] == "execution"


async def test_caller_rate_limit_answers_429_with_retry_after(http: httpx.AsyncClient) -> None:
    headers = {"authorization": f"Bearer {LIMITED_TOKEN}"}
    statuses = []
    for _ in range(3):  # burst 2, 6 per minute
        response = await http.post(
            "/v1/query", json={"model": "echo", "prompt": "x"}, headers=headers
        )
        statuses.append(response.status_code)
    assert statuses == [200, 200, 429]
    assert response.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response.headers["retry-after"]) <= 10


async def test_per_ip_rate_limit(gateways: Callable[[str, str], Gateway], backend: str) -> None:
    gateway = gateways(IP_LIMITED, backend)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        statuses = []
        for _ in range(4):  # burst 3
            response = await http.post(
                "/v1/query", json={"model": "echo", "prompt": "x"}, headers=AUTH
            )
            statuses.append(response.status_code)
        assert statuses == [200, 200, 200, 429]
        assert response.headers["retry-after"] == "1"
        # Unauthenticated requests are refused before the rate limit: they never spend it.
        response = await http.post("/v1/query", json={"model": "echo", "prompt": "x"})
        assert response.status_code == 401


async def test_target_admission_is_429_and_a_disconnect_frees_the_slot(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    body = {"model": "slow", "prompt": "x", "stream": True}
    async with http.stream("POST", "/v1/query", json=body, headers=AUTH) as first:
        assert first.status_code == 200
        chunks = first.aiter_bytes()  # kept referenced: a dropped iterator closes the response
        assert b"event: token" in await chunks.__anext__()  # the slot is held
        refused = await http.post("/v1/query", json=body, headers=AUTH)
        assert _error(refused) == (429, "admission")
        assert refused.headers["retry-after"] == "1"
    # The client left mid-stream: the gateway cancels the run and frees the slot.
    with anyio.fail_after(5):
        while True:
            again = await http.post("/v1/query", json={**body, "stream": False}, headers=AUTH)
            if again.status_code == 200:
                break
            await anyio.sleep(0.05)
    assert again.json()["text"].startswith("a b c")
    gateway.wait_log('"cancel_reason":"client_disconnected"')


async def test_models_lists_only_allowed_targets(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/models", headers=AUTH)
    names = {model["id"] for model in response.json()["data"]}
    assert names == {"echo", "words", "slow", "broken", "busy", "midway", "vectors"}
    vectors = next(m for m in response.json()["data"] if m["id"] == "vectors")
    assert vectors["capabilities"]["embed"] is True
    assert (await http.get("/v1/models")).status_code == 401


async def test_cors_only_for_allowed_origins(http: httpx.AsyncClient) -> None:
    body = {"model": "echo", "prompt": "x"}
    allowed = await http.post(
        "/v1/query", json=body, headers={**AUTH, "origin": "https://app.example"}
    )
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-request-id" in allowed.headers["access-control-expose-headers"]
    other = await http.post(
        "/v1/query", json=body, headers={**AUTH, "origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in other.headers
    preflight = await http.options(
        "/v1/query",
        headers={"origin": "https://app.example", "access-control-request-method": "POST"},
    )
    assert preflight.status_code == 204
    assert "authorization" in preflight.headers["access-control-allow-headers"]


async def test_unknown_route_and_method(http: httpx.AsyncClient) -> None:
    assert _error(await http.get("/nope")) == (404, "not_found")
    assert _error(await http.get("/v1/query")) == (405, "method_not_allowed")
