"""Byte-level checks of what the route helpers write."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

import sipp
from sipp import EmbeddingResponse, EndpointInfo, SippClient, TextResponse, Usage
from sipp.gateway import (
    GatewayProfileError,
    encode_json,
    gateway_embedding_response_body,
    gateway_error_response,
    gateway_json_response,
    gateway_text_response_body,
    gateway_text_stream_response,
)

INFO = EndpointInfo(kind="scripted", name="x")


def test_frames_are_exact() -> None:
    from sipp.gateway import done_frame, error_frame, token_frame, usage_frame

    assert token_frame("Hé\n", 3) == b'event: token\ndata: {"text":"H\xc3\xa9\\n","sequence":3}\n\n'
    assert usage_frame({"input_tokens": 8}) == b'event: usage\ndata: {"input_tokens":8}\n\n'
    assert done_frame("stop") == b'event: done\ndata: {"finish_reason":"stop"}\n\n'
    assert error_frame("execution", "boom") == (
        b'event: error\ndata: {"error":{"code":"execution","message":"boom"}}\n\n'
    )


def test_text_body_is_compact_raw_utf8() -> None:
    response = TextResponse(
        endpoint=INFO,
        text="¡hola!",
        finish_reason="length",
        id="resp_1",
        usage=Usage(input_tokens=8, output_tokens=12, total_tokens=20),
    )
    assert encode_json(gateway_text_response_body("public", response)) == (
        b'{"id":"resp_1","model":"public","text":"\xc2\xa1hola!","finish_reason":"length",'
        b'"usage":{"input_tokens":8,"output_tokens":12,"total_tokens":20}}'
    )


def test_text_body_without_id_or_usage() -> None:
    response = TextResponse(endpoint=INFO, text="", finish_reason="stop")
    assert gateway_text_response_body("t", response) == {
        "id": "response",
        "model": "t",
        "text": "",
        "finish_reason": "stop",
    }


def test_embedding_body_omits_unknown_usage_fields() -> None:
    response = EmbeddingResponse(endpoint=INFO, values=[0.5, -1.0], usage=Usage(input_tokens=3))
    assert encode_json(gateway_embedding_response_body("t", response)) == (
        b'{"id":"response","model":"t","embedding":[0.5,-1.0],"usage":{"input_tokens":3}}'
    )


class Coded(Exception):
    def __init__(self, message: str, code: object, status: object = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@pytest.mark.parametrize(
    ("error", "status", "code", "message"),
    [
        pytest.param(
            GatewayProfileError("invalid_json", "bad"), 400, "invalid_json", "bad", id="profile"
        ),
        pytest.param(
            sipp.InvalidRequestError("max_tokens bad"),
            400,
            "invalid_request",
            "max_tokens bad",
            id="sdk",
        ),
        pytest.param(Coded("nope", "authorization", 403), 403, "authorization", "nope", id="coded"),
        pytest.param(Coded("x", "teapot", 200), 500, "teapot", "x", id="status-not-error"),
        pytest.param(Coded("x", "teapot", True), 500, "teapot", "x", id="status-bool"),
        pytest.param(
            Coded("", "teapot", 418), 418, "teapot", "gateway request failed", id="empty-message"
        ),
        pytest.param(
            Coded("x", "", 400), 500, "internal", "gateway request failed", id="empty-code"
        ),
        pytest.param(
            Coded("x", 7, 400), 500, "internal", "gateway request failed", id="code-not-str"
        ),
        pytest.param(
            KeyError("secret internals"), 500, "internal", "gateway request failed", id="bug"
        ),
        pytest.param(
            sipp.TimeoutError("idle timeout", phase="idle"),
            504,
            "upstream_timeout",
            "idle timeout",
            id="timeout",
        ),
        pytest.param(
            sipp.upstream_error("provider", "timeout", "slow", status=408),
            504,
            "upstream_timeout",
            "slow",
            id="upstream-timeout",
        ),
        pytest.param(
            sipp.upstream_error("provider", "authentication", "bad key", status=401),
            502,
            "execution",
            "bad key",
            id="server-credentials",
        ),
        pytest.param(
            sipp.upstream_error("provider", "overloaded", "busy", status=503),
            503,
            "execution",
            "busy",
            id="overloaded",
        ),
        pytest.param(
            sipp.upstream_error("gateway", "authorization", "no", status=403, code="authorization"),
            502,
            "execution",
            "no",
            id="gateway-upstream-credentials",
        ),
        pytest.param(
            sipp.RunCancelled("server_shutdown"),
            499,
            "cancelled",
            "run cancelled: server_shutdown",
            id="cancelled",
        ),
    ],
)
def test_error_rules(error: BaseException, status: int, code: str, message: str) -> None:
    response = gateway_error_response(error)
    assert response.status == status
    assert response.body == {"error": {"code": code, "message": message}}
    assert "retry-after" not in response.headers


def test_an_unexpected_error_is_logged_never_sent(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="sipp.gateway"):
        response = gateway_error_response(RuntimeError("db password=hunter2"))
    assert b"hunter2" not in response.render()
    assert "hunter2" in caplog.text


@pytest.mark.parametrize(
    ("retry_after", "header"),
    [pytest.param(2.2, "3", id="ceil"), pytest.param(None, "1", id="default")],
)
def test_rate_limit_is_429_with_retry_after(retry_after: float | None, header: str) -> None:
    error = sipp.upstream_error(
        "provider", "rate_limited", "slow down", status=429, retry_after=retry_after
    )
    response = gateway_error_response(error)
    assert (response.status, response.headers) == (429, {"retry-after": header})
    assert response.body["error"]["code"] == "rate_limited"


class Recorder:
    """An ASGI server's side of one exchange: what the app sent."""

    def __init__(self, *, disconnect_after: float | None = None) -> None:
        self.messages: list[dict[str, Any]] = []
        self.disconnect_after = disconnect_after

    async def receive(self) -> dict[str, Any]:
        if self.disconnect_after is None:
            await anyio.sleep_forever()
        await anyio.sleep(self.disconnect_after)
        return {"type": "http.disconnect"}

    async def send(self, message: Any) -> None:
        self.messages.append(message)

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.messages[0]["headers"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])


SCOPE = {"type": "http", "headers": [(b"x-request-id", b"abc 123\n<x>")]}


@pytest.mark.anyio
async def test_json_response_asgi_bytes() -> None:
    recorder = Recorder()
    await gateway_json_response({"a": "é"})(SCOPE, recorder.receive, recorder.send)
    assert recorder.messages[0]["status"] == 200
    assert recorder.headers[b"content-type"] == b"application/json"
    assert recorder.headers[b"x-request-id"] == b"abc123x"  # sanitised
    assert recorder.body == b'{"a":"\xc3\xa9"}'


@pytest.mark.anyio
async def test_stream_response_exact_bytes() -> None:
    async with SippClient() as client:
        await client.add("s", {"kind": "scripted", "tokens": ["He", "llo"]})
        run = client.query("Hi there", endpoint="s", emit_tokens=True)
        recorder = Recorder()
        await gateway_text_stream_response(run)(SCOPE, recorder.receive, recorder.send)
    assert recorder.messages[0]["status"] == 200
    assert recorder.headers[b"content-type"] == b"text/event-stream"
    assert recorder.headers[b"cache-control"] == b"no-store"
    body = recorder.body
    frames = body.split(b"\n\n")
    assert frames[-3:] == [
        b'event: usage\ndata: {"input_tokens":2,"output_tokens":2,"total_tokens":4}',
        b'event: done\ndata: {"finish_reason":"stop"}',
        b"",
    ]
    texts = b"".join(f for f in frames if f.startswith(b"event: token"))
    assert texts.startswith(b'event: token\ndata: {"text":"He')
    assert recorder.messages[-1]["more_body"] is False


@pytest.mark.anyio
async def test_a_run_failing_before_its_first_token_gets_a_real_status() -> None:
    async with SippClient() as client:
        await client.add(
            "s", {"kind": "scripted", "fail_at": 0, "failure": "rate_limited", "retry_after": 4.0}
        )
        run = client.query("Hi", endpoint="s", emit_tokens=True)
        recorder = Recorder()
        await gateway_text_stream_response(run)(SCOPE, recorder.receive, recorder.send)
    assert recorder.messages[0]["status"] == 429
    assert recorder.headers[b"retry-after"] == b"4"
    assert recorder.body == b'{"error":{"code":"rate_limited","message":"scripted rate_limited"}}'


@pytest.mark.anyio
async def test_disconnect_cancels_the_run_with_client_disconnected() -> None:
    async with SippClient() as client:
        await client.add("s", {"kind": "scripted", "reply": "w " * 1000, "token_delay": 0.01})
        run = client.query("Hi", endpoint="s", emit_tokens=True)
        recorder = Recorder(disconnect_after=0.1)
        with anyio.fail_after(2):
            await gateway_text_stream_response(run)(SCOPE, recorder.receive, recorder.send)
        with pytest.raises(sipp.RunCancelled) as caught:
            await run
    assert caught.value.reason == "client_disconnected"
    assert run.status == "cancelled"
