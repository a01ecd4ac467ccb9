"""Upstream faults through the OpenAI driver: error kinds, broken streams, timeouts, retries."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from openai_mock import MockState, ServerThread, free_port

import sipp
from sipp import SippClient

pytestmark = pytest.mark.anyio

SECRET = "sk-test-0123456789abcdef"
CHAT = [{"role": "user", "content": "Hi"}]


def descriptor(base_url: str, model: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "provider",
        "provider": "openai_compatible",
        "model": model,
        "base_url": base_url,
        "api_key": SECRET,
        "retries": 0,
        **extra,
    }


@pytest.fixture
async def client() -> AsyncIterator[SippClient]:
    async with SippClient() as client:
        yield client


def assert_no_secret(error: BaseException) -> None:
    for text in (str(error), repr(error), getattr(error, "raw_body", None) or ""):
        assert SECRET not in text


@pytest.mark.parametrize(
    ("script", "kind", "cls"),
    [
        pytest.param("status=401", "authentication", sipp.AuthenticationError, id="401"),
        pytest.param("status=402", "quota_exceeded", sipp.QuotaExceededError, id="402"),
        pytest.param("status=403", "authorization", sipp.AuthorizationError, id="403"),
        pytest.param("status=404", "model_not_found", sipp.ModelNotFoundError, id="404"),
        pytest.param("status=408", "timeout", sipp.UpstreamTimeoutError, id="408"),
        pytest.param("status=429", "rate_limited", sipp.RateLimitedError, id="429"),
        pytest.param("status=500", "overloaded", sipp.OverloadedError, id="500"),
        pytest.param("status=529", "overloaded", sipp.OverloadedError, id="529"),
        pytest.param("status=400", "invalid_request", sipp.UpstreamInvalidRequestError, id="400"),
        pytest.param("status=422", "invalid_request", sipp.UpstreamInvalidRequestError, id="422"),
        pytest.param(
            "status=429;code=insufficient_quota",
            "quota_exceeded",
            sipp.QuotaExceededError,
            id="code-insufficient_quota",
        ),
        pytest.param(
            "status=400;code=context_length_exceeded",
            "context_length_exceeded",
            sipp.ContextLengthExceededError,
            id="code-context_length_exceeded",
        ),
        pytest.param(
            "status=400;code=invalid_api_key",
            "authentication",
            sipp.AuthenticationError,
            id="code-invalid_api_key",
        ),
        pytest.param(
            "status=400;code=model_not_found",
            "model_not_found",
            sipp.ModelNotFoundError,
            id="code-model_not_found",
        ),
        pytest.param(
            "status=400;code=rate_limit_exceeded",
            "rate_limited",
            sipp.RateLimitedError,
            id="code-rate_limit_exceeded",
        ),
        pytest.param(
            "status=503;code=unsupported_feature",
            "unsupported_feature",
            sipp.UnsupportedFeatureError,
            id="code-unsupported_feature",
        ),
        pytest.param(
            "status=403;type=rate_limit_error",
            "rate_limited",
            sipp.RateLimitedError,
            id="type-when-no-code",
        ),
        pytest.param(
            "status=404;code=something_new",
            "model_not_found",
            sipp.ModelNotFoundError,
            id="unknown-code-status-decides",
        ),
    ],
)
@pytest.mark.parametrize(
    "stream", [pytest.param(True, id="stream"), pytest.param(False, id="whole")]
)
async def test_error_kind(
    client: SippClient,
    mock_server: ServerThread,
    script: str,
    kind: str,
    cls: type[Exception],
    stream: bool,
) -> None:
    model = f"{script};message=Incorrect API key provided: {SECRET}"
    ep = await client.add("m", descriptor(mock_server.base_url, model))
    run = client.chat(CHAT, endpoint=ep, emit_tokens=stream)
    with pytest.raises(cls) as caught:
        await run
    error = caught.value
    assert isinstance(error, sipp.ProviderError)
    assert error.kind == kind
    assert error.upstream_status == int(script.split(";")[0].split("=")[1])
    assert error.request_id == f"upstream-{run.id}"
    assert error.raw_body is not None and "Incorrect API key" in error.raw_body
    assert_no_secret(error)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param("retry_after=7", 7.0, id="seconds"),
        pytest.param("retry_after_ms=1500;retry_after=7", 1.5, id="ms-first"),
        pytest.param("retry_after=Wed, 21 Oct 2015 07:28:00 GMT", 0.0, id="http-date-past"),
    ],
)
async def test_retry_hint_is_reported(
    client: SippClient, mock_server: ServerThread, headers: str, expected: float
) -> None:
    ep = await client.add("m", descriptor(mock_server.base_url, f"status=429;{headers}"))
    with pytest.raises(sipp.RateLimitedError) as caught:
        await client.query("x", endpoint=ep)
    assert caught.value.retry_after == pytest.approx(expected)


async def test_retry_honours_retry_after(
    client: SippClient, mock_server: ServerThread, mock_state: MockState
) -> None:
    model = "status=429;fail_attempts=1;retry_after=0.3"
    ep = await client.add("m", descriptor(mock_server.base_url, model, retries=2))
    run = client.chat(CHAT, endpoint=ep, emit_tokens=True)
    started = time.monotonic()
    response = await run
    assert time.monotonic() - started >= 0.3
    assert response.text == "tok0 tok1 tok2 "
    assert mock_state.attempts[run.id] == 2


async def test_retry_on_5xx_with_retry_after_ms(
    client: SippClient, mock_server: ServerThread, mock_state: MockState
) -> None:
    model = "status=503;fail_attempts=2;retry_after_ms=20"
    ep = await client.add("m", descriptor(mock_server.base_url, model, retries=3))
    run = client.query("x", endpoint=ep)
    assert (await run).text == "tok0 tok1 tok2 "
    assert mock_state.attempts[run.id] == 3


async def test_no_retry_of_a_quota_error(
    client: SippClient, mock_server: ServerThread, mock_state: MockState
) -> None:
    model = "status=429;code=insufficient_quota;retry_after_ms=10"
    ep = await client.add("m", descriptor(mock_server.base_url, model, retries=3))
    run = client.query("x", endpoint=ep)
    with pytest.raises(sipp.QuotaExceededError):
        await run
    assert mock_state.attempts[run.id] == 1


async def test_in_band_error_after_tokens_is_typed_and_not_retried(
    client: SippClient, mock_server: ServerThread, mock_state: MockState
) -> None:
    model = "tokens=2;end=error;code=rate_limit_exceeded"
    ep = await client.add("m", descriptor(mock_server.base_url, model, retries=3))
    run = client.chat(CHAT, endpoint=ep, emit_tokens=True)
    seen: list[str] = []
    with pytest.raises(sipp.RateLimitedError) as caught:
        async for batch in run.tokens:
            seen.append(batch.text)
    assert "".join(seen) == "tok0 tok1 "
    assert caught.value.partial is not None
    assert caught.value.partial.text == "tok0 tok1 "
    assert caught.value.request_id == f"upstream-{run.id}"
    assert mock_state.attempts[run.id] == 1


@pytest.mark.parametrize(
    ("script", "cls"),
    [
        pytest.param("end=truncated", sipp.ProtocolError, id="truncated"),
        pytest.param("end=cut", sipp.ProtocolError, id="cut-inside-event"),
        pytest.param("end=malformed", sipp.ProtocolError, id="malformed-chunk"),
        pytest.param("end=reset", sipp.TransportError, id="reset-mid-stream"),
    ],
)
async def test_broken_stream(
    client: SippClient, mock_server: ServerThread, script: str, cls: type[Exception]
) -> None:
    ep = await client.add("m", descriptor(mock_server.base_url, script))
    run = client.query("x", endpoint=ep, emit_tokens=True)
    with pytest.raises(cls) as caught:
        await run
    assert not isinstance(caught.value, sipp.ProtocolError) or cls is sipp.ProtocolError
    assert caught.value.partial is not None
    assert caught.value.partial.text == "tok0 tok1 tok2 "


async def test_malformed_whole_answer(client: SippClient, mock_server: ServerThread) -> None:
    ep = await client.add("m", descriptor(mock_server.base_url, "end=malformed"))
    with pytest.raises(sipp.ProtocolError, match="malformed"):
        await client.chat(CHAT, endpoint=ep)


@pytest.mark.parametrize(
    ("script", "timeout", "phase"),
    [
        pytest.param("first=5", {"first_token": 0.3}, "first_token", id="first_token"),
        pytest.param("tokens=5;stall_after=1", {"idle": 0.3}, "idle", id="idle"),
        pytest.param("tokens=200;delay=0.02", {"total": 0.5, "idle": 2}, "total", id="total"),
    ],
)
async def test_timeout_phase(
    client: SippClient,
    mock_server: ServerThread,
    script: str,
    timeout: dict[str, float],
    phase: str,
) -> None:
    ep = await client.add("m", descriptor(mock_server.base_url, script))
    started = time.monotonic()
    with pytest.raises(sipp.TimeoutError) as caught:
        await client.query("x", endpoint=ep, emit_tokens=True, timeout=timeout)
    assert caught.value.phase == phase
    assert time.monotonic() - started < 3
    if phase != "first_token":  # (that script would stall the next request too)
        ok = await client.query("x", endpoint=ep, timeout=5)
        assert ok.text, "the endpoint stays usable after a timeout"


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A socket that listens and never accepts: TCP connects, TLS never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


async def test_connect_timeout(client: SippClient, silent_listener: int) -> None:
    base_url = f"https://127.0.0.1:{silent_listener}/v1"
    ep = await client.add("m", descriptor(base_url, "x", timeout={"connect": 0.3}))
    started = time.monotonic()
    with pytest.raises(sipp.TimeoutError) as caught:
        await client.query("x", endpoint=ep)
    assert caught.value.phase == "connect"
    assert time.monotonic() - started < 3
    assert_no_secret(caught.value)


async def test_connection_refused(client: SippClient) -> None:
    ep = await client.add("m", descriptor(f"http://127.0.0.1:{free_port()}/v1", "x", retries=1))
    with pytest.raises(sipp.ConnectError) as caught:
        await client.query("x", endpoint=ep, emit_tokens=True)
    assert isinstance(caught.value.__cause__, Exception)
    assert_no_secret(caught.value)


async def test_secrets_absent_from_reprs(client: SippClient, mock_server: ServerThread) -> None:
    desc = sipp.ProviderDescriptor(
        provider="openai_compatible",
        model="x",
        base_url=mock_server.base_url,
        api_key=SECRET,
        headers={"x-extra-secret": "hdr-secret-value"},
    )
    ep = await client.add("m", desc)
    for text in (repr(desc), repr(ep), repr(client.get("m"))):
        assert SECRET not in text
        assert "hdr-secret-value" not in text
