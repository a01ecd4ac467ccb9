"""Server-side helpers for the gateway profile (the HTTP wire format of ``kind: "gateway"``).

A sans-I/O core (pure functions over dicts, bytes and events) with thin
adapters: every response object here is a plain ASGI application, and
:mod:`sipp.gateway.starlette` gives the same responses as Starlette/FastAPI
``Response`` objects. ``import sipp`` does not import this package.

* decoders: :func:`decode_gateway_query_body`, :func:`decode_gateway_chat_body`,
  :func:`decode_gateway_embed_body` (parsed JSON in, ``.target``/``.stream``/``.request`` out);
* bodies: :func:`gateway_text_response_body`, :func:`gateway_embedding_response_body`;
* streaming: :func:`gateway_text_stream_response` (SSE; cancels the run with
  ``client_disconnected`` when the client leaves);
* disconnects: :func:`run_unless_disconnected` (a watcher task, or the
  server's :data:`DISCONNECT_EXTENSION` callback where it offers one);
* errors: :class:`GatewayProfileError`, :func:`gateway_error_response`;
* the rich-chat extension (content parts, tool turns, ``tools``,
  ``tool_choice``, ``output_schema``, ``reasoning``, array embed ``input``;
  ``reasoning`` and ``tool_call`` SSE events) is handled by all of the above,
  and only requests that use it see any of it;
* wire codec: :func:`parse_json_body`, :func:`encode_json`, the SSE frame
  writers and :class:`GatewayEventReader` (used by the gateway client driver).
"""

from ._decode import (
    DecodedChat,
    DecodedEmbed,
    DecodedQuery,
    decode_gateway_chat_body,
    decode_gateway_embed_body,
    decode_gateway_query_body,
)
from ._disconnect import DISCONNECT_EXTENSION, run_unless_disconnected, watch_disconnect
from ._events import (
    GatewayDone,
    GatewayEvent,
    GatewayEventReader,
    GatewayReasoning,
    GatewayStreamError,
    GatewayStreamViolation,
    GatewayToken,
    GatewayToolCall,
    GatewayUsage,
    done_frame,
    error_frame,
    reasoning_frame,
    token_frame,
    tool_call_frame,
    usage_frame,
)
from ._profile import JS_WHITESPACE, GatewayProfileError, encode_json, parse_json_body
from ._responses import (
    GatewayJSONResponse,
    gateway_embedding_response_body,
    gateway_error_response,
    gateway_json_response,
    gateway_text_response_body,
    request_id_from_scope,
)
from ._stream import GatewayStreamResponse, gateway_text_stream_response
from .asgi import read_json_body

__all__ = [
    "DISCONNECT_EXTENSION",
    "JS_WHITESPACE",
    "DecodedChat",
    "DecodedEmbed",
    "DecodedQuery",
    "GatewayDone",
    "GatewayEvent",
    "GatewayEventReader",
    "GatewayJSONResponse",
    "GatewayProfileError",
    "GatewayStreamError",
    "GatewayStreamResponse",
    "GatewayReasoning",
    "GatewayStreamViolation",
    "GatewayToken",
    "GatewayToolCall",
    "GatewayUsage",
    "decode_gateway_chat_body",
    "decode_gateway_embed_body",
    "decode_gateway_query_body",
    "done_frame",
    "encode_json",
    "error_frame",
    "gateway_embedding_response_body",
    "gateway_error_response",
    "gateway_json_response",
    "gateway_text_response_body",
    "gateway_text_stream_response",
    "parse_json_body",
    "read_json_body",
    "reasoning_frame",
    "request_id_from_scope",
    "run_unless_disconnected",
    "token_frame",
    "tool_call_frame",
    "usage_frame",
    "watch_disconnect",
]
