"""The plain-ASGI adapter: read a profile body from ``receive``; no framework needed.

A complete route in a framework-free ASGI app::

    async def query_route(scope, receive, send):
        try:
            decoded = decode_gateway_query_body(await read_json_body(receive))
            run = client.query(decoded.request, endpoint="model")
            if decoded.stream:
                response = gateway_text_stream_response(run)
            else:
                body = gateway_text_response_body(decoded.target, await run)
                response = gateway_json_response(body)
        except Exception as error:
            response = gateway_error_response(error)
        await response(scope, receive, send)

Every response object of :mod:`sipp.gateway` is itself an ASGI application.
"""

from __future__ import annotations

from typing import Any, Final

from ._asgi_types import ASGIApp, Message, Receive, Scope, Send
from ._profile import GatewayProfileError, parse_json_body

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "ASGIApp",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "payload_too_large",
    "read_json_body",
]

#: The profile servers' default request size limit (1 MiB).
DEFAULT_MAX_BODY_BYTES: Final = 1024 * 1024


def payload_too_large(limit: int) -> GatewayProfileError:
    return GatewayProfileError(
        "payload_too_large", f"gateway request body exceeds {limit} bytes", status=413
    )


async def read_json_body(receive: Receive, *, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Any:
    """Read the whole request body from ``receive`` and parse it as JSON.

    Raises :class:`GatewayProfileError`: 400 ``invalid_json`` when it is not
    JSON, 413 ``payload_too_large`` past ``max_bytes`` (checked as the bytes
    arrive, so a huge body is never held in memory).
    """
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise GatewayProfileError(
                "client_disconnected", "client disconnected before sending its body", status=499
            )
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > max_bytes:
                raise payload_too_large(max_bytes)
            parts.append(chunk)
        if not message.get("more_body", False):
            break
    return parse_json_body(b"".join(parts))
