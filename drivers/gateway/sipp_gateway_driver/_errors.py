"""A gateway's error answers as ``GatewayError``: the envelope's code and message, verbatim.

The profile's envelope is ``{"error": {"code", "message"}}``. The kind (the
``GatewayError`` subclass) comes from the profile's code when it has one the
table below knows, otherwise from the HTTP status; the retry hint and request
id come from the headers (``sipp.http`` helpers). A body that is not an
envelope (a proxy's HTML page, the original's plain-text 413) keeps its
status and a short, redacted excerpt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import msgspec

from sipp import UpstreamError, upstream_error
from sipp.http import Redactor, parse_retry_after, request_id_of, status_kind

__all__ = ["CODE_KINDS", "error_from_answer", "error_from_event"]

#: The profile's error codes, as the kinds of the ``GatewayError`` subclasses.
CODE_KINDS: Final[Mapping[str, str]] = {
    "authentication": "authentication",
    "authorization": "authorization",
    "rate_limited": "rate_limited",
    "admission": "overloaded",
    "resolution": "model_not_found",
    "invalid_request": "invalid_request",
    "invalid_json": "invalid_request",
    "payload_too_large": "invalid_request",
    "upstream_timeout": "timeout",
    "context_length_exceeded": "context_length_exceeded",
    "quota_exceeded": "quota_exceeded",
    "unsupported_feature": "unsupported_feature",
}
# Kinds a retry may cure, even without a status (an in-band error event).
_RETRYABLE_KINDS: Final = frozenset({"rate_limited", "overloaded", "timeout"})


class _Detail(msgspec.Struct, frozen=True):
    code: str | None = None
    message: str | None = None


class _Envelope(msgspec.Struct, frozen=True):
    error: _Detail


_decoder: Final = msgspec.json.Decoder(_Envelope)


def _kind(code: str | None, status: int | None) -> str:
    if code and code in CODE_KINDS:
        return CODE_KINDS[code]
    if status is None:
        return "provider"
    return "timeout" if status == 504 else status_kind(status)


def _finish(error: UpstreamError, kind: str, status: int | None) -> UpstreamError:
    if status is None:
        error.retryable = kind in _RETRYABLE_KINDS
    elif kind not in _RETRYABLE_KINDS and status < 500:
        error.retryable = False
    return error


def error_from_answer(
    status: int, headers: Mapping[str, str], body: bytes, redactor: Redactor
) -> UpstreamError:
    """The ``GatewayError`` for an HTTP answer with status >= 300."""
    text = redactor.redact(body.decode("utf-8", "replace"))
    try:
        detail: _Detail | None = _decoder.decode(body).error
    except (msgspec.DecodeError, msgspec.ValidationError):
        detail = None
    code = detail.code if detail is not None and detail.code else None
    message = redactor.redact(detail.message) if detail is not None and detail.message else None
    if message is None:
        excerpt = text.strip()[:200]
        message = f"gateway answered HTTP {status}" + (f": {excerpt}" if excerpt else "")
    kind = _kind(code, status)
    error = upstream_error(
        "gateway",
        kind,
        message,
        status=status,
        code=code or f"http_{status}",
        request_id=request_id_of(headers),
        retry_after=parse_retry_after(headers),
        raw_body=text,
    )
    return _finish(error, kind, status)


def error_from_event(
    code: str, message: str, headers: Mapping[str, str], redactor: Redactor
) -> UpstreamError:
    """The ``GatewayError`` for an in-band ``error`` event (the run failed mid-stream)."""
    kind = _kind(code, None)
    error = upstream_error(
        "gateway",
        kind,
        redactor.redact(message) or f"gateway stream failed ({code})",
        code=code or "execution",
        request_id=request_id_of(headers),
    )
    return _finish(error, kind, None)
