"""Turning an upstream's error answer into the right ``sipp`` error.

Three small pure functions (:func:`classify_error`, :func:`parse_retry_after`,
:func:`request_id_of`) and one that combines them with the body
(:func:`error_from_response`). The kind table is the one in ``drivers.md``:
the body's code (or type, when there is no code) decides only when the table
knows it; otherwise the status does.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from typing import Final, Literal

import msgspec

from .._errors import UpstreamError, upstream_error
from ._redact import Redactor

__all__ = [
    "CODE_KINDS",
    "MAX_ERROR_BODY",
    "ErrorBody",
    "build_error",
    "classify_error",
    "error_from_response",
    "parse_error_body",
    "parse_retry_after",
    "request_id_of",
    "status_kind",
]

#: Upstream error codes (or types) whose meaning does not depend on the status.
CODE_KINDS: Final[Mapping[str, str]] = {
    # OpenAI
    "invalid_api_key": "authentication",
    "rate_limit_exceeded": "rate_limited",
    "insufficient_quota": "quota_exceeded",
    "billing_hard_limit_reached": "quota_exceeded",
    "model_not_found": "model_not_found",
    "context_length_exceeded": "context_length_exceeded",
    "unsupported_feature": "unsupported_feature",
    # Anthropic (error.type)
    "authentication_error": "authentication",
    "permission_error": "authorization",
    "rate_limit_error": "rate_limited",
    "billing_error": "quota_exceeded",
    "overloaded_error": "overloaded",
    "timeout_error": "timeout",
}

#: Error bodies are read (and kept in ``raw_body``) up to this many bytes.
MAX_ERROR_BODY: Final = 64 * 1024


def status_kind(status: int) -> str:
    """The kind an HTTP status alone implies."""
    if status == 401:
        return "authentication"
    if status == 402:
        return "quota_exceeded"
    if status == 403:
        return "authorization"
    if status == 404:
        return "model_not_found"
    if status == 408:
        return "timeout"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "overloaded"
    if 400 <= status < 500:
        return "invalid_request"
    return "provider"


def classify_error(status: int | None, code: str | None = None) -> str:
    """The error kind for a status and the body's code (``None`` when unknown)."""
    if code:
        known = CODE_KINDS.get(code)
        if known is not None:
            return known
    if status is None:
        return "provider"
    return status_kind(status)


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` then ``retry-after`` (seconds or HTTP date)."""
    value = headers.get("retry-after-ms")
    if value is not None:
        seconds = _number(value)
        if seconds is not None:
            return seconds / 1000.0
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT by definition
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _number(value: str) -> float | None:
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return number


def request_id_of(headers: Mapping[str, str]) -> str | None:
    """The upstream's request id (``x-request-id``, then ``request-id``)."""
    return headers.get("x-request-id") or headers.get("request-id") or None


class ErrorBody(msgspec.Struct, frozen=True):
    """What an error body says; every field may be missing."""

    message: str | None = None
    code: str | None = None
    type: str | None = None


class _Detail(msgspec.Struct):
    message: str | None = None
    code: str | int | None = None
    type: str | None = None


class _Envelope(msgspec.Struct):
    error: _Detail | str | None = None
    message: str | None = None
    type: str | None = None


_envelope_decoder: Final = msgspec.json.Decoder(_Envelope)


def parse_error_body(body: bytes | str) -> ErrorBody:
    """Read ``{"error": {"message", "code", "type"}}`` (OpenAI, Anthropic and most others).

    Also accepts ``{"error": "text"}`` and ``{"message": ...}``; anything else
    gives an empty :class:`ErrorBody` and the status decides.
    """
    try:
        envelope = _envelope_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ErrorBody()
    error = envelope.error
    if isinstance(error, _Detail):
        code = str(error.code) if error.code is not None else None
        return ErrorBody(error.message, code, error.type)
    if isinstance(error, str):
        return ErrorBody(error, None, envelope.type)
    return ErrorBody(envelope.message, None, envelope.type)


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    source: Literal["provider", "gateway"] = "provider",
    upstream: str = "upstream",
    redactor: Redactor | None = None,
    parsed: ErrorBody | None = None,
) -> UpstreamError:
    """The typed error for a non-2xx answer: kind, code, request id, retry hint, raw body.

    ``upstream`` names the service in the message (``"openai"``). Pass
    ``parsed`` when the body has a shape :func:`parse_error_body` does not read.
    """
    info = parsed if parsed is not None else parse_error_body(body)
    code = info.code or info.type
    text = body[:MAX_ERROR_BODY].decode("utf-8", "replace")
    return build_error(
        source=source,
        status=status,
        code=code,
        message=info.message or (text.strip()[:200] if text.strip() else None),
        upstream=upstream,
        request_id=request_id_of(headers),
        retry_after=parse_retry_after(headers),
        raw_body=text,
        redactor=redactor,
    )


def build_error(
    *,
    source: Literal["provider", "gateway"] = "provider",
    status: int | None,
    code: str | None,
    message: str | None,
    upstream: str = "upstream",
    request_id: str | None = None,
    retry_after: float | None = None,
    raw_body: str | None = None,
    redactor: Redactor | None = None,
) -> UpstreamError:
    """An upstream error from parts (also for in-band stream errors, where ``status`` is None)."""
    scrub = redactor.redact if redactor is not None else Redactor().redact
    kind = classify_error(status, code)
    where = f"{upstream} returned HTTP {status}" if status is not None else f"{upstream} error"
    detail = f": {scrub(message)}" if message else ""
    label = f" ({code})" if code else ""
    # Whether it may be retried follows from kind and status (``sipp._retry``).
    return upstream_error(
        source,
        kind,
        f"{where}{label}{detail}",
        status=status,
        code=code,
        request_id=request_id,
        retry_after=retry_after,
        raw_body=scrub(raw_body) if raw_body is not None else None,
    )
