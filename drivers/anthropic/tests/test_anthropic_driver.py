"""The anthropic driver against a loopback mock of the Messages API."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from anthropic_mock import MockState, ServerThread

import sipp
from sipp import SippClient, installed_drivers

pytestmark = pytest.mark.anyio

SECRET = "sk-ant-test-0123456789abcdef"
CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "system", "content": "Be kind."},
    {"role": "user", "content": "Hi"},
]


def descriptor(server: ServerThread, model: str = "tokens=3", **extra: Any) -> dict[str, Any]:
    return {
        "kind": "provider",
        "provider": "anthropic",
        "model": model,
        "base_url": server.base_url,
        "api_key": SECRET,
        "retries": 0,
        **extra,
    }


@pytest.fixture
async def client() -> AsyncIterator[SippClient]:
    async with SippClient() as client:
        yield client


def sent(state: MockState, request_id: str) -> dict[str, Any]:
    return next(r for r in reversed(state.requests) if r["headers"]["x-request-id"] == request_id)


def test_entry_point_is_installed() -> None:
    names = {info.name: info.distribution for info in installed_drivers()}
    assert names["provider.anthropic"] == "sipp-anthropic"


@pytest.mark.parametrize(
    "stream", [pytest.param(True, id="stream"), pytest.param(False, id="whole")]
)
async def test_chat(
    client: SippClient, anthropic_server: ServerThread, anthropic_state: MockState, stream: bool
) -> None:
    ep = await client.add("a", descriptor(anthropic_server))
    run = client.chat(CHAT, endpoint=ep, emit_tokens=stream, stop=["END"], temperature=0.2)
    batches = [b.text async for b in run.tokens]
    response = await run
    assert response.text == "tok0 tok1 tok2 " == "".join(batches)
    assert response.finish_reason == "stop"
    assert response.id == "msg_mock"
    # Input usage includes cache creation and cache read tokens, also reported apart.
    assert response.usage == sipp.Usage(
        input_tokens=18,
        output_tokens=3,
        total_tokens=21,
        cache_read_tokens=5,
        cache_write_tokens=3,
    )
    request = sent(anthropic_state, run.id)
    assert request["path"] == "/v1/messages"
    assert request["headers"]["x-api-key"] == SECRET
    assert request["headers"]["anthropic-version"] == "2023-06-01"
    body = request["body"]
    assert body["system"] == "Be brief.\n\nBe kind."
    assert body["messages"] == [{"role": "user", "content": "Hi"}]
    assert body["max_tokens"] == 4096
    assert body["stop_sequences"] == ["END"]
    assert body["temperature"] == 0.2
    assert body.get("stream", False) is stream


@pytest.mark.parametrize(
    "stream", [pytest.param(True, id="stream"), pytest.param(False, id="whole")]
)
async def test_query_is_one_user_message(
    client: SippClient, anthropic_server: ServerThread, anthropic_state: MockState, stream: bool
) -> None:
    ep = await client.add(
        "a", descriptor(anthropic_server, "stop=max_tokens", version="2024-01-01")
    )
    run = client.query("Once", endpoint=ep, emit_tokens=stream, max_tokens=3)
    response = await run
    assert response.finish_reason == "length"
    request = sent(anthropic_state, run.id)
    assert request["body"]["messages"] == [{"role": "user", "content": "Once"}]
    assert request["body"]["max_tokens"] == 3
    assert "system" not in request["body"]
    assert request["headers"]["anthropic-version"] == "2024-01-01"


async def test_embed_is_refused_before_io(
    client: SippClient, anthropic_server: ServerThread, anthropic_state: MockState
) -> None:
    ep = await client.add("a", descriptor(anthropic_server))
    count = len(anthropic_state.requests)
    with pytest.raises(sipp.UnsupportedOperationError):
        await client.embed("x", endpoint=ep)
    assert len(anthropic_state.requests) == count


@pytest.mark.parametrize(
    ("script", "cls", "kind"),
    [
        pytest.param(
            "status=401;type=authentication_error",
            sipp.AuthenticationError,
            "authentication",
            id="401",
        ),
        pytest.param(
            "status=403;type=permission_error", sipp.AuthorizationError, "authorization", id="403"
        ),
        pytest.param(
            "status=404;type=not_found_error", sipp.ModelNotFoundError, "model_not_found", id="404"
        ),
        pytest.param(
            "status=400;type=invalid_request_error",
            sipp.UpstreamInvalidRequestError,
            "invalid_request",
            id="400",
        ),
        pytest.param(
            "status=413;type=request_too_large",
            sipp.UpstreamInvalidRequestError,
            "invalid_request",
            id="413",
        ),
        pytest.param(
            "status=429;type=rate_limit_error", sipp.RateLimitedError, "rate_limited", id="429"
        ),
        pytest.param(
            "status=400;type=billing_error", sipp.QuotaExceededError, "quota_exceeded", id="billing"
        ),
        pytest.param("status=500;type=api_error", sipp.OverloadedError, "overloaded", id="500"),
        pytest.param(
            "status=529;type=overloaded_error", sipp.OverloadedError, "overloaded", id="529"
        ),
    ],
)
async def test_error_kinds(
    client: SippClient, anthropic_server: ServerThread, script: str, cls: type[Exception], kind: str
) -> None:
    model = f"{script};message=invalid x-api-key {SECRET}"
    ep = await client.add("a", descriptor(anthropic_server, model))
    run = client.chat(CHAT, endpoint=ep, emit_tokens=True)
    with pytest.raises(cls) as caught:
        await run
    error = caught.value
    assert isinstance(error, sipp.ProviderError) and error.kind == kind
    assert error.request_id == f"req_up_{run.id}"
    for text in (str(error), repr(error), error.raw_body or ""):
        assert SECRET not in text


async def test_in_band_error_event(client: SippClient, anthropic_server: ServerThread) -> None:
    ep = await client.add("a", descriptor(anthropic_server, "tokens=2;end=error", retries=2))
    run = client.chat(CHAT, endpoint=ep, emit_tokens=True)
    with pytest.raises(sipp.OverloadedError) as caught:
        await run
    assert caught.value.partial is not None and caught.value.partial.text == "tok0 tok1 "


@pytest.mark.parametrize(
    "script",
    [pytest.param("end=truncated", id="truncated"), pytest.param("end=malformed", id="malformed")],
)
async def test_broken_stream_is_a_protocol_error(
    client: SippClient, anthropic_server: ServerThread, script: str
) -> None:
    ep = await client.add("a", descriptor(anthropic_server, script))
    with pytest.raises(sipp.ProtocolError):
        await client.chat(CHAT, endpoint=ep, emit_tokens=True)


async def test_retry_after_then_success(
    client: SippClient, anthropic_server: ServerThread, anthropic_state: MockState
) -> None:
    model = "status=529;type=overloaded_error;fail_attempts=1;retry_after=0.2"
    ep = await client.add("a", descriptor(anthropic_server, model, retries=1))
    run = client.chat(CHAT, endpoint=ep, emit_tokens=True)
    started = time.monotonic()
    assert (await run).text == "tok0 tok1 tok2 "
    assert time.monotonic() - started >= 0.2
    assert anthropic_state.attempts[run.id] == 2


@pytest.mark.parametrize(
    ("script", "timeout", "phase"),
    [
        pytest.param("first=5", {"first_token": 0.3}, "first_token", id="first_token"),
        pytest.param("tokens=5;stall_after=2", {"idle": 0.3}, "idle", id="idle"),
        pytest.param("tokens=400;delay=0.01", {"total": 0.4}, "total", id="total"),
    ],
)
async def test_timeouts(
    client: SippClient, anthropic_server: ServerThread, script: str, timeout: Any, phase: str
) -> None:
    ep = await client.add("a", descriptor(anthropic_server, script))
    with pytest.raises(sipp.TimeoutError) as caught:
        await client.chat(CHAT, endpoint=ep, emit_tokens=True, timeout=timeout)
    assert caught.value.phase == phase


async def test_needs_an_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    async with SippClient() as client:
        with pytest.raises(sipp.ConfigurationError, match="api_key"):
            await client.add("a", {"kind": "provider", "provider": "anthropic", "model": "m"})
