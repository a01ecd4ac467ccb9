"""The ``provider.echo-cloud`` driver: one pooled client, one streamed POST per attempt."""

from __future__ import annotations

from typing import Any, ClassVar, Final

import httpx
import msgspec

from sipp import (
    ChatMessage,
    ChatRequest,
    ConfigurationError,
    EmbedRequest,
    ProtocolError,
    ProviderDescriptor,
    QueryRequest,
    SippError,
    Timeouts,
    UnsupportedOperationError,
    Usage,
)
from sipp.driver import Call, Capabilities, EmbeddingResult, OpenContext, TextResult
from sipp.http import (
    Redactor,
    build_error,
    build_json_post,
    create_http_client,
    error_from_response,
    open_event_stream,
    request_id_of,
    validate_base_url,
)

from . import _wire as wire

__all__ = [
    "EchoCloudDriver",
    "EchoCloudFactory",
    "EchoCloudOptions",
    "EchoCloudStats",
    "echo_cloud_driver",
]

DEFAULT_BASE_URL: Final = "https://api.echo-cloud.example/v1"
UPSTREAM: Final = "echo-cloud"  # names the service in error messages


class EchoCloudOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """echo-cloud's own per-request options: ``client.chat(..., options={"top_k": 5})``."""

    top_k: int | None = None
    safe_mode: bool = False

    def __post_init__(self) -> None:
        # Raised while the core converts the options: the caller gets an
        # InvalidRequestError naming ``options.top_k``, before any I/O.
        if self.top_k is not None and self.top_k < 1:
            raise ValueError("top_k must be at least 1")


class EchoCloudStats(msgspec.Struct, frozen=True, kw_only=True):
    """What echo-cloud reports about one answer; callers read it as ``response.stats``."""

    region: str | None = None
    queue_ms: int | None = None


_NO_OPTIONS: Final = EchoCloudOptions()


class EchoCloudDriver:
    """One opened echo-cloud endpoint."""

    # Tools and reasoning only: the core refuses output=, image parts and embed
    # before any I/O, so this class never sees them.
    capabilities = Capabilities(query=True, chat=True, usage=True, tools=True, reasoning=True)
    options_type: ClassVar[type[EchoCloudOptions]] = EchoCloudOptions
    stats_type: ClassVar[type[EchoCloudStats]] = EchoCloudStats

    def __init__(
        self,
        descriptor: ProviderDescriptor,
        *,
        url: str,
        client: httpx.AsyncClient,
        redactor: Redactor,
    ) -> None:
        self.timeouts = Timeouts.of(descriptor.timeout) or Timeouts()
        self.retries = 2 if descriptor.retries is None else descriptor.retries
        self._model = descriptor.model
        self._url = url
        self._client = client
        self._redactor = redactor
        self._request_id_header = descriptor.request_id_header

    async def query(self, request: QueryRequest, call: Call) -> TextResult:
        return await self._generate([wire.Message("user", request.prompt)], request, call)

    async def chat(self, request: ChatRequest, call: Call) -> TextResult:
        messages = [_to_wire(message) for message in request.messages]
        return await self._generate(messages, request, call)

    async def embed(self, request: EmbedRequest, call: Call) -> EmbeddingResult:
        raise UnsupportedOperationError("echo-cloud has no embeddings")

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _generate(
        self, messages: list[wire.Message], request: QueryRequest | ChatRequest, call: Call
    ) -> TextResult:
        options: EchoCloudOptions = request.options or _NO_OPTIONS
        tools = [wire.Tool(t.name, t.description, t.parameters) for t in request.tools or ()]
        body = wire.Body(
            model=self._model,
            messages=messages,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            tools=tools or None,
            tool_choice=request.tool_choice if tools else None,
            think=(request.reasoning.effort or "medium") if request.reasoning else None,
            top_k=options.top_k,
            safe_mode=options.safe_mode,
        )
        # echo-cloud always streams; for a caller who asked for no tokens the
        # core hands the text over in one batch at the end.
        http_request = build_json_post(
            self._client,
            self._url,
            wire.encode_body(body),
            call,
            stream=True,
            request_id_header=self._request_id_header,
        )
        async with open_event_stream(
            self._client,
            http_request,
            on_error=self._error,
            redactor=self._redactor,
            upstream=UPSTREAM,
        ) as events:
            async for batch in events:  # the events one network read finished
                for sse in batch:
                    try:
                        event = wire.decode_event(sse.data)
                    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                        raise ProtocolError(f"{UPSTREAM}: malformed event: {exc}") from exc
                    if isinstance(event, wire.Text):  # first: nearly every event is text
                        await call.emit(event.text)
                    elif isinstance(event, wire.Thinking):
                        await call.emit_reasoning(event.text)
                    elif isinstance(event, wire.ToolPiece):
                        await call.emit_tool_call(
                            event.index, id=event.id, name=event.name, arguments=event.arguments
                        )
                    elif isinstance(event, wire.Done):
                        # Returning leaves the block cleanly: the helper drains the
                        # rest of the body so the connection goes back to the pool.
                        return _result(event)
                    else:
                        raise build_error(
                            status=None,
                            code=event.code,
                            message=event.message,
                            upstream=UPSTREAM,
                            request_id=request_id_of(events.response.headers),
                            raw_body=sse.data,
                            redactor=self._redactor,
                        )
        # A cut stream is never a short success.
        raise ProtocolError(f"{UPSTREAM}: the stream ended without done")

    def _error(self, status: int, headers: httpx.Headers, body: bytes) -> SippError:
        return error_from_response(
            status, headers, body, upstream=UPSTREAM, redactor=self._redactor
        )


def _to_wire(message: ChatMessage) -> wire.Message:
    calls = None
    if message.tool_calls:
        calls = [wire.ToolCall(c.id, c.name, c.arguments) for c in message.tool_calls]
    # ``text``: the driver does not declare vision, so there are no image parts.
    return wire.Message(message.role, message.text, calls, message.tool_call_id)


def _result(done: wire.Done) -> TextResult:
    return TextResult(
        finish_reason=done.finish,
        usage=Usage(input_tokens=done.input_tokens, output_tokens=done.output_tokens),
        response_id=done.id,
        stats=EchoCloudStats(region=done.region, queue_ms=done.queue_ms),
    )


class EchoCloudFactory:
    """The object the entry point names: opens ``provider.echo-cloud`` endpoints."""

    api_version: ClassVar[int] = 2  # the contract this driver was written for
    descriptor_type = ProviderDescriptor

    async def open(self, descriptor: Any, context: OpenContext) -> EchoCloudDriver:
        where = f"endpoint {context.name!r}"
        if not isinstance(descriptor, ProviderDescriptor):
            raise ConfigurationError(f"{where}: expected a ProviderDescriptor")
        if not descriptor.api_key:
            raise ConfigurationError(f"{where}: echo-cloud needs an api_key")
        base_url = validate_base_url(
            descriptor.base_url or DEFAULT_BASE_URL,
            allow_insecure_http=descriptor.allow_insecure_http,
            field=f"{where}: base_url",
        )
        timeouts = Timeouts.of(descriptor.timeout) or Timeouts()
        headers = {**(descriptor.headers or {}), "authorization": f"Bearer {descriptor.api_key}"}
        client = create_http_client(
            max_connections=descriptor.max_connections or 10,
            connect_timeout=timeouts.connect,
            headers=headers,
        )
        redactor = Redactor([descriptor.api_key, *(descriptor.headers or {}).values()])
        return EchoCloudDriver(
            descriptor, url=f"{base_url}/generate", client=client, redactor=redactor
        )


echo_cloud_driver = EchoCloudFactory()
