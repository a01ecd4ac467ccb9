"""sipp.http's pure helpers: classification, retry hints, request ids, redaction, URLs."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

import sipp
import sipp.http as http
from sipp.http import (
    Redactor,
    classify_error,
    error_from_response,
    map_httpx_errors,
    parse_retry_after,
    request_id_of,
    validate_base_url,
)


def test_all_is_sorted_and_complete() -> None:
    assert http.__all__ == sorted(http.__all__, key=lambda n: (not n.isupper(), n))
    for name in http.__all__:
        assert hasattr(http, name)


def test_import_sipp_does_not_import_httpx() -> None:
    code = "import sys, sipp; assert 'httpx' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        pytest.param(429, "insufficient_quota", "quota_exceeded", id="code-wins"),
        pytest.param(404, "unheard_of", "model_not_found", id="unknown-code-status"),
        pytest.param(418, None, "invalid_request", id="other-4xx"),
        pytest.param(502, None, "overloaded", id="5xx"),
        pytest.param(None, "rate_limit_error", "rate_limited", id="no-status"),
        pytest.param(None, None, "provider", id="nothing-known"),
    ],
)
def test_classify_error(status: int | None, code: str | None, kind: str) -> None:
    assert classify_error(status, code) == kind


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        pytest.param({"retry-after-ms": "250", "retry-after": "9"}, 0.25, id="ms-first"),
        pytest.param({"retry-after": "3"}, 3.0, id="seconds"),
        pytest.param({"retry-after": "Thu, 01 Jan 1970 00:00:10 GMT"}, 5.0, id="date"),
        pytest.param({"retry-after": "soon"}, None, id="garbage"),
        pytest.param({"retry-after": "-1"}, None, id="negative"),
        pytest.param({}, None, id="absent"),
    ],
)
def test_parse_retry_after(headers: dict[str, str], seconds: float | None) -> None:
    assert parse_retry_after(headers, now=5.0) == seconds


def test_request_id_of() -> None:
    assert request_id_of(httpx.Headers({"Request-Id": "a"})) == "a"
    assert request_id_of(httpx.Headers({"x-request-id": "b", "request-id": "a"})) == "b"


def test_error_from_response_redacts_and_types() -> None:
    body = b'{"error": {"message": "bad key sk-live-abcdefghijklmnop", "code": "invalid_api_key"}}'
    headers = httpx.Headers({"x-request-id": "r1", "retry-after": "2"})
    error = error_from_response(401, headers, body, redactor=Redactor(["sk-live-abcdefghijklmnop"]))
    assert isinstance(error, sipp.AuthenticationError) and isinstance(error, sipp.ProviderError)
    assert error.request_id == "r1" and error.retry_after == 2.0 and not error.retryable
    for text in (str(error), repr(error), error.raw_body or ""):
        assert "abcdefghijklmnop" not in text


def test_redactor_masks_known_and_key_shaped_secrets() -> None:
    redact = Redactor(["hunter2-secret"])
    text = redact("a hunter2-secret b Bearer tok_123456789 c sk-proj-ABCDEFGHIJKLMNOP")
    assert text == "a [redacted] b Bearer [redacted] c [redacted]"
    assert "hunter2" not in repr(redact)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        pytest.param("https://api.example.com/v1/", True, id="https"),
        pytest.param("http://localhost:8080/v1", True, id="loopback-name"),
        pytest.param("http://[::1]:8080", True, id="loopback-v6"),
        pytest.param("http://127.0.0.2/v1", True, id="loopback-v4"),
        pytest.param("http://api.example.com", False, id="insecure"),
        pytest.param("https://u:p@api.example.com", False, id="userinfo"),
        pytest.param("https://api.example.com?x=1", False, id="query"),
        pytest.param("https://api.example.com/#f", False, id="fragment"),
        pytest.param("api.example.com", False, id="relative"),
        pytest.param("https://api.example.com:99999", False, id="bad-port"),
    ],
)
def test_validate_base_url(url: str, ok: bool) -> None:
    if ok:
        assert not validate_base_url(url).endswith("/")
    else:
        with pytest.raises(sipp.ConfigurationError):
            validate_base_url(url)


@pytest.mark.parametrize(
    ("raised", "expected", "phase"),
    [
        pytest.param(httpx.ConnectTimeout("t"), sipp.TimeoutError, "connect", id="connect-timeout"),
        pytest.param(httpx.ConnectError("c"), sipp.ConnectError, None, id="connect"),
        pytest.param(httpx.ReadError("r"), sipp.TransportError, None, id="read"),
        pytest.param(httpx.RemoteProtocolError("p"), sipp.TransportError, None, id="remote"),
        pytest.param(httpx.InvalidURL("u"), sipp.ConfigurationError, None, id="url"),
    ],
)
def test_map_httpx_errors(raised: Exception, expected: type[Exception], phase: str | None) -> None:
    with pytest.raises(expected) as caught, map_httpx_errors(upstream="x"):
        raise raised
    assert caught.value.__cause__ is raised
    assert getattr(caught.value, "phase", None) == phase
    assert not isinstance(caught.value, sipp.ConnectError) or expected is sipp.ConnectError


def test_build_json_post_sets_accept_request_id_and_connect_timeout() -> None:
    from types import SimpleNamespace

    import httpx

    from sipp import Timeouts
    from sipp.http import build_json_post

    call = SimpleNamespace(request_id="req_1", timeouts=Timeouts(connect=3.0))
    client = httpx.AsyncClient()
    streamed = build_json_post(client, "http://h/x", b"{}", call, stream=True)  # type: ignore[arg-type]
    assert streamed.headers["accept"] == "text/event-stream"
    assert streamed.headers["x-request-id"] == "req_1"
    assert streamed.extensions["timeout"]["connect"] == 3.0
    whole = build_json_post(
        client,
        "http://h/x",
        b"{}",
        call,
        stream=False,  # type: ignore[arg-type]
        request_id_header=None,
        headers={"authorization": "Bearer t"},
    )
    assert whole.headers["accept"] == "application/json"
    assert "x-request-id" not in whole.headers
    assert whole.headers["authorization"] == "Bearer t"
    assert whole.read() == b"{}"
