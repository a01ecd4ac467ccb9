"""echo-cloud's wire format: the request body and the streamed events.

``POST {base_url}/generate`` takes a JSON :class:`Body` and answers with
server-sent events, each holding one :class:`Event` (tagged by ``type``), in
the model's order, ending with ``done``. An error before the stream is an
HTTP status with ``{"error": {"code", "message"}}``; one during it is an
``error`` event.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

__all__ = [
    "Body",
    "Done",
    "Event",
    "Failure",
    "Message",
    "Text",
    "Thinking",
    "Tool",
    "ToolCall",
    "ToolPiece",
    "decode_event",
    "encode_body",
]


class ToolCall(msgspec.Struct, frozen=True):
    id: str
    name: str
    arguments: str


class Message(msgspec.Struct, frozen=True, omit_defaults=True):
    role: str
    content: str
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None


class Tool(msgspec.Struct, frozen=True):
    name: str
    description: str
    parameters: dict[str, Any]


class Body(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    # omit_defaults: a field the caller left unset is not sent at all.
    model: str
    messages: list[Message]
    max_tokens: int | None = None
    temperature: float | None = None
    tools: list[Tool] | None = None
    tool_choice: str | None = None
    think: Literal["low", "medium", "high"] | None = None
    # echo-cloud's own options (``EchoCloudOptions``).
    top_k: int | None = None
    safe_mode: bool = False


class Text(msgspec.Struct, frozen=True, tag="text", tag_field="type"):
    text: str


class Thinking(msgspec.Struct, frozen=True, tag="thinking", tag_field="type"):
    text: str


class ToolPiece(msgspec.Struct, frozen=True, tag="tool_call", tag_field="type"):
    """A piece of tool call ``index``: ``id`` and ``name`` come with its first piece."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class Done(msgspec.Struct, frozen=True, tag="done", tag_field="type"):
    finish: Literal["stop", "length", "tool_calls"] = "stop"
    id: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    region: str | None = None
    queue_ms: int | None = None


class Failure(msgspec.Struct, frozen=True, tag="error", tag_field="type"):
    code: str | None = None
    message: str | None = None


Event = Text | Thinking | ToolPiece | Done | Failure

# Built once: a typed decoder reads only these fields and checks them as it goes.
encode_body: Final = msgspec.json.Encoder().encode
decode_event: Final = msgspec.json.Decoder(Event).decode
