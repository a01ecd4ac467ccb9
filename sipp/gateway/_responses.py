"""Response bodies and the error envelope, and a tiny ASGI response for them.

``gateway_text_response_body`` / ``gateway_embedding_response_body`` build the
profile's JSON bodies; ``gateway_error_response`` turns *any* exception into
the profile's error envelope and HTTP status:

* the profile's own :class:`GatewayProfileError`, and any exception with a
  non-empty string ``code`` (every ``SippError``): that code, its ``status``
  when it is an int in 400..599 (else 500), its message (or ``gateway request
  failed`` when empty);
* an upstream's failure (``UpstreamError``, from a provider or another
  gateway) is reported under the profile's codes, never the upstream's own:
  its rate limit is 429 ``rate_limited`` with ``Retry-After``, its timeout 504
  ``upstream_timeout``, a request the caller can fix 4xx ``invalid_request``
  (or ``context_length_exceeded`` / ``unsupported_feature``), everything else
  ``execution`` (the upstream's 5xx status kept; 502 when the upstream refused
  *this server's* credentials, quota or model name, which is not the caller's
  fault). The message is the upstream's (drivers redact secrets out of it);
  its request id rides along as ``upstream_request_id``;
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

from .._chat import ToolCall, ToolCallDelta
from .._errors import TimeoutError, UpstreamError
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
    "tool_call_body",
]

logger = logging.getLogger("sipp.gateway")

_FALLBACK_MESSAGE: Final = "gateway request failed"
_SAFE_ID: Final = re.compile(r"[^A-Za-z0-9._:-]")
_MAX_ID_LENGTH: Final = 128


_USAGE_FIELDS: Final = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    # The rich-chat extension: written only when known, so plain answers keep their bytes.
    "reasoning_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
)


def _usage(usage: Usage) -> dict[str, int] | None:
    fields = {}
    for name in _USAGE_FIELDS:
        value = getattr(usage, name)
        if value is not None:
            fields[name] = value
    return fields or None


def tool_call_body(call: ToolCall | ToolCallDelta) -> dict[str, Any]:
    """A tool call as the extension writes it (``index`` only on a streamed delta)."""
    if isinstance(call, ToolCallDelta):
        # ``id`` and ``name`` come with a call's first piece only; later pieces leave them out.
        body: dict[str, Any] = {"index": call.index}
        if call.id is not None:
            body["id"] = call.id
        if call.name is not None:
            body["name"] = call.name
        body["arguments"] = call.arguments
        return body
    return {"id": call.id, "name": call.name, "arguments": call.arguments}


def gateway_text_response_body(target: str, response: TextResponse) -> dict[str, Any]:
    """The profile's JSON body for a finished query or chat; ``model`` echoes ``target``."""
    body: dict[str, Any] = {
        "id": response.id if response.id is not None else "response",
        "model": target,
        "text": response.text,
    }
    # The extension's fields appear only when the run produced them.
    if response.reasoning is not None:
        body["reasoning"] = response.reasoning
    if response.tool_calls:
        body["tool_calls"] = [tool_call_body(call) for call in response.tool_calls]
    body["finish_reason"] = response.finish_reason
    usage = _usage(response.usage)
    if usage is not None:
        body["usage"] = usage
    return body


def gateway_embedding_response_body(
    target: str, response: EmbeddingResponse, *, batch: bool | None = None
) -> dict[str, Any]:
    """The profile's JSON body for an embedding.

    An array ``input`` (the extension) is answered with ``embeddings``, one
    vector per input; a string with ``embedding``. Pass ``batch=decoded.batch``
    so a one-element array gets ``embeddings`` too; left ``None``, more than
    one vector means an array.
    """
    body: dict[str, Any] = {
        "id": response.id if response.id is not None else "response",
        "model": target,
    }
    if batch is None:
        batch = len(response.vectors) > 1
    if batch:
        body["embeddings"] = response.vectors or [response.values]
    else:
        body["embedding"] = response.values
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


#: Upstream kinds the *caller* can fix: reported as a 4xx under a code clients know.
_CALLER_KINDS: Final[dict[str, str]] = {
    "invalid_request": "invalid_request",
    "context_length_exceeded": "context_length_exceeded",
    "unsupported_feature": "unsupported_feature",
}


def _upstream(error: UpstreamError, message: str) -> tuple[int, str, str, float | None]:
    """An upstream's failure under the profile's codes, whatever code the upstream used.

    A provider's own code (``server_error``, ``overloaded_error``, ...) never
    reaches the caller: clients act on the profile's codes. The status is the
    upstream's when it says the same thing (a 503 stays 503, so clients that
    retry on it still do), else the profile's.
    """
    kind, status = error.kind, error.upstream_status
    if kind == "rate_limited" or status == 429:
        code = "admission" if error.code == "admission" else "rate_limited"
        return 429, code, message, error.retry_after
    if kind == "timeout" or status in (408, 504):
        return 504, "upstream_timeout", message, None
    if kind in _CALLER_KINDS:
        caller_status = status if status is not None and 400 <= status < 500 else 400
        return caller_status, _CALLER_KINDS[kind], message, None
    if kind == "overloaded":
        return (status if status is not None and status >= 500 else 503), "execution", message, None
    if kind == "provider" and status is not None and status >= 500:
        return status if status <= 599 else 500, "execution", message, None
    # The server's own credentials, quota or model mapping failed upstream (or an
    # unclassified 4xx): the caller's request is not at fault, the server is.
    return 502, "execution", message, None


def _classify(error: BaseException) -> tuple[int, str, str, float | None]:
    """``(status, code, message, retry_after)`` for ``error``; ``code == ''`` marks a bug."""
    code = getattr(error, "code", None)
    if not isinstance(code, str) or not code:
        return 500, "", _FALLBACK_MESSAGE, None
    message = _message(error)
    if isinstance(error, UpstreamError):
        return _upstream(error, message)
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
    envelope: dict[str, Any] = {"code": code, "message": message}
    upstream_id = getattr(error, "request_id", None)
    if isinstance(error, UpstreamError) and isinstance(upstream_id, str) and upstream_id:
        # The upstream's own request id, so an operator can find the failure in its logs.
        envelope["upstream_request_id"] = _SAFE_ID.sub("", upstream_id)[:_MAX_ID_LENGTH]
    return GatewayJSONResponse({"error": envelope}, status=status, headers=headers)
