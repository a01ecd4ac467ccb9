"""CORS for the public listener: only the configured origins, and only when some are.

With ``allowed_origins = []`` (the default) no CORS header is ever sent, so
browsers on other origins cannot read answers. A listed origin (or ``*``)
gets ``Access-Control-Allow-Origin`` echoing it, ``Vary: Origin``, and the
headers a client reads (``x-request-id``, ``retry-after``) exposed. Preflight
(``OPTIONS``) is answered without authentication, as browsers send it
without credentials.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from sipp.gateway.asgi import Scope, Send

__all__ = ["Cors"]

_EXPOSE: Final = b"x-request-id, retry-after"
_ALLOW_HEADERS: Final = b"authorization, content-type, x-request-id"
_ALLOW_METHODS: Final = b"GET, POST, OPTIONS"


class Cors:
    def __init__(self, origins: Sequence[str]) -> None:
        self._any = "*" in origins
        self._origins = frozenset(o.encode("latin-1") for o in origins if o != "*")
        self.enabled = bool(origins)

    def allowed(self, scope: Scope) -> bytes | None:
        if not self.enabled:
            return None
        for key, value in scope["headers"]:
            if key == b"origin":
                return bytes(value) if self._any or value in self._origins else None
        return None

    def wrap(self, scope: Scope, send: Send) -> Send:
        origin = self.allowed(scope)
        if origin is None:
            return send
        extra = [
            (b"access-control-allow-origin", origin),
            (b"access-control-expose-headers", _EXPOSE),
            (b"vary", b"origin"),
        ]

        async def send_with_cors(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        return send_with_cors

    async def preflight(self, scope: Scope, send: Send) -> None:
        headers = [(b"content-length", b"0")]
        if self.allowed(scope) is not None:
            headers += [
                (b"access-control-allow-methods", _ALLOW_METHODS),
                (b"access-control-allow-headers", _ALLOW_HEADERS),
                (b"access-control-max-age", b"600"),
            ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
