"""The ``anthropic`` provider driver: Anthropic's Messages API over one pooled client."""

from __future__ import annotations

import os
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
)
from sipp.driver import (
    DRIVER_API_VERSION,
    Call,
    Capabilities,
    EmbeddingResult,
    OpenContext,
    TextResult,
)
from sipp.http import (
    Redactor,
    build_error,
    build_json_post,
    create_http_client,
    error_from_response,
    open_event_stream,
    request_id_of,
    send_request,
    validate_base_url,
)

from ._wire import ErrorDetail, Event, Message, finish_of, merge_usage, messages_body, usage_of

__all__ = ["AnthropicDriver", "AnthropicFactory", "anthropic_driver"]

DEFAULT_BASE_URL: Final = "https://api.anthropic.com/v1"
DEFAULT_VERSION: Final = "2023-06-01"
DEFAULT_RETRIES: Final = 2
DEFAULT_MAX_CONNECTIONS: Final = 10
USER_AGENT: Final = "sipp-anthropic/0.1"

_encoder: Final = msgspec.json.Encoder()
_events: Final = msgspec.json.Decoder(Event)
_message: Final = msgspec.json.Decoder(Message)


class AnthropicDriver:
    """One opened Anthropic endpoint. ``embed`` is not offered (no embeddings API)."""

    def __init__(
        self,
        descriptor: ProviderDescriptor,
        *,
        base_url: str,
        client: httpx.AsyncClient,
        redactor: Redactor,
    ) -> None:
        self.capabilities = Capabilities(
            query=True,
            chat=True,
            embed=False,
            streaming=True,
            usage=True,
            extras="provider_options",
        )
        self.timeouts = Timeouts.of(descriptor.timeout) or Timeouts()
        self.retries = DEFAULT_RETRIES if descriptor.retries is None else descriptor.retries
        self.client = client
        self._model = descriptor.model
        self._redactor = redactor
        self._url = f"{base_url}/messages"
        self._request_id_header = descriptor.request_id_header

    async def query(self, request: QueryRequest, call: Call) -> TextResult:
        """The prompt becomes one user message."""
        fields = msgspec.structs.asdict(request)
        del fields["prompt"]
        chat = ChatRequest(messages=[ChatMessage(role="user", content=request.prompt)], **fields)
        return await self.chat(chat, call)

    async def chat(self, request: ChatRequest, call: Call) -> TextResult:
        body = messages_body(self._model, request, stream=call.stream)
        if call.stream:
            return await self._stream(body, call)
        return await self._whole(body, call)

    async def embed(self, request: EmbedRequest, call: Call) -> EmbeddingResult:
        raise UnsupportedOperationError("anthropic endpoints have no embeddings")

    async def aclose(self) -> None:
        await self.client.aclose()

    def _request(self, body: dict[str, Any], call: Call, *, stream: bool) -> httpx.Request:
        return build_json_post(
            self.client,
            self._url,
            _encoder.encode(body),
            call,
            stream=stream,
            request_id_header=self._request_id_header,
        )

    def _error(self, status: int, headers: httpx.Headers, body: bytes) -> SippError:
        return error_from_response(
            status, headers, body, upstream="anthropic", redactor=self._redactor
        )

    def _in_band(self, error: ErrorDetail | None, raw: str, request_id: str | None) -> SippError:
        return build_error(
            status=None,
            code=error.type if error is not None else None,
            message=error.message if error is not None else None,
            upstream="anthropic",
            request_id=request_id,
            raw_body=raw,
            redactor=self._redactor,
        )

    async def _whole(self, body: dict[str, Any], call: Call) -> TextResult:
        response = await send_request(
            self.client,
            self._request(body, call, stream=False),
            on_error=self._error,
            redactor=self._redactor,
            upstream="anthropic",
        )
        try:
            message = _message.decode(response.content)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ProtocolError(f"anthropic: malformed answer: {exc}") from exc
        if message.content is None:
            raise ProtocolError("anthropic: the answer holds no content")
        text = "".join(b.text or "" for b in message.content if b.type == "text")
        usage = usage_of(message.usage)
        if text:
            await call.emit(text, usage.output_tokens or 1)
        return TextResult(
            finish_reason=finish_of(message.stop_reason), usage=usage, response_id=message.id
        )

    async def _stream(self, body: dict[str, Any], call: Call) -> TextResult:
        emit = call.emit
        decode = _events.decode
        usage = None
        stop_reason: str | None = None
        response_id: str | None = None
        stopped = False
        async with open_event_stream(
            self.client,
            self._request(body, call, stream=True),
            on_error=self._error,
            redactor=self._redactor,
            upstream="anthropic",
        ) as events:
            async for batch in events:
                for sse in batch:
                    try:
                        event = decode(sse.data)
                    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                        raise ProtocolError(f"anthropic: malformed stream event: {exc}") from exc
                    kind = event.type
                    if kind == "content_block_delta":
                        delta = event.delta
                        if delta is not None and delta.type == "text_delta" and delta.text:
                            await emit(delta.text)
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
                        request_id = request_id_of(events.response.headers)
                        raise self._in_band(event.error, sse.data, request_id)
                    elif kind == "content_block_start":
                        block = event.content_block
                        if block is not None and block.type == "text" and block.text:
                            await emit(block.text)
                    # ping, content_block_stop and future event types: nothing to do
                if stopped:
                    break
        if not stopped:
            raise ProtocolError("anthropic: the stream ended without message_stop")
        return TextResult(
            finish_reason=finish_of(stop_reason), usage=usage_of(usage), response_id=response_id
        )


class AnthropicFactory:
    """Opens ``provider.anthropic`` endpoints."""

    api_version: ClassVar[int] = DRIVER_API_VERSION
    descriptor_type = ProviderDescriptor

    async def open(self, descriptor: Any, context: OpenContext) -> AnthropicDriver:
        where = f"endpoint {context.name!r}"
        if not isinstance(descriptor, ProviderDescriptor):
            raise ConfigurationError(f"{where}: expected a ProviderDescriptor")
        base_url = validate_base_url(
            descriptor.base_url or DEFAULT_BASE_URL,
            allow_insecure_http=descriptor.allow_insecure_http,
            field=f"{where}: base_url",
        )
        api_key = descriptor.api_key or os.environ.get("ANTHROPIC_API_KEY") or None
        if api_key is None:
            raise ConfigurationError(
                f"{where}: anthropic needs an api_key (or the ANTHROPIC_API_KEY variable)"
            )
        headers = {"user-agent": USER_AGENT, "anthropic-version": DEFAULT_VERSION}
        headers.update(descriptor.headers or {})
        headers[descriptor.api_key_header or "x-api-key"] = api_key
        if descriptor.version:
            headers["anthropic-version"] = descriptor.version
        timeouts = Timeouts.of(descriptor.timeout) or Timeouts()
        client = create_http_client(
            max_connections=descriptor.max_connections or DEFAULT_MAX_CONNECTIONS,
            connect_timeout=timeouts.connect,
            headers=headers,
        )
        redactor = Redactor([api_key, *(descriptor.headers or {}).values()])
        return AnthropicDriver(descriptor, base_url=base_url, client=client, redactor=redactor)


anthropic_driver = AnthropicFactory()
