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

from ._body import messages_body
from ._echo import ThinkingMemory
from ._read import read_message, read_stream
from ._wire import ErrorDetail

__all__ = ["AnthropicDriver", "AnthropicFactory", "anthropic_driver"]

DEFAULT_BASE_URL: Final = "https://api.anthropic.com/v1"
DEFAULT_VERSION: Final = "2023-06-01"
DEFAULT_RETRIES: Final = 2
DEFAULT_MAX_CONNECTIONS: Final = 10
USER_AGENT: Final = "sipp-anthropic/0.1"

_encoder: Final = msgspec.json.Encoder()


class AnthropicDriver:
    """One opened Anthropic endpoint. ``embed`` is not offered (no embeddings API).

    Per-request options (``provider_options=`` or ``options=``) are a free-form
    dict merged into the request body (``top_k``, ``metadata``, ``system``
    blocks with ``cache_control``, ``thinking`` of another type, ...); the
    core refuses keys that are typed sipp parameters.
    """

    #: Free-form: Anthropic adds body fields faster than a typed struct could follow.
    options_type: ClassVar[type[dict[str, Any]]] = dict
    options_keyword: ClassVar[str] = "provider_options"

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
            tools=True,
            structured_output=True,
            vision=True,
            reasoning=True,
        )
        self.timeouts = Timeouts.of(descriptor.timeout) or Timeouts()
        self.retries = DEFAULT_RETRIES if descriptor.retries is None else descriptor.retries
        self.client = client
        self._model = descriptor.model
        self._redactor = redactor
        self._url = f"{base_url}/messages"
        self._request_id_header = descriptor.request_id_header
        self._thinking = ThinkingMemory()

    async def query(self, request: QueryRequest, call: Call) -> TextResult:
        """The prompt becomes one user message."""
        fields = msgspec.structs.asdict(request)
        del fields["prompt"]
        chat = ChatRequest(messages=[ChatMessage(role="user", content=request.prompt)], **fields)
        return await self.chat(chat, call)

    async def chat(self, request: ChatRequest, call: Call) -> TextResult:
        body = messages_body(self._model, request, stream=call.stream, memory=self._thinking)
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

    async def _whole(self, body: dict[str, Any], call: Call) -> TextResult:
        response = await send_request(
            self.client,
            self._request(body, call, stream=False),
            on_error=self._error,
            redactor=self._redactor,
            upstream="anthropic",
        )
        return await read_message(response.content, call, self._thinking)

    async def _stream(self, body: dict[str, Any], call: Call) -> TextResult:
        async with open_event_stream(
            self.client,
            self._request(body, call, stream=True),
            on_error=self._error,
            redactor=self._redactor,
            upstream="anthropic",
        ) as events:
            request_id = request_id_of(events.response.headers)

            def in_band(error: ErrorDetail | None, raw: str) -> SippError:
                return build_error(
                    status=None,
                    code=error.type if error is not None else None,
                    message=error.message if error is not None else None,
                    upstream="anthropic",
                    request_id=request_id,
                    raw_body=raw,
                    redactor=self._redactor,
                )

            return await read_stream(events, call, self._thinking, in_band)


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
            http_transport=descriptor.http_transport,
            headers=headers,
        )
        redactor = Redactor([api_key, *(descriptor.headers or {}).values()])
        return AnthropicDriver(descriptor, base_url=base_url, client=client, redactor=redactor)


anthropic_driver = AnthropicFactory()
