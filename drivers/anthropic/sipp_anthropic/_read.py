"""Reading an answer, whole or streamed, into the core's ``emit*`` calls.

Content blocks map the same way in both shapes, in the model's order:

* ``text`` → ``call.emit``;
* ``thinking`` → ``call.emit_reasoning`` (its ``signature`` is kept, not emitted);
* ``tool_use`` → ``call.emit_tool_call``, numbered by the order of the
  tool_use blocks (Anthropic's event ``index`` counts every block, text and
  thinking included, so it cannot be used as the call's index). A stream
  gives ``id`` and ``name`` on ``content_block_start`` and the arguments as
  ``input_json_delta`` pieces, each emitted as it comes; a whole answer's
  call is emitted once, its ``input`` as the model's raw JSON;
* ``redacted_thinking`` → nothing to show; kept to echo back;
* server tool blocks and block types this version does not know: skipped.

A turn that asked for tools leaves its thinking blocks in the endpoint's
``ThinkingMemory`` (see ``_echo``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgspec

from sipp import ProtocolError, SippError
from sipp.driver import Call, TextResult
from sipp.http import EventStream

from ._echo import ThinkingMemory, thinking_block
from ._wire import ErrorDetail, Event, Message, WireUsage, finish_of, merge_usage, usage_of

__all__ = ["read_message", "read_stream"]

_events: Final = msgspec.json.Decoder(Event)
_message: Final = msgspec.json.Decoder(Message)

#: Builds the error for an in-band ``error`` event (its detail and raw data).
InBandError = Callable[[ErrorDetail | None, str], SippError]


async def read_message(raw: bytes, call: Call, memory: ThinkingMemory) -> TextResult:
    """A non-streaming answer: every block emitted once, in order."""
    try:
        message = _message.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ProtocolError(f"anthropic: malformed answer: {exc}") from exc
    if message.content is None:
        raise ProtocolError("anthropic: the answer holds no content")
    usage = usage_of(message.usage)
    # The whole answer's tokens are counted once, on its first text block.
    frames = usage.output_tokens or 1
    thinking: list[dict[str, Any]] = []
    first_tool: str | None = None
    tools = 0
    for block in message.content:
        kind = block.type
        if kind == "text":
            if block.text:
                await call.emit(block.text, frames)
                frames = 1
        elif kind == "thinking":
            if block.thinking:
                await call.emit_reasoning(block.thinking)
            thinking.append(thinking_block(block.thinking or "", block.signature))
        elif kind == "redacted_thinking":
            thinking.append({"type": "redacted_thinking", "data": block.data or ""})
        elif kind == "tool_use":
            if not block.id or not block.name:
                raise ProtocolError("anthropic: a tool_use block without its id or name")
            arguments = bytes(block.input).decode() or "{}"
            await call.emit_tool_call(tools, id=block.id, name=block.name, arguments=arguments)
            tools += 1
            first_tool = first_tool or block.id
    if first_tool is not None:
        memory.remember(first_tool, thinking)
    return TextResult(
        finish_reason=finish_of(message.stop_reason), usage=usage, response_id=message.id
    )


async def read_stream(
    events: EventStream, call: Call, memory: ThinkingMemory, in_band: InBandError
) -> TextResult:
    """A streamed answer, emitted event by event until ``message_stop``."""
    emit = call.emit
    decode = _events.decode
    usage: WireUsage | None = None
    stop_reason: str | None = None
    response_id: str | None = None
    stopped = False
    # Block index -> tool call index, for the input_json_delta pieces.
    tool_of_block: dict[int, int] = {}
    tools = 0
    first_tool: str | None = None
    # Block index -> a thinking block being read, or a redacted one (complete at start).
    thinking: dict[int, _Thinking | dict[str, Any]] = {}
    async for batch in events:
        for sse in batch:
            try:
                event = decode(sse.data)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise ProtocolError(f"anthropic: malformed stream event: {exc}") from exc
            kind = event.type
            if kind == "content_block_delta":
                delta = event.delta
                if delta is None:
                    continue
                dtype = delta.type
                # Text first: it is nearly every event of a plain answer.
                if dtype == "text_delta":
                    if delta.text:
                        await emit(delta.text)
                elif dtype == "input_json_delta":
                    if delta.partial_json:
                        tool = tool_of_block.get(event.index)
                        if tool is None:
                            raise ProtocolError("anthropic: input_json_delta outside a tool_use")
                        await call.emit_tool_call(tool, arguments=delta.partial_json)
                elif dtype == "thinking_delta":
                    if delta.thinking:
                        await call.emit_reasoning(delta.thinking)
                        record = thinking.get(event.index)
                        if isinstance(record, _Thinking):
                            record.pieces.append(delta.thinking)
                elif dtype == "signature_delta":
                    record = thinking.get(event.index)
                    if isinstance(record, _Thinking):
                        record.signature = delta.signature
            elif kind == "content_block_start":
                block = event.content_block
                if block is None or event.index < 0:
                    raise ProtocolError("anthropic: content_block_start without its block")
                btype = block.type
                if btype == "text":
                    if block.text:
                        await emit(block.text)
                elif btype == "tool_use":
                    if not block.id or not block.name:
                        raise ProtocolError("anthropic: a tool_use block without its id or name")
                    tool = tool_of_block[event.index] = tools
                    tools += 1
                    first_tool = first_tool or block.id
                    await call.emit_tool_call(tool, id=block.id, name=block.name)
                elif btype == "thinking":
                    thinking[event.index] = _Thinking(block.thinking, block.signature)
                    if block.thinking:
                        await call.emit_reasoning(block.thinking)
                elif btype == "redacted_thinking":
                    thinking[event.index] = {"type": "redacted_thinking", "data": block.data or ""}
            elif kind == "message_start":
                if event.message is not None:
                    response_id = event.message.id
                    usage = merge_usage(usage, event.message.usage)
            elif kind == "message_delta":
                if event.delta is not None and event.delta.stop_reason is not None:
                    stop_reason = event.delta.stop_reason
                usage = merge_usage(usage, event.usage)
            elif kind == "message_stop":
                stopped = True
                break
            elif kind == "error":
                raise in_band(event.error, sse.data)
            # ping, content_block_stop and future event types: nothing to do
        if stopped:
            break
    if not stopped:
        raise ProtocolError("anthropic: the stream ended without message_stop")
    if first_tool is not None and thinking:
        memory.remember(first_tool, [_finished(thinking[i]) for i in sorted(thinking)])
    return TextResult(
        finish_reason=finish_of(stop_reason), usage=usage_of(usage), response_id=response_id
    )


class _Thinking:
    """A streamed thinking block: its text pieces and, once sent, its signature."""

    __slots__ = ("pieces", "signature")

    def __init__(self, first: str | None, signature: str | None) -> None:
        self.pieces = [first] if first else []
        self.signature = signature


def _finished(record: _Thinking | dict[str, Any]) -> dict[str, Any]:
    if isinstance(record, dict):
        return record
    return thinking_block("".join(record.pieces), record.signature)
