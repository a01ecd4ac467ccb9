"""The OpenAI-compatible surface: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``.

``_decode`` and ``_encode`` are the sans-I/O codec; this module binds them
into the :class:`~sipp_gateway_server._surface.Operation` objects the
request path serves (``ROUTES``: path → operation) and the dialect that
reads ``Authorization: Bearer`` and writes OpenAI's error envelope.
``GET /v1/models`` is the gateway's own model list, already in OpenAI's
list shape (``_targets.Targets.describe``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from .._surface import Decoded, Failure, Operation
from ._decode import decode_chat, decode_completion, decode_embeddings
from ._encode import (
    ChatChunks,
    CompletionChunks,
    chat_body,
    completion_body,
    embeddings_body,
    error_body,
    error_event,
)

if TYPE_CHECKING:
    from sipp.gateway.asgi import Scope

    from .._surface_stream import StreamEncoder

__all__ = ["DIALECT", "ROUTES", "OpenAIDialect"]


class OpenAIDialect:
    def credentials(self, scope: Scope) -> bytes | None:
        for key, value in scope["headers"]:
            if key == b"authorization":
                return bytes(value)
        return None

    def error_body(self, failure: Failure) -> Any:
        return error_body(failure)

    def stream_error(self, failure: Failure) -> bytes:
        return error_event(failure)


class _Chat:
    route = "openai.chat"
    kind = "chat"

    def decode(self, body: Any) -> Decoded:
        return decode_chat(body)

    def answer(self, decoded: Decoded, result: Any, request_id: str) -> Any:
        return chat_body(decoded.details, result, request_id)

    def encoder(self, decoded: Decoded, request_id: str) -> StreamEncoder:
        return ChatChunks(decoded.details, request_id)


class _Completion:
    route = "openai.completions"
    kind = "query"

    def decode(self, body: Any) -> Decoded:
        return decode_completion(body)

    def answer(self, decoded: Decoded, result: Any, request_id: str) -> Any:
        return completion_body(decoded.details, result, request_id)

    def encoder(self, decoded: Decoded, request_id: str) -> StreamEncoder:
        return CompletionChunks(decoded.details, request_id)


class _Embeddings:
    route = "openai.embeddings"
    kind = "embed"

    def decode(self, body: Any) -> Decoded:
        return decode_embeddings(body)

    def answer(self, decoded: Decoded, result: Any, request_id: str) -> Any:
        return embeddings_body(decoded.details, result)

    def encoder(self, decoded: Decoded, request_id: str) -> StreamEncoder:
        raise AssertionError("embeddings never stream")


DIALECT: Final = OpenAIDialect()
ROUTES: Final[dict[str, Operation]] = {
    "/v1/chat/completions": _Chat(),
    "/v1/completions": _Completion(),
    "/v1/embeddings": _Embeddings(),
}
