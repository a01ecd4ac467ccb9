"""The Anthropic-compatible surface: ``POST /v1/messages``.

``_decode`` and ``_encode`` are the sans-I/O codec; this module binds them
into the operation the request path serves and the dialect: the token comes
in ``x-api-key`` (what the Anthropic SDKs send) or ``Authorization: Bearer``,
checked against the gateway's same tokens; errors use Anthropic's envelope.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from .._surface import Decoded, Failure, Operation
from ._decode import decode_messages
from ._encode import MessageEvents, error_body, error_event, message_body

if TYPE_CHECKING:
    from sipp.gateway.asgi import Scope

    from .._surface_stream import StreamEncoder

__all__ = ["DIALECT", "ROUTES", "AnthropicDialect"]


class AnthropicDialect:
    def credentials(self, scope: Scope) -> bytes | None:
        authorization = None
        for key, value in scope["headers"]:
            if key == b"x-api-key":
                return b"Bearer " + bytes(value).strip()
            if key == b"authorization":
                authorization = bytes(value)
        return authorization

    def error_body(self, failure: Failure) -> Any:
        return error_body(failure)

    def stream_error(self, failure: Failure) -> bytes:
        return error_event(failure)


class _Messages:
    route = "anthropic.messages"
    kind = "chat"

    def decode(self, body: Any) -> Decoded:
        return decode_messages(body)

    def answer(self, decoded: Decoded, result: Any, request_id: str) -> Any:
        return message_body(decoded.details, result, request_id)

    def encoder(self, decoded: Decoded, request_id: str) -> StreamEncoder:
        return MessageEvents(decoded.details, request_id)


DIALECT: Final = AnthropicDialect()
ROUTES: Final[dict[str, Operation]] = {"/v1/messages": _Messages()}
