"""Response bodies and the error envelope, and a tiny ASGI response for them.

``gateway_text_response_body`` / ``gateway_embedding_response_body`` build the
profile's JSON bodies; ``gateway_error_response`` turns *any* exception into
the profile's error envelope and HTTP status:

* the profile's own :class:`GatewayProfileError`, and any exception with a
  non-empty string ``code`` (every ``SippError``): that code, its ``status``
  when it is an int in 400..599 (else 500), its message (or ``gateway request
  failed`` when empty);
* an upstream's rate limit becomes 429 ``rate_limited`` with ``Retry-After``,
  an upstream timeout 504 ``upstream_timeout``; a provider refusing *this
  server's* credentials is the server's fault, not the caller's: 502
  ``execution``;
* anything else is a bug: 500 ``internal``, ``gateway request failed``; its
  text may hold internals, so it is logged, never sent.

The returned :class:`GatewayJSONResponse` is plain data (``status``, ``body``,
``headers``) and also an ASGI application, so a framework-free app can
``await response(scope, receive, send)``.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping
from typing import Any, Final

from .._errors import ProviderError, TimeoutError, UpstreamError
from .._models import EmbeddingResponse, TextResponse, Usage
from ._asgi_types import Receive, Scope, Send
from ._profile import encode_json

__all__ = [
    "GatewayJSONResponse",
    "gateway_embedding_response_body",
    "gateway_error_response",
    "gateway_json_response",
    "gateway_text_response_body",
    "request_id_from_scope",
]

logger = logging.getLogger("sipp.gateway")

_FALLBACK_MESSAGE: Final = "gateway request failed"
_SAFE_ID: Final = re.compile(r"[^A-Za-z0-9._:-]")
_MAX_ID_LENGTH: Final = 128
_SERVER_CREDENTIAL_KINDS: Final = frozenset({"authentication", "authorization"})


def _usage(usage: Usage) -> dict[str, int] | None:
    fields = {
        name: value
        for name, value in (
            ("input_tokens", usage.input_tokens),
            ("output_tokens", usage.output_tokens),
            ("total_tokens", usage.total_tokens),
        )
        if value is not None
    }
    return fields or None


def gateway_text_response_body(target: str, response: TextResponse) -> dict[str, Any]:
    """The profile's JSON body for a finished query or chat; ``model`` echoes ``target``."""
    body: dict[str, Any] = {
        "id": response.id if response.id is not None else "response",
        "model": target,
        "text": response.text,
        "finish_reason": response.finish_reason,
    }
    usage = _usage(response.usage)
    if usage is not None:
        body["usage"] = usage
    return body


def gateway_embedding_response_body(target: str, response: EmbeddingResponse) -> dict[str, Any]:
    """The profile's JSON body for an embedding."""
    body: dict[str, Any] = {
        "id": response.id if response.id is not None else "response",
        "model": target,
        "embedding": response.values,
    }
    usage = _usage(response.usage)
    if usage is not None:
        body["usage"] = usage
    return body


def request_id_from_scope(scope: Scope) -> str:
    """The inbound ``x-request-id`` (sanitised, at most 128 characters), or a new one."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"x-request-id":
            cleaned = _SAFE_ID.sub("", value.decode("latin-1"))[:_MAX_ID_LENGTH]
            if cleaned:
                return cleaned
    return "req_" + os.urandom(12).hex()


class GatewayJSONResponse:
    """A JSON response: ``status``, ``body`` (a dict), ``headers``; also an ASGI app."""

    __slots__ = ("body", "headers", "status")

    def __init__(
        self, body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        self.body = body
        self.status = status
        self.headers: dict[str, str] = dict(headers or {})

    def render(self) -> bytes:
        return encode_json(self.body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        content = self.render()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(content)),
        ]
        for name, value in self.headers.items():
            headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        if "x-request-id" not in {k.lower() for k in self.headers}:
            headers.append((b"x-request-id", request_id_from_scope(scope).encode("latin-1")))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    def __repr__(self) -> str:
        return f"GatewayJSONResponse(status={self.status}, body={self.body!r})"


def gateway_json_response(
    body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> GatewayJSONResponse:
    """Wrap a profile body (``gateway_text_response_body(...)``) as an ASGI response."""
    return GatewayJSONResponse(body, status=status, headers=headers)


def _status(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 400 <= value <= 599:
        return value
    return 500


def _message(error: BaseException) -> str:
    args = error.args
    text = str(args[0]) if len(args) == 1 else str(error)
    return text or _FALLBACK_MESSAGE


def _classify(error: BaseException) -> tuple[int, str, str, float | None]:
    """``(status, code, message, retry_after)`` for ``error``; ``code == ''`` marks a bug."""
    code = getattr(error, "code", None)
    if not isinstance(code, str) or not code:
        return 500, "", _FALLBACK_MESSAGE, None
    message = _message(error)
    if isinstance(error, UpstreamError):
        if error.kind == "rate_limited" or error.upstream_status == 429:
            code = "admission" if error.code == "admission" else "rate_limited"
            return 429, code, message, error.retry_after
        if error.kind == "timeout" or error.upstream_status in (408, 504):
            return 504, "upstream_timeout", message, None
        if isinstance(error, ProviderError) and error.kind in _SERVER_CREDENTIAL_KINDS:
            return 502, "execution", message, None
    if isinstance(error, TimeoutError):
        return 504, "upstream_timeout", message, None
    return _status(getattr(error, "status", None)), code, message, None


def gateway_error_response(error: BaseException) -> GatewayJSONResponse:
    """The profile's error envelope and status for ``error`` (see the module docstring)."""
    status, code, message, retry_after = _classify(error)
    if not code:
        # An unexpected exception: its text may hold internals. Log it here, send nothing of it.
        logger.error("gateway request failed", exc_info=error)
        code = "internal"
    headers: dict[str, str] = {}
    if status == 429:
        seconds = retry_after if retry_after is not None and math.isfinite(retry_after) else 1.0
        headers["retry-after"] = str(max(0, math.ceil(seconds)))
    return GatewayJSONResponse(
        {"error": {"code": code, "message": message}}, status=status, headers=headers
    )
