"""The foreign API routes on the public listener: OpenAI's and Anthropic's paths.

Their paths are fixed (SDKs append them to a base URL), so they are not in
``[routes]``; a profile route configured onto one of them wins.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Final

from sipp.gateway import GatewayJSONResponse

from . import anthropic_api, openai_api
from ._surface import Failure

if TYPE_CHECKING:
    from sipp.gateway.asgi import Receive, Scope, Send

    from ._surface import Dialect, Operation, SurfacePath

__all__ = ["Surfaces"]

_MODEL: Final = "/v1/models/"


class Surfaces:
    def __init__(self, path: SurfacePath) -> None:
        self._path = path
        self._routes: dict[str, tuple[Dialect, Operation]] = {}
        for module in (openai_api, anthropic_api):
            for route, operation in module.ROUTES.items():
                self._routes[route] = (module.DIALECT, operation)

    def __contains__(self, path: object) -> bool:
        return path in self._routes or (isinstance(path, str) and path.startswith(_MODEL))

    def serve(self, path: str, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """The coroutine that answers ``path`` (returned, not awaited: a frame less per stream)."""
        if path.startswith(_MODEL):
            # OpenAI's models.retrieve: one entry of the gateway's (OpenAI-shaped) model list.
            name = path.removeprefix(_MODEL)
            if scope["method"] == "GET" and name and "/" not in name:
                return self._path.model(openai_api.DIALECT, name, scope, receive, send)
            failure = Failure(404, "not_found", f"no route {scope['method']} {path}")
            body = openai_api.DIALECT.error_body(failure)
            return GatewayJSONResponse(body, status=404)(scope, receive, send)
        dialect, operation = self._routes[path]
        if scope["method"] != "POST":
            failure = Failure(405, "method_not_allowed", f"no route {scope['method']} {path}")
            body = dialect.error_body(failure)
            return GatewayJSONResponse(body, status=405)(scope, receive, send)
        return self._path.serve(dialect, operation, scope, receive, send)
