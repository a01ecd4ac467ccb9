"""Decoding the profile's request bodies into requests ``SippClient`` accepts as is.

Each decoder takes the *parsed* JSON value (what ``json.loads`` or
:func:`sipp.gateway.parse_json_body` returned) and either returns a
``Decoded*`` value or raises :class:`GatewayProfileError` with the exact
message the profile prescribes. Fields are checked in the same order as the
original implementation, so a body with several faults gets the same message
from every implementation.

Pass-through keys (anything the profile does not type) become the request's
``options`` (the gateway driver's ``endpoint_options``). The rich-chat
extension's fields (content parts, tool turns, ``tools``, ``tool_choice``,
``output_schema``, ``reasoning``, an array ``input``) are decoded by
:mod:`._decode_rich`; a body without them decodes exactly as before.

One exception to pass-through: an integer ``seed``, which this SDK types, is
decoded into the typed ``seed`` field so the request is accepted by every kind
of endpoint and re-encoded to the same bytes.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from .._chat import ChatMessage
from .._models import ChatRequest, EmbedRequest, QueryRequest
from ._decode_rich import (
    RICH_TEXT_KEYS,
    check_json_compatible,
    decode_embed_inputs,
    decode_message,
    decode_rich_fields,
)
from ._profile import finite_number, invalid_request, is_blank

__all__ = [
    "DecodedChat",
    "DecodedEmbed",
    "DecodedQuery",
    "decode_gateway_chat_body",
    "decode_gateway_embed_body",
    "decode_gateway_query_body",
]

_TEXT_TYPED: Final = (
    frozenset({"model", "prompt", "messages", "max_tokens", "temperature", "top_p", "stop"})
    | frozenset({"stream"})
    | RICH_TEXT_KEYS
)
_EMBED_TYPED: Final = frozenset({"model", "input"})
_U32_MAX: Final = 0xFFFFFFFF


class DecodedQuery(msgspec.Struct, frozen=True, kw_only=True):
    """A decoded query body: the public ``target``, whether to ``stream``, the ``request``."""

    target: str
    stream: bool
    request: QueryRequest


class DecodedChat(msgspec.Struct, frozen=True, kw_only=True):
    target: str
    stream: bool
    request: ChatRequest


class DecodedEmbed(msgspec.Struct, frozen=True, kw_only=True):
    target: str
    stream: bool
    request: EmbedRequest

    @property
    def batch(self) -> bool:
        """Whether ``input`` was an array: answer with ``embeddings`` (pass it as ``batch=``)."""
        return isinstance(self.request.input, list)


def _object(value: object) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise invalid_request("gateway request body must be a JSON object")
    return value


def _required_string(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or is_blank(value):
        raise invalid_request(f"{key} is required")
    return value


def _stream_flag(value: object) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid_request("stream must be a boolean")
    return value


def _max_tokens(value: object) -> int | None:
    if value is None:
        return None
    number = finite_number(value)
    if number is None or not number.is_integer() or not 1 <= number <= _U32_MAX:
        raise invalid_request("max_tokens must be a positive u32 integer")
    return int(number) if isinstance(value, float) else value  # type: ignore[return-value]


def _finite(value: object, key: str) -> float | None:
    if value is None:
        return None
    if finite_number(value) is None:
        raise invalid_request(f"{key} must be finite")
    return value  # type: ignore[return-value]  # the number as sent: 1 stays 1


def _temperature(value: object) -> float | None:
    temperature = _finite(value, "temperature")
    if temperature is not None and temperature < 0:
        raise invalid_request("temperature must be greater than or equal to zero")
    return temperature


def _top_p(value: object) -> float | None:
    top_p = _finite(value, "top_p")
    if top_p is not None and not 0 <= top_p <= 1:
        raise invalid_request("top_p must be between 0 and 1")
    return top_p


def _stop(value: object) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid_request("stop must be an array of strings")
    return list(value)


def _pass_through(body: dict[str, Any], typed: frozenset[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for key, value in body.items():
        if key not in typed:
            check_json_compatible(value, key)
            options[key] = value
    return options


def _seed(options: dict[str, Any]) -> int | None:
    value = options.get("seed")
    number = finite_number(value)
    if number is None or not number.is_integer():
        return None
    del options["seed"]
    return int(number)


def _text_fields(body: dict[str, Any], stream: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "max_tokens": _max_tokens(body.get("max_tokens")),
        "temperature": _temperature(body.get("temperature")),
        "top_p": _top_p(body.get("top_p")),
        "stop": _stop(body.get("stop")),
    }
    fields.update(decode_rich_fields(body))
    options = _pass_through(body, _TEXT_TYPED)
    fields["seed"] = _seed(options)
    fields["options"] = options or None
    fields["emit_tokens"] = stream
    return fields


def decode_gateway_query_body(body: object) -> DecodedQuery:
    """Decode a parsed ``POST /v1/query`` body; raise ``GatewayProfileError`` (400) when invalid."""
    value = _object(body)
    target = _required_string(value, "model")
    prompt = _required_string(value, "prompt")
    stream = _stream_flag(value.get("stream"))
    request = QueryRequest(prompt=prompt, **_text_fields(value, stream))
    return DecodedQuery(target=target, stream=stream, request=request)


def _messages(value: object) -> list[ChatMessage]:
    if not isinstance(value, list) or not value:
        raise invalid_request("messages are required")
    return [decode_message(_object(item)) for item in value]


def decode_gateway_chat_body(body: object) -> DecodedChat:
    """Decode a parsed ``POST /v1/chat`` body; raise ``GatewayProfileError`` (400) when invalid."""
    value = _object(body)
    target = _required_string(value, "model")
    stream = _stream_flag(value.get("stream"))
    messages = _messages(value.get("messages"))
    request = ChatRequest(messages=messages, **_text_fields(value, stream))
    return DecodedChat(target=target, stream=stream, request=request)


def decode_gateway_embed_body(body: object) -> DecodedEmbed:
    """Decode a parsed ``POST /v1/embed`` body. ``stream`` is not typed here: it passes through."""
    value = _object(body)
    target = _required_string(value, "model")
    inputs = decode_embed_inputs(value.get("input"))
    options = _pass_through(value, _EMBED_TYPED)
    request = EmbedRequest(input=inputs, options=options or None)
    return DecodedEmbed(target=target, stream=False, request=request)
