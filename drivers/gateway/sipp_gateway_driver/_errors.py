"""A gateway's error answers as ``GatewayError``: the envelope's code and message, verbatim.

The profile's envelope is ``{"error": {"code", "message"}}``. The kind (the
``GatewayError`` subclass) comes from the profile's code when it has one the
table below knows, otherwise from the HTTP status; the retry hint and request
id come from the headers (``sipp.http`` helpers).

Only what means "try again" is retried: the codes ``rate_limited``,
``admission`` and ``upstream_timeout``, and the statuses 429, 503, 504, 529
(and 408). A 500 ``execution``, or a 5xx with a code nobody here knows, is a
plain failure (kind ``provider``), never ``overloaded``. A body that is not an
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
# The only kinds a retry may cure; nothing else is retried, whatever the status.
_RETRYABLE_KINDS: Final = frozenset({"rate_limited", "overloaded", "timeout"})
# Statuses that mean "try again" by themselves: 503 and 529 say the server is
# busy. Any other 5xx (500 ``execution``, 500 with a code this table does not
# know, 501, 502 from a refused credential, ...) is a failure, not a hint, and
# retrying it only repeats the failure and multiplies the wait.
_BUSY_STATUSES: Final = frozenset({503, 529})


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
    if status in _BUSY_STATUSES:
        return "overloaded"
    if status == 504:
        return "timeout"
    if status >= 500:
        return "provider"  # not "overloaded": an unknown failure is no reason to retry
    return status_kind(status)


def _finish(error: UpstreamError, kind: str) -> UpstreamError:
    # Decided here, for this driver only: the core's default retries every 5xx.
    error.retryable = kind in _RETRYABLE_KINDS
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
    return _finish(error, kind)


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
    return _finish(error, kind)
