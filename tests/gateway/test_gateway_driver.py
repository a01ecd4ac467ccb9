"""The gateway driver against canned answers from a real server on loopback."""

from __future__ import annotations

import json
from typing import Any

import pytest
from canned import Canned

import sipp
from sipp import SippClient

pytestmark = pytest.mark.anyio


TEXT = b'{"id":"r1","model":"t","text":"ok","finish_reason":"length","usage":{"output_tokens":1}}'


async def test_body_headers_and_routes(serve: Any) -> None:
    app = Canned(body=TEXT)
    calls = 0

    async def token() -> str:
        nonlocal calls
        calls += 1
        return f"tok{calls}"

    async with serve(app) as url, SippClient() as client:
        await client.add(
            "gw",
            {
                "kind": "gateway",
                "target": "public",
                "base_url": url + "/api/",
                "routes": {"chat": "/custom/chat"},
                "authentication": {"kind": "bearer", "value_provider": token},
                "headers": {"x-tenant": "docs"},
                "protocol_options": {"metadata": {"a": 1}, "user": "endpoint"},
            },
        )
        run = client.query(
            "Hi",
            endpoint="gw",
            max_tokens=5,
            temperature=0,
            stop=["x"],
            endpoint_options={"user": "request"},
        )
        response = await run
        await client.chat([{"role": "user", "content": "Hey"}], endpoint="gw")
    assert (response.text, response.finish_reason, response.id) == ("ok", "length", "r1")
    (path, headers, body), (chat_path, chat_headers, chat_body) = app.requests
    assert path == "/api/v1/query"
    assert chat_path == "/api/custom/chat"
    assert body == (
        b'{"model":"public","prompt":"Hi","max_tokens":5,"temperature":0.0,"stop":["x"],'
        b'"metadata":{"a":1},"user":"request"}'
    )
    assert json.loads(chat_body)["messages"] == [{"role": "user", "content": "Hey"}]
    assert headers["authorization"] == "Bearer tok1"
    assert chat_headers["authorization"] == "Bearer tok2"  # called per request
    assert headers["content-type"] == "application/json"
    assert headers["x-tenant"] == "docs"
    assert headers["x-request-id"] == run.id


async def test_stream_flag_and_custom_header_auth(serve: Any) -> None:
    sse = (
        b'event: token\ndata: {"text":"a","sequence":0}\n\n'
        b'event: done\ndata: {"finish_reason":"stop"}\n\n'
    )
    app = Canned(body=sse, headers={"content-type": "text/event-stream"})
    async with serve(app) as url, SippClient() as client:
        await client.add(
            "gw",
            {
                "kind": "gateway",
                "target": "t",
                "base_url": url,
                "authentication": {"kind": "header", "header_name": "X-Key", "value": "s3cret"},
            },
        )
        assert (await client.query("Hi", endpoint="gw", emit_tokens=True)).text == "a"
    _, headers, body = app.requests[0]
    assert headers["x-key"] == "s3cret"
    assert "authorization" not in headers
    assert json.loads(body)["stream"] is True


async def test_value_provider_failure_is_an_authentication_error(serve: Any) -> None:
    def broken() -> str:
        raise RuntimeError("vault says: token=abc")

    app = Canned(body=TEXT)
    async with serve(app) as url, SippClient() as client:
        await client.add(
            "gw",
            {
                "kind": "gateway",
                "target": "t",
                "base_url": url,
                "authentication": {"kind": "bearer", "value_provider": broken},
            },
        )
        with pytest.raises(sipp.AuthenticationError) as caught:
            await client.query("Hi", endpoint="gw")
    assert "value_provider failed (RuntimeError)" in str(caught.value)
    assert "abc" not in str(caught.value)
    assert app.requests == []


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind", "code", "message", "retry_after"),
    [
        pytest.param(
            401,
            b'{"error":{"code":"authentication","message":"missing bearer token"}}',
            {},
            sipp.AuthenticationError,
            "authentication",
            "missing bearer token",
            None,
            id="401",
        ),
        pytest.param(
            429,
            b'{"error":{"code":"admission","message":"full"}}',
            {"retry-after-ms": "1500", "retry-after": "9"},
            sipp.OverloadedError,
            "admission",
            "full",
            1.5,
            id="admission-ms",
        ),
        pytest.param(
            429,
            b'{"error":{"code":"rate_limited","message":"slow"}}',
            {"retry-after": "30"},
            sipp.RateLimitedError,
            "rate_limited",
            "slow",
            30.0,
            id="429",
        ),
        pytest.param(
            413,
            b"payload too large",
            {"content-type": "text/plain"},
            sipp.UpstreamInvalidRequestError,
            "http_413",
            "gateway answered HTTP 413: payload too large",
            None,
            id="plain-text",
        ),
        pytest.param(
            504,
            b'{"error":{"code":"upstream_timeout","message":"late"}}',
            {},
            sipp.UpstreamTimeoutError,
            "upstream_timeout",
            "late",
            None,
            id="504",
        ),
    ],
)
async def test_error_answers(
    serve: Any,
    status: int,
    body: bytes,
    headers: dict[str, str],
    kind: type,
    code: str,
    message: str,
    retry_after: float | None,
) -> None:
    app = Canned(status=status, body=body, headers={"x-request-id": "srv-1", **headers})
    async with serve(app) as url, SippClient() as client:
        await client.add("gw", {"kind": "gateway", "target": "t", "base_url": url, "retries": 0})
        with pytest.raises(sipp.GatewayError) as caught:
            await client.query("Hi", endpoint="gw")
    error = caught.value
    assert isinstance(error, kind)
    assert (error.status, error.code, error.message) == (status, code, message)
    assert (error.request_id, error.retry_after) == ("srv-1", retry_after)


@pytest.mark.parametrize(
    ("stream", "text"),
    [
        pytest.param(
            b': keep-alive\r\n\r\nevent: token\r\ndata:{"text":"a",\r\ndata: "sequence":0}\r\n\r\n'
            b'data: [DONE]\n\nevent: done\ndata: {"finish_reason":"stop"}\n\n',
            "a",
            id="crlf-multiline-comment-done-marker",
        ),
    ],
)
async def test_sse_reading_rules(serve: Any, stream: bytes, text: str) -> None:
    app = Canned(body=stream, headers={"content-type": "text/event-stream"})
    async with serve(app) as url, SippClient() as client:
        await client.add("gw", {"kind": "gateway", "target": "t", "base_url": url})
        assert (await client.query("Hi", endpoint="gw", emit_tokens=True)).text == text


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        pytest.param(
            b'event: token\ndata: {"text":"a","sequence":0}\n\n',
            "ended without a done or error event",
            id="no-terminal",
        ),
        pytest.param(
            b'event: done\ndata: {"finish_reason":"stop"}\n\nevent: token\ndata: {"text":"b"}\n\n',
            "after the stream's terminal event",
            id="after-done",
        ),
        pytest.param(
            b'event: tokens\ndata: {"text":"a"}\n\n', "unknown event 'tokens'", id="unknown-event"
        ),
        pytest.param(
            b'event: token\ndata: {"text":1}\n\n', "malformed 'token' event", id="malformed"
        ),
    ],
)
async def test_sse_violations_are_protocol_errors(serve: Any, stream: bytes, message: str) -> None:
    app = Canned(body=stream, headers={"content-type": "text/event-stream"})
    async with serve(app) as url, SippClient() as client:
        await client.add("gw", {"kind": "gateway", "target": "t", "base_url": url})
        with pytest.raises(sipp.ProtocolError, match=message):
            await client.query("Hi", endpoint="gw", emit_tokens=True)


async def test_in_band_error_event(serve: Any) -> None:
    stream = (
        b'event: token\ndata: {"text":"a","sequence":0}\n\n'
        b'event: error\ndata: {"error":{"code":"execution","message":"upstream broke"}}\n\n'
    )
    app = Canned(body=stream, headers={"content-type": "text/event-stream"})
    async with serve(app) as url, SippClient() as client:
        await client.add("gw", {"kind": "gateway", "target": "t", "base_url": url})
        with pytest.raises(sipp.GatewayError) as caught:
            await client.query("Hi", endpoint="gw", emit_tokens=True)
    assert (caught.value.code, caught.value.message) == ("execution", "upstream broke")
    assert caught.value.partial is not None and caught.value.partial.text == "a"


@pytest.mark.parametrize(
    ("descriptor", "message"),
    [
        pytest.param({"base_url": "http://example.com"}, "plain http", id="insecure"),
        pytest.param({"base_url": "https://u:p@example.com"}, "credentials", id="userinfo"),
        pytest.param({"base_url": "https://example.com?x=1"}, "query or fragment", id="query"),
        pytest.param({"base_url": "ftp://example.com"}, "http or https", id="scheme"),
        pytest.param({"routes": {"query": "v1/query"}}, "absolute path", id="relative-route"),
        pytest.param({"routes": {"query": "/v1/query?x"}}, "absolute path", id="route-query"),
        pytest.param(
            {"protocol_options": {"model": "x"}}, "typed field 'model'", id="options-typed"
        ),
    ],
)
async def test_configuration_is_checked_at_add(descriptor: dict[str, Any], message: str) -> None:
    async with SippClient() as client:
        with pytest.raises(sipp.ConfigurationError, match=message):
            await client.add(
                "gw",
                {"kind": "gateway", "target": "t", "base_url": "https://example.com", **descriptor},
            )


async def test_secrets_stay_out_of_repr() -> None:
    async with SippClient() as client:
        await client.add(
            "gw",
            {
                "kind": "gateway",
                "target": "t",
                "base_url": "https://example.com",
                "authentication": {"kind": "bearer", "value": "sk-verysecretvalue"},
            },
        )
        assert "sk-verysecret" not in repr(client.endpoints) + repr(
            client._endpoints["gw"].descriptor
        )


async def test_local_options_are_refused_before_io() -> None:
    async with SippClient() as client:
        await client.add(
            "gw", {"kind": "gateway", "target": "t", "base_url": "https://example.com"}
        )
        with pytest.raises(sipp.InvalidRequestError, match="local"):
            await client.query("Hi", endpoint="gw", local={"context_key": "k"})
