"""The ``openai`` and ``openai_compatible`` provider drivers.

One driver class serves both; they differ only in their defaults (base URL,
whether a key is required, the name of the chat token limit). Each opened
endpoint owns one pooled ``httpx.AsyncClient``, closed in ``aclose``.
"""

from __future__ import annotations

import os
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar, Final, Literal

import httpx
import msgspec

from sipp import (
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
from sipp.driver import (
    Call,
    Capabilities,
    EmbeddingResult,
    OpenContext,
    TextResult,
)
from sipp.http import (
    EventStream,
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

from ._bodies import chat_body, completion_body, embed_body
from ._stream import ToolPieces, read_chat_stream, read_completion_stream
from ._types import OpenAIDescriptor
from ._wire import (
    ChatCompletion,
    Completion,
    Embeddings,
    WireError,
    finish_of,
    pooled,
    usage_of,
)

__all__ = ["OpenAIDriver", "OpenAIFactory", "openai_compatible_driver", "openai_driver"]

Flavor = Literal["openai", "openai_compatible"]

DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"
DEFAULT_RETRIES: Final = 2
DEFAULT_MAX_CONNECTIONS: Final = 10
USER_AGENT: Final = "sipp-openai/0.1"

_encoder: Final = msgspec.json.Encoder()
_chat_answer: Final = msgspec.json.Decoder(ChatCompletion)
_completion_answer: Final = msgspec.json.Decoder(Completion)
_embeddings: Final = msgspec.json.Decoder(Embeddings)


class OpenAIDriver:
    """One opened OpenAI (or OpenAI-compatible) endpoint."""

    #: Free-form per-request options, merged into the request body (the core
    #: refuses keys that clash with typed fields); also accepted as ``provider_options=``.
    options_type = dict
    options_keyword = "provider_options"

    def __init__(
        self,
        descriptor: OpenAIDescriptor,
        *,
        flavor: Flavor,
        base_url: str,
        client: httpx.AsyncClient,
        redactor: Redactor,
    ) -> None:
        self.capabilities = msgspec.structs.replace(
            _CAPABILITIES, **(descriptor.capabilities or {})
        )
        self.timeouts = Timeouts.of(descriptor.timeout) or Timeouts()
        self.retries = DEFAULT_RETRIES if descriptor.retries is None else descriptor.retries
        self.client = client
        self._model = descriptor.model
        self._name = flavor
        self._request_id_header = descriptor.request_id_header
        self._redactor = redactor
        self._schema_format = descriptor.schema_format
        self._chat_limit = "max_completion_tokens" if flavor == "openai" else "max_tokens"
        self._chat_url = f"{base_url}/chat/completions"
        self._completions_url = f"{base_url}/completions"
        self._embeddings_url = f"{base_url}/embeddings"

    # -- operations ---------------------------------------------------------------

    async def query(self, request: QueryRequest, call: Call) -> TextResult:
        if request.tools or request.output_schema is not None or request.reasoning is not None:
            # /completions has none of these; refused before any I/O.
            raise UnsupportedOperationError(
                f"{self._name}: tools, output= and reasoning= need chat, not query"
            )
        body = completion_body(self._model, request, stream=call.stream, stream_usage=True)
        if call.stream:
            request_ = self._request(self._completions_url, body, call, stream=True)
            async with self._events(request_) as events:
                return await read_completion_stream(
                    events, call, upstream=self._name, in_band=self._in_band
                )
        answer = await self._send(self._completions_url, body, call, _completion_answer)
        choice = self._first_choice(answer)
        usage = usage_of(answer.usage)
        if choice.text:
            await call.emit(choice.text, usage.output_tokens or 1)
        return TextResult(
            finish_reason=finish_of(choice.finish_reason), usage=usage, response_id=answer.id
        )

    async def chat(self, request: ChatRequest, call: Call) -> TextResult:
        body = chat_body(
            self._model,
            request,
            stream=call.stream,
            stream_usage=True,
            max_tokens_field=self._chat_limit,
            schema_format=self._schema_format,
        )
        if call.stream:
            request_ = self._request(self._chat_url, body, call, stream=True)
            async with self._events(request_) as events:
                return await read_chat_stream(
                    events, call, upstream=self._name, in_band=self._in_band
                )
        answer = await self._send(self._chat_url, body, call, _chat_answer)
        return await self._whole_chat(answer, call)

    async def embed(self, request: EmbedRequest, call: Call) -> EmbeddingResult:
        body = embed_body(self._model, request.input, request.options)
        answer = await self._send(self._embeddings_url, body, call, _embeddings)
        data = answer.data
        if not data:
            raise ProtocolError(f"{self._name}: the embeddings answer holds no vector")
        if all(item.index is not None for item in data):
            data = sorted(data, key=lambda item: item.index or 0)
        vectors: list[list[float]] = []
        pooling: str | None = None
        for item in data:
            try:
                vector, how = pooled(item.embedding)
            except ValueError as exc:
                raise ProtocolError(f"{self._name}: malformed embedding: {exc}") from exc
            vectors.append(vector)
            pooling = pooling or how
        usage = usage_of(answer.usage)
        return EmbeddingResult(
            vectors=vectors,
            pooling=pooling,
            usage=Usage(input_tokens=usage.input_tokens, total_tokens=usage.total_tokens),
            response_id=answer.id,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    # -- the exchange ---------------------------------------------------------------

    def _request(self, url: str, body: dict[str, Any], call: Call, stream: bool) -> httpx.Request:
        return build_json_post(
            self.client,
            url,
            _encoder.encode(body),
            call,
            stream=stream,
            request_id_header=self._request_id_header,
        )

    def _events(self, request: httpx.Request) -> AbstractAsyncContextManager[EventStream]:
        return open_event_stream(
            self.client, request, on_error=self._error, redactor=self._redactor, upstream=self._name
        )

    def _error(self, status: int, headers: httpx.Headers, body: bytes) -> SippError:
        return error_from_response(
            status, headers, body, upstream=self._name, redactor=self._redactor
        )

    def _in_band(self, error: WireError | str, request_id: str | None) -> SippError:
        if isinstance(error, str):
            error = WireError(message=error)
        code = str(error.code) if error.code is not None else error.type
        return build_error(
            status=None,
            code=code,
            message=error.message,
            upstream=self._name,
            request_id=request_id,
            raw_body=msgspec.json.encode(error).decode(),
            redactor=self._redactor,
        )

    async def _send(
        self, url: str, body: dict[str, Any], call: Call, decoder: msgspec.json.Decoder[Any]
    ) -> Any:
        request = self._request(url, body, call, stream=False)
        response = await send_request(
            self.client, request, on_error=self._error, redactor=self._redactor, upstream=self._name
        )
        try:
            answer = decoder.decode(response.content)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ProtocolError(f"{self._name}: malformed answer: {exc}") from exc
        if getattr(answer, "error", None) is not None:
            raise self._in_band(answer.error, request_id_of(response.headers))
        return answer

    def _first_choice(self, answer: Any) -> Any:
        if not answer.choices:
            raise ProtocolError(f"{self._name}: the answer holds no choice")
        return answer.choices[0]

    async def _whole_chat(self, answer: ChatCompletion, call: Call) -> TextResult:
        """A non-streamed answer, emitted in the model's order: reasoning, text, tool calls."""
        choice = self._first_choice(answer)
        usage = usage_of(answer.usage)
        message = choice.message
        called = False
        if message is not None:
            reasoning = message.reasoning_content or message.reasoning
            thought = usage.reasoning_tokens or 0
            if reasoning:
                await call.emit_reasoning(reasoning, thought or 1)
            if message.content:
                await call.emit(message.content, max(1, (usage.output_tokens or 1) - thought))
            if message.tool_calls or message.function_call is not None:
                tools = ToolPieces(call)
                # Whole calls carry no index: their position is their order.
                pieces = [msgspec.structs.replace(p, index=None) for p in message.tool_calls or ()]
                await tools.feed(pieces, message.function_call)
                called = tools.called
        return TextResult(
            finish_reason=finish_of(choice.finish_reason, called),
            usage=usage,
            response_id=answer.id,
        )


_CAPABILITIES: Final = Capabilities(
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


class OpenAIFactory:
    """Opens ``provider.openai`` or ``provider.openai_compatible`` endpoints."""

    #: The contract this driver is written for (not ``DRIVER_API_VERSION``, which moves on).
    api_version: ClassVar[int] = 2
    descriptor_type = OpenAIDescriptor

    def __init__(self, flavor: Flavor) -> None:
        self.flavor: Flavor = flavor

    def __repr__(self) -> str:
        return f"OpenAIFactory({self.flavor!r})"

    async def open(self, descriptor: Any, context: OpenContext) -> OpenAIDriver:
        if not isinstance(descriptor, OpenAIDescriptor):
            if not isinstance(descriptor, ProviderDescriptor):
                raise ConfigurationError(f"endpoint {context.name!r}: expected an OpenAIDescriptor")
            fields = {f: getattr(descriptor, f) for f in descriptor.__struct_fields__}
            descriptor = OpenAIDescriptor(**fields)
        where = f"endpoint {context.name!r}"
        if descriptor.base_url is None and self.flavor == "openai_compatible":
            raise ConfigurationError(f"{where}: openai_compatible needs a base_url")
        base_url = validate_base_url(
            descriptor.base_url or DEFAULT_BASE_URL,
            allow_insecure_http=descriptor.allow_insecure_http,
            field=f"{where}: base_url",
        )
        api_key = descriptor.api_key
        if api_key is None and self.flavor == "openai":
            api_key = os.environ.get("OPENAI_API_KEY") or None
            if api_key is None:
                raise ConfigurationError(
                    f"{where}: openai needs an api_key (or the OPENAI_API_KEY variable)"
                )
        headers = {"user-agent": USER_AGENT}
        headers.update(descriptor.headers or {})
        if api_key is not None:
            if descriptor.api_key_header:
                headers[descriptor.api_key_header] = api_key
            else:
                headers["authorization"] = f"Bearer {api_key}"
        if descriptor.organization:
            headers["openai-organization"] = descriptor.organization
        timeouts = Timeouts.of(descriptor.timeout) or Timeouts()
        client = create_http_client(
            max_connections=descriptor.max_connections or DEFAULT_MAX_CONNECTIONS,
            connect_timeout=timeouts.connect,
            http_transport=descriptor.http_transport,
            headers=headers,
        )
        redactor = Redactor([api_key, *(descriptor.headers or {}).values()])
        return OpenAIDriver(
            descriptor, flavor=self.flavor, base_url=base_url, client=client, redactor=redactor
        )


openai_driver = OpenAIFactory("openai")
openai_compatible_driver = OpenAIFactory("openai_compatible")
