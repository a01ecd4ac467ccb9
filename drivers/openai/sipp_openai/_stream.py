"""Reading a streamed answer: SSE chunks in, ``call.emit*`` out, in the model's order.

The plain-text path is the hot one (quality.md: CPU per token no worse than a
bare httpx + SSE loop), so the chat loop keeps to local names and reads the
rarer delta members (reasoning, tool calls) with one attribute test each;
tool-call bookkeeping lives in ``_ToolPieces``, created on the first piece.

Tool calls arrive as ``delta.tool_calls[i]`` pieces: the first piece of call
``index`` carries ``id`` and ``function.name``, later ones more of
``function.arguments``. Some servers repeat ``id`` and ``name`` on every
piece (llama-cpp-python's), omit ``index``, or also send the legacy
``function_call``: each call's ``id`` and ``name`` are emitted once, a missing
``index`` is the position in the list, and ``function_call`` is read only
from a stream that has sent no ``tool_calls``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgspec

from sipp import ProtocolError, SippError
from sipp.driver import Call, TextResult
from sipp.http import EventStream, parse_error_body, request_id_of

from ._wire import (
    ChatChunk,
    CompletionChunk,
    ToolCallPiece,
    WireError,
    arguments_text,
    finish_of,
    usage_of,
)

__all__ = ["InBand", "ToolPieces", "read_chat_stream", "read_completion_stream"]

#: Builds the error for an in-band ``error`` chunk: (the error, the upstream request id).
InBand = Callable[[WireError | str, str | None], SippError]

_chat_chunks: Final = msgspec.json.Decoder(ChatChunk)
_completion_chunks: Final = msgspec.json.Decoder(CompletionChunk)


class ToolPieces:
    """Hands tool-call pieces to ``call.emit_tool_call``, naming each call once."""

    __slots__ = ("_call", "_named", "_with_id", "modern")

    def __init__(self, call: Call) -> None:
        self._call = call
        self._with_id: set[int] = set()
        self._named: set[int] = set()
        #: Whether any ``tool_calls`` came (then ``function_call`` is ignored).
        self.modern = False

    @property
    def called(self) -> bool:
        return bool(self._named or self._with_id)

    async def feed(self, pieces: list[ToolCallPiece] | None, legacy: Any) -> None:
        if pieces:
            self.modern = True
            for position, piece in enumerate(pieces):
                index = piece.index if piece.index is not None else position
                function = piece.function
                if function is None:
                    await self.emit(index, piece.id, None, "")
                else:
                    await self.emit(
                        index, piece.id, function.name, arguments_text(function.arguments)
                    )
        elif legacy is not None and not self.modern:
            await self.emit(0, None, legacy.name, arguments_text(legacy.arguments))

    async def emit(self, index: int, id: str | None, name: str | None, arguments: str) -> None:
        if id:
            if index in self._with_id:
                id = None
            else:
                self._with_id.add(index)
        if name:
            if index in self._named:
                name = None
            else:
                self._named.add(index)
        if id or name or arguments:
            await self._call.emit_tool_call(
                index, id=id or None, name=name or None, arguments=arguments
            )


def _malformed(upstream: str, exc: Exception) -> ProtocolError:
    return ProtocolError(f"{upstream}: malformed stream chunk: {exc}")


def _unfinished(upstream: str, done: bool) -> ProtocolError:
    ending = "[DONE] before any finish_reason" if done else "its end"
    return ProtocolError(f"{upstream}: the stream reached {ending} without finishing")


def _in_band_error(chunk: Any, data: str) -> WireError | str:
    error = chunk.error if chunk.error is not None else parse_error_body(data)
    if isinstance(error, (WireError, str)):
        return error
    return WireError(message=error.message, type=error.type, code=error.code)


async def read_chat_stream(
    events: EventStream, call: Call, *, upstream: str, in_band: InBand
) -> TextResult:
    decode = _chat_chunks.decode
    emit = call.emit
    tools: ToolPieces | None = None
    finish: str | None = None
    usage = None
    response_id: str | None = None
    done = False
    async for batch in events:
        for event in batch:
            data = event.data
            if data == "[DONE]":
                done = True
                break
            try:
                chunk = decode(data)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise _malformed(upstream, exc) from exc
            if chunk.error is not None or event.event == "error":
                error = _in_band_error(chunk, data)
                raise in_band(error, request_id_of(events.response.headers))
            choices = chunk.choices
            if choices:
                choice = choices[0]
                delta = choice.delta
                if delta is not None:
                    reasoning = delta.reasoning_content or delta.reasoning
                    if reasoning:
                        await call.emit_reasoning(reasoning)
                    text = delta.content
                    if text:
                        await emit(text)
                    if delta.tool_calls is not None or delta.function_call is not None:
                        if tools is None:
                            tools = ToolPieces(call)
                        await tools.feed(delta.tool_calls, delta.function_call)
                if choice.finish_reason is not None:
                    finish = choice.finish_reason
            if chunk.usage is not None:
                usage = chunk.usage
            if response_id is None:
                response_id = chunk.id
        if done:
            break
    if finish is None:
        raise _unfinished(upstream, done)
    called = tools is not None and tools.called
    return TextResult(
        finish_reason=finish_of(finish, called), usage=usage_of(usage), response_id=response_id
    )


async def read_completion_stream(
    events: EventStream, call: Call, *, upstream: str, in_band: InBand
) -> TextResult:
    decode = _completion_chunks.decode
    emit = call.emit
    finish: str | None = None
    usage = None
    response_id: str | None = None
    done = False
    async for batch in events:
        for event in batch:
            data = event.data
            if data == "[DONE]":
                done = True
                break
            try:
                chunk = decode(data)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise _malformed(upstream, exc) from exc
            if chunk.error is not None or event.event == "error":
                error = _in_band_error(chunk, data)
                raise in_band(error, request_id_of(events.response.headers))
            choices = chunk.choices
            if choices:
                choice = choices[0]
                text = choice.text
                if text:
                    await emit(text)
                if choice.finish_reason is not None:
                    finish = choice.finish_reason
            if chunk.usage is not None:
                usage = chunk.usage
            if response_id is None:
                response_id = chunk.id
        if done:
            break
    if finish is None:
        raise _unfinished(upstream, done)
    return TextResult(
        finish_reason=finish_of(finish), usage=usage_of(usage), response_id=response_id
    )
