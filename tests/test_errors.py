"""Errors cross processes (pickle) intact, and one rule decides which ones are retried."""

from __future__ import annotations

import multiprocessing
import pickle
from typing import Any

import pytest

import sipp
from sipp import (
    ChatMessage,
    ConnectError,
    EndpointInfo,
    SippError,
    TextResponse,
    TransportError,
    upstream_error,
)
from sipp._errors import UPSTREAM_ERROR_KINDS
from sipp.driver import is_retryable

PARTIAL = TextResponse(
    endpoint=EndpointInfo(kind="scripted", name="m"),
    text="half an ans",
    finish_reason="cancelled",
    transcript=[ChatMessage(role="assistant", content="hi")],
)


def _instances() -> list[SippError]:
    """One instance of every public error class, with its keyword-only details set."""
    made: list[SippError] = [
        sipp.InvalidRequestError("bad", field="messages"),
        sipp.DriverNotFoundError("none", name="x", installed=["a", "b"]),
        sipp.DriverLoadError("broken", name="x"),
        sipp.TimeoutError("late", phase="connect"),
        sipp.OutputValidationError("not JSON", text="{oops"),
        sipp.RunCancelled("user_left", PARTIAL),
        sipp.UpstreamError("plain", status=418, code="teapot"),
    ]
    simple = (
        sipp.ClientClosedError,
        sipp.ConfigurationError,
        sipp.EndpointNotFoundError,
        sipp.UnsupportedOperationError,
        sipp.TransportError,
        sipp.ConnectError,
        sipp.ProtocolError,
        sipp.LocalModelError,
        sipp.SippError,
    )
    made += [cls("message") for cls in simple]
    for source in ("provider", "gateway"):
        for kind in (*UPSTREAM_ERROR_KINDS, "unknown-kind"):
            made.append(
                upstream_error(
                    source,  # type: ignore[arg-type]
                    kind,
                    f"{source} {kind}",
                    status=429,
                    code="c",
                    request_id="req_1",
                    retry_after=1.5,
                    raw_body='{"error": "x"}',
                )
            )
    return made


def _same(a: SippError, b: SippError) -> None:
    assert type(a) is type(b)
    assert a.args == b.args
    assert a.message == b.message
    assert a.__dict__ == b.__dict__
    assert (a.code, a.status, a.retryable) == (b.code, b.status, b.retryable)


@pytest.mark.parametrize("error", _instances(), ids=lambda e: type(e).__name__)
def test_every_error_round_trips_through_pickle(error: SippError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    _same(error, copy)
    if isinstance(error, sipp.UpstreamError):
        assert copy.kind == error.kind
        assert isinstance(copy, sipp.ProviderError) == isinstance(error, sipp.ProviderError)


def test_every_public_error_class_is_covered() -> None:
    covered = {type(e) for e in _instances()}
    public = {
        value
        for name in sipp.__all__
        if isinstance(value := getattr(sipp, name), type) and issubclass(value, SippError)
    }
    # Kind classes are abstract parents; every concrete one is built by upstream_error.
    kinds = {
        sipp.AuthenticationError,
        sipp.AuthorizationError,
        sipp.RateLimitedError,
        sipp.QuotaExceededError,
        sipp.ModelNotFoundError,
        sipp.UpstreamInvalidRequestError,
        sipp.ContextLengthExceededError,
        sipp.OverloadedError,
        sipp.UpstreamTimeoutError,
        sipp.UnsupportedFeatureError,
    }
    missing = {cls for cls in public - kinds if cls not in covered}
    assert missing == set()
    for kind_class in kinds:
        assert any(issubclass(cls, kind_class) for cls in covered), kind_class


def test_upstream_error_classes_are_static_and_reused() -> None:
    first = upstream_error("gateway", "rate_limited", "a", status=429)
    second = upstream_error("gateway", "rate_limited", "b", status=429)
    assert type(first) is type(second)
    assert type(first).__module__ == "sipp._errors"
    assert getattr(sipp._errors, type(first).__name__) is type(first)


def test_pickle_keeps_the_partial_and_the_cancel_reason() -> None:
    copy = pickle.loads(pickle.dumps(sipp.RunCancelled("user_left", PARTIAL)))
    assert copy.reason == "user_left"
    assert copy.partial == PARTIAL


def _raise_in_child(kind: str) -> None:
    raise upstream_error("provider", kind, "from the child", status=429, retry_after=2.0)


def _child_error(kind: str) -> Any:
    # Pool.apply pickles the child's exception back to the parent.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        try:
            pool.apply(_raise_in_child, (kind,))
        except SippError as exc:
            return exc
    return None


def test_an_error_raised_in_another_process_arrives_typed() -> None:
    error = _child_error("rate_limited")
    assert isinstance(error, sipp.RateLimitedError)
    assert isinstance(error, sipp.ProviderError)
    assert error.retry_after == 2.0
    assert error.retryable


@pytest.mark.parametrize(
    ("kind", "status", "expected"),
    [
        ("rate_limited", 429, True),
        ("timeout", 408, True),
        ("invalid_request", 409, True),
        ("overloaded", 503, True),
        ("overloaded", 529, True),
        ("provider", 503, True),
        # An unknown 5xx is not "try again", even classified as overloaded.
        ("overloaded", 500, False),
        ("provider", 500, False),
        ("overloaded", 502, False),
        ("timeout", 504, False),
        ("invalid_request", 400, False),
        # Kinds no retry can fix, whatever the status.
        ("quota_exceeded", 429, False),
        ("authentication", 503, False),
        ("context_length_exceeded", 429, False),
        # In-band errors without a status: the kind decides.
        ("rate_limited", None, True),
        ("overloaded", None, True),
        ("timeout", None, True),
        ("provider", None, False),
        ("invalid_request", None, False),
        ("connect", None, True),
        ("transport", None, True),
    ],
)
def test_the_retry_rule(kind: str, status: int | None, expected: bool) -> None:
    assert is_retryable(kind, status) is expected
    if kind in UPSTREAM_ERROR_KINDS:
        for source in ("provider", "gateway"):
            error = upstream_error(source, kind, "x", status=status)  # type: ignore[arg-type]
            assert error.retryable is expected


def test_transport_errors_and_timeouts_follow_the_rule() -> None:
    assert TransportError("broken").retryable
    assert ConnectError("refused").retryable
    assert sipp.TimeoutError("x", phase="connect").retryable
    for phase in ("first_token", "idle", "total"):
        assert not sipp.TimeoutError("x", phase=phase).retryable  # type: ignore[arg-type]
    assert not sipp.ProtocolError("x").retryable


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("failure", "retried"),
    [("overloaded", True), ("rate_limited", True), ("connect", True), ("provider", False)],
)
async def test_the_core_retries_what_the_rule_allows(failure: str, retried: bool) -> None:
    from sipp.testing import scripted_driver

    script = {
        "kind": "scripted",
        "reply": "ok",
        "fail_at": 0,
        "failure": failure,
        "fail_times": 1,
        "retries": 2,
        "retry_after": 0.01,
    }
    async with sipp.SippClient() as client:
        await client.add("s", script)
        driver = scripted_driver.opened[-1]
        run = client.query("x")
        if retried:
            assert (await run).text == "ok"
            assert driver.attempts == 2
        else:  # the scripted provider failure is an HTTP 500: not "try again"
            with pytest.raises(sipp.ProviderError):
                await run
            assert driver.attempts == 1
