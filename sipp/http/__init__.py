"""Helpers that HTTP drivers share: SSE decoding, the pool, error mapping, redaction.

Public for third-party drivers (see ``docs/writing-a-provider-driver.md``).
Importing this package imports httpx, so the core never imports it; drivers
do, at ``add()`` time.
"""

from ._classify import (
    CODE_KINDS,
    MAX_ERROR_BODY,
    ErrorBody,
    build_error,
    classify_error,
    error_from_response,
    parse_error_body,
    parse_retry_after,
    request_id_of,
    status_kind,
)
from ._exchange import (
    DRAIN_MAX_BYTES,
    DRAIN_MAX_SECONDS,
    ErrorFactory,
    EventStream,
    open_event_stream,
    send_request,
)
from ._h1 import LeanTransport
from ._redact import REDACTED, SENSITIVE_HEADERS, Redactor, redact, redact_headers
from ._sse import MAX_EVENT_BYTES, SSEDecoder, SSEError, SSEEvent
from ._transport import (
    HttpTransport,
    build_json_post,
    create_http_client,
    inject_trace_context,
    is_loopback_host,
    map_httpx_errors,
    request_timeout,
    validate_base_url,
)

__all__ = [
    "CODE_KINDS",
    "DRAIN_MAX_BYTES",
    "DRAIN_MAX_SECONDS",
    "MAX_ERROR_BODY",
    "MAX_EVENT_BYTES",
    "REDACTED",
    "SENSITIVE_HEADERS",
    "ErrorBody",
    "ErrorFactory",
    "EventStream",
    "HttpTransport",
    "LeanTransport",
    "Redactor",
    "SSEDecoder",
    "SSEError",
    "SSEEvent",
    "build_error",
    "build_json_post",
    "classify_error",
    "create_http_client",
    "error_from_response",
    "inject_trace_context",
    "is_loopback_host",
    "map_httpx_errors",
    "open_event_stream",
    "parse_error_body",
    "parse_retry_after",
    "redact",
    "redact_headers",
    "request_id_of",
    "request_timeout",
    "send_request",
    "status_kind",
    "validate_base_url",
]
