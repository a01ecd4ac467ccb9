"""The public namespace, the error tree and the value types."""

from __future__ import annotations

import builtins
import pickle

import msgspec
import pytest

import sipp
from sipp import (
    Authentication,
    GatewayDescriptor,
    ProviderDescriptor,
    ProviderError,
    RateLimitedError,
    SippError,
    TokenBatch,
    upstream_error,
)


def test_all_is_sorted_and_complete() -> None:
    assert sipp.__all__ == sorted(sipp.__all__)
    public = {name for name in vars(sipp) if not name.startswith("_")}
    modules = {"driver", "http", "testing", "gateway", "otel"}
    assert public - modules - {"annotations"} <= set(sipp.__all__)
    for name in sipp.__all__:
        assert hasattr(sipp, name), name


@pytest.mark.parametrize("kind", sipp._errors.UPSTREAM_ERROR_KINDS)
@pytest.mark.parametrize("source", ["provider", "gateway"])
def test_upstream_errors_are_caught_by_source_and_by_kind(source: str, kind: str) -> None:
    error = upstream_error(source, kind, "boom", status=429, request_id="r1", retry_after=2.0)  # type: ignore[arg-type]
    assert isinstance(error, sipp.ProviderError if source == "provider" else sipp.GatewayError)
    assert error.kind == kind
    assert error.request_id == "r1"
    assert error.retry_after == 2.0
    assert error.status == 429
    # A 429 is retried unless the kind says no retry can help (an empty quota, a bad key).
    assert error.retryable == (kind not in sipp._retry.NEVER_RETRY_KINDS)


def test_unknown_kind_becomes_provider_and_only_503_of_5xx_is_retryable() -> None:
    error = upstream_error("provider", "weird", "x", status=503)
    assert error.kind == "provider"
    assert error.retryable
    assert not upstream_error("provider", "weird", "x", status=500).retryable
    assert not upstream_error("provider", "overloaded", "x", status=500).retryable
    assert not upstream_error("provider", "invalid_request", "x", status=400).retryable


def test_rate_limited_provider_error_is_both_classes() -> None:
    error = upstream_error("provider", "rate_limited", "slow down", status=429)
    assert isinstance(error, RateLimitedError)
    assert isinstance(error, ProviderError)
    assert type(error).__name__ == "ProviderRateLimitedError"


def test_timeout_error_is_also_the_builtin_one() -> None:
    error = sipp.TimeoutError("late", phase="idle")
    assert isinstance(error, builtins.TimeoutError)
    assert isinstance(error, sipp.TransportError)
    assert error.phase == "idle"
    assert not error.retryable


def test_every_error_has_a_code_and_a_status() -> None:
    for name in sipp.__all__:
        value = getattr(sipp, name)
        if isinstance(value, type) and issubclass(value, SippError):
            assert isinstance(value.code, str) and value.code
            assert 400 <= value.status <= 599


def test_secrets_never_appear_in_repr() -> None:
    provider = ProviderDescriptor(
        provider="openai", model="m", api_key="sk-secret-1", headers={"X-Key": "hdr-secret"}
    )
    gateway = GatewayDescriptor(
        target="t",
        base_url="https://h",
        authentication=Authentication(kind="bearer", value="tok-secret"),
    )
    text = repr(provider) + repr(gateway) + str(provider) + repr(gateway.authentication)
    for secret in ("sk-secret-1", "hdr-secret", "tok-secret"):
        assert secret not in text
    assert "[redacted]" in text


def test_value_types_are_frozen_and_json_ready() -> None:
    batch = TokenBatch(
        request_id="r",
        stream_id="s",
        sequence_start=0,
        text="hé",
        frame_count=1,
        byte_count=3,
        stats=sipp.BatchStats(frames_sent=1, bytes_sent=3, batches_sent=1),
    )
    with pytest.raises(AttributeError):
        batch.text = "x"  # type: ignore[misc]
    assert msgspec.json.decode(msgspec.json.encode(batch), type=TokenBatch) == batch
    assert pickle.loads(pickle.dumps(batch)) == batch
