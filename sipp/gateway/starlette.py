"""The Starlette/FastAPI adapter: the route helpers as real ``starlette`` responses.

Starlette routes may return the :mod:`sipp.gateway` response objects as they
are (they are ASGI applications); FastAPI insists on ``Response`` instances,
which is what these functions return. A complete FastAPI route::

    from sipp.gateway import decode_gateway_query_body, gateway_text_response_body
    from sipp.gateway.starlette import error_response, json_response, read_json, stream_response

    @app.post("/api/sipp/query")
    async def query(request: Request) -> Response:
        try:
            decoded = decode_gateway_query_body(await read_json(request))
            run = client.query(decoded.request, endpoint="model")
            if decoded.stream:
                return stream_response(run)
            return json_response(gateway_text_response_body(decoded.target, await run))
        except Exception as error:
            return error_response(error)

Importing this module imports Starlette; nothing else in :mod:`sipp` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from ._profile import parse_json_body
from ._responses import GatewayJSONResponse, gateway_error_response, gateway_json_response
from ._stream import GatewayStreamResponse, gateway_text_stream_response
from .asgi import DEFAULT_MAX_BODY_BYTES, payload_too_large

if TYPE_CHECKING:
    from .._handles import Run
    from ._asgi_types import Receive, Scope, Send

__all__ = ["GatewayResponse", "error_response", "json_response", "read_json", "stream_response"]


class GatewayResponse(Response):
    """A Starlette ``Response`` that delegates to a :mod:`sipp.gateway` ASGI response."""

    def __init__(self, inner: GatewayJSONResponse | GatewayStreamResponse) -> None:
        super().__init__(status_code=inner.status)
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.inner(scope, receive, send)
        if self.background is not None:
            await self.background()


async def read_json(request: Request, *, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Any:
    """The body parsed as the profile requires (``invalid_json``; 413 past ``max_bytes``)."""
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise payload_too_large(max_bytes)
        parts.append(chunk)
    return parse_json_body(b"".join(parts))


def json_response(body: Any, *, status: int = 200) -> GatewayResponse:
    """A profile JSON body (compact, raw UTF-8) with ``x-request-id``."""
    return GatewayResponse(gateway_json_response(body, status=status))


def stream_response(run: Run) -> GatewayResponse:
    """The run as the profile's SSE stream; the run is cancelled when the client leaves."""
    return GatewayResponse(gateway_text_stream_response(run))


def error_response(error: BaseException) -> GatewayResponse:
    """``error`` as the profile's error envelope and status (see ``gateway_error_response``)."""
    return GatewayResponse(gateway_error_response(error))
