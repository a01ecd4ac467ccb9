"""The gateway driver: one profile request per attempt, read as JSON or SSE.

One pooled ``httpx.AsyncClient`` per endpoint, built in ``open()`` and closed
in ``aclose()``. Per attempt: the body (``build_body``), the authentication
header (a ``value_provider`` is called each time), ``x-request-id`` set to the
run's id, and only the connect timeout on the transport (the core enforces
first-token, idle and total with cancel scopes, and owns retries).

The answer is read by its content type, not by what was asked: a profile
server must stream when ``stream`` is true, but a JSON answer to a streaming
request (or SSE to a plain one) is still read correctly. A cancel closes the
response at once; a finished stream is drained (bounded) so the connection
goes back to the pool.
"""

from __future__ import annotations

from typing import ClassVar, Final, Literal

import anyio
import httpx
import msgspec

from sipp import (
    ChatRequest,
    ConfigurationError,
    EmbedRequest,
    GatewayDescriptor,
    ProtocolError,
    QueryRequest,
    Timeouts,
    Usage,
)
from sipp.driver import (
    DRIVER_API_VERSION,
    Call,
    Capabilities,
    EmbeddingResult,
    OpenContext,
    TextResult,
)
from sipp.gateway import (
    GatewayDone,
    GatewayEventReader,
    GatewayReasoning,
    GatewayStreamError,
    GatewayStreamViolation,
    GatewayToken,
    GatewayToolCall,
    GatewayUsage,
    encode_json,
)
from sipp.http import (
    MAX_ERROR_BODY,
    EventStream,
    Redactor,
    build_json_post,
    create_http_client,
    map_httpx_errors,
)

from ._config import Auth, build_body, check_options, route_urls
from ._errors import error_from_answer, error_from_event

__all__ = ["GatewayDriver", "GatewayFactory", "gateway_driver"]

_UPSTREAM: Final = "gateway"
#: A JSON answer larger than this is refused (an embedding of 1M floats fits).
MAX_JSON_ANSWER: Final = 32 * 1024 * 1024
DEFAULT_RETRIES: Final = 2
DEFAULT_MAX_CONNECTIONS: Final = 10


class _Usage(msgspec.Struct, frozen=True):
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    reasoning_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None


class _ToolCall(msgspec.Struct, frozen=True):
    id: str
    name: str
    arguments: str = "{}"


class _TextAnswer(msgspec.Struct, frozen=True):
    text: str
    finish_reason: str = "stop"
    id: str | None = None
    usage: _Usage | None = None
    # The rich-chat extension.
    reasoning: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _EmbedAnswer(msgspec.Struct, frozen=True):
    embedding: list[float] | None = None
    embeddings: list[list[float]] | None = None
    id: str | None = None
    usage: _Usage | None = None


_text_decoder: Final = msgspec.json.Decoder(_TextAnswer)
_embed_decoder: Final = msgspec.json.Decoder(_EmbedAnswer)


def _usage(usage: _Usage | GatewayUsage | None) -> Usage:
    if usage is None:
        return Usage()
    return Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
    )


def _finish(reason: str) -> Literal["stop", "length", "tool_calls"]:
    if reason in ("length", "tool_calls"):
        return reason  # type: ignore[return-value]
    return "stop"


async def _read_all(response: httpx.Response, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    with map_httpx_errors(upstream=_UPSTREAM):
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise ProtocolError(f"gateway answer exceeds {limit} bytes")
            parts.append(chunk)
    return b"".join(parts)


class GatewayDriver:
    """One opened ``kind: "gateway"`` endpoint."""

    #: Free-form per-request options, sent as top-level body keys (never a typed one).
    options_type: ClassVar[type] = dict
    options_keyword: ClassVar[str] = "endpoint_options"
    capabilities: Capabilities
    timeouts: Timeouts
    retries: int

    def __init__(self, descriptor: GatewayDescriptor, name: str) -> None:
        where = f"endpoint {name!r}"
        if not descriptor.target.strip():
            raise ConfigurationError(f"{where}: target must be a non-empty string")
        self._target = descriptor.target
        self._urls = route_urls(descriptor, where)
        self._auth = Auth(descriptor.authentication, where)
        self._options = check_options(descriptor.protocol_options, where)
        # Everything the extension carries: the gateway refuses what its target cannot do.
        self.capabilities = Capabilities(
            query=True,
            chat=True,
            embed=True,
            streaming=True,
            usage=True,
            tools=True,
            structured_output=True,
            vision=True,
            reasoning=True,
            embed_batch=True,
        )
        self.timeouts = Timeouts.of(descriptor.timeout) or Timeouts()
        self.retries = descriptor.retries if descriptor.retries is not None else DEFAULT_RETRIES
        headers = dict(descriptor.headers or {})
        self._redactor = Redactor([*self._auth.secrets, *headers.values()])
        headers["content-type"] = "application/json"
        self._client = create_http_client(
            max_connections=descriptor.max_connections or DEFAULT_MAX_CONNECTIONS,
            connect_timeout=self.timeouts.connect,
            http_transport=descriptor.http_transport,
            headers=headers,
            trust_env=False,
        )

    async def query(self, request: QueryRequest, call: Call) -> TextResult:
        return await self._text("query", request, call)

    async def chat(self, request: ChatRequest, call: Call) -> TextResult:
        return await self._text("chat", request, call)

    async def embed(self, request: EmbedRequest, call: Call) -> EmbeddingResult:
        body = build_body(self._target, request, False, self._options)
        response = await self._send("embed", body, call, stream=False)
        try:
            data = await _read_all(response, MAX_JSON_ANSWER)
        finally:
            await _close(response)
        try:
            answer = _embed_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ProtocolError(f"gateway sent a malformed embedding answer: {exc}") from exc
        # An array input is answered with ``embeddings``; the core checks one per input.
        vectors = answer.embeddings
        if vectors is None:
            if answer.embedding is None:
                raise ProtocolError("gateway sent an embedding answer without embedding(s)")
            vectors = [answer.embedding]
        return EmbeddingResult(vectors=vectors, usage=_usage(answer.usage), response_id=answer.id)

    async def _text(
        self, operation: str, request: QueryRequest | ChatRequest, call: Call
    ) -> TextResult:
        body = build_body(self._target, request, call.stream, self._options)
        response = await self._send(operation, body, call, stream=call.stream)
        content_type = response.headers.get("content-type", "")
        if content_type.startswith("text/event-stream"):
            return await self._read_events(response, call)
        try:
            data = await _read_all(response, MAX_JSON_ANSWER)
        finally:
            await _close(response)
        try:
            answer = _text_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ProtocolError(f"gateway sent a malformed answer: {exc}") from exc
        # A whole answer, in the order a model produces it: thinking, text, calls.
        if answer.reasoning:
            await call.emit_reasoning(answer.reasoning)
        if answer.text:
            await call.emit(answer.text)
        for index, tool in enumerate(answer.tool_calls or ()):
            await call.emit_tool_call(index, id=tool.id, name=tool.name, arguments=tool.arguments)
        return TextResult(
            finish_reason=_finish(answer.finish_reason),
            usage=_usage(answer.usage),
            response_id=answer.id,
        )

    async def _send(
        self, operation: str, body: dict[str, object], call: Call, *, stream: bool
    ) -> httpx.Response:
        auth = await self._auth.header()
        request = build_json_post(
            self._client,
            self._urls[operation],
            encode_json(body),
            call,
            stream=stream,
            headers=None if auth is None else {auth[0]: auth[1]},
        )
        with map_httpx_errors(self._redactor, upstream=_UPSTREAM):
            response = await self._client.send(request, stream=True)
        if response.status_code < 300:
            return response
        try:
            with anyio.move_on_after(1.0):
                data = await _read_all(response, MAX_ERROR_BODY)
        except ProtocolError:
            data = b""
        finally:
            await _close(response)
        raise error_from_answer(response.status_code, response.headers, data, self._redactor)

    async def _read_events(self, response: httpx.Response, call: Call) -> TextResult:
        stream = EventStream(response, redactor=self._redactor, upstream=_UPSTREAM)
        reader = GatewayEventReader()
        usage: GatewayUsage | None = None
        done: GatewayDone | None = None
        try:
            async for events in stream:
                for event in events:
                    item = reader.feed(event)
                    if isinstance(item, GatewayToken):
                        if item.text:
                            await call.emit(item.text)
                    elif isinstance(item, GatewayReasoning):
                        if item.text:
                            await call.emit_reasoning(item.text)
                    elif isinstance(item, GatewayToolCall):
                        await call.emit_tool_call(
                            item.index, id=item.id, name=item.name, arguments=item.arguments
                        )
                    elif isinstance(item, GatewayUsage):
                        usage = item
                    elif isinstance(item, GatewayDone):
                        done = item
                    elif isinstance(item, GatewayStreamError):
                        raise error_from_event(
                            item.code, item.message, response.headers, self._redactor
                        )
                if done is not None:
                    break
            else:
                reader.close()
        except GatewayStreamViolation as exc:
            await stream.aclose()
            raise ProtocolError(f"gateway: {exc}") from exc
        except BaseException:
            await stream.aclose()  # a cancel closes the stream at once
            raise
        # Events after ``done`` are an error even when they came in a later read:
        # the rest of the body is read (bounded, so the connection is reused) and checked.
        try:
            for event in await stream.drain():
                reader.feed(event)
        except GatewayStreamViolation as exc:
            raise ProtocolError(f"gateway: {exc}") from exc
        assert done is not None
        return TextResult(
            finish_reason=_finish(done.finish_reason), usage=_usage(usage), response_id=None
        )

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            await self._client.aclose()


async def _close(response: httpx.Response) -> None:
    with anyio.CancelScope(shield=True):
        await response.aclose()


class GatewayFactory:
    """The ``gateway`` entry point of the ``sipp.drivers`` group."""

    api_version: ClassVar[int] = DRIVER_API_VERSION
    descriptor_type = GatewayDescriptor

    async def open(self, descriptor: object, context: OpenContext) -> GatewayDriver:
        assert isinstance(descriptor, GatewayDescriptor)
        return GatewayDriver(descriptor, context.name)


gateway_driver = GatewayFactory()
