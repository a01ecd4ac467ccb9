"""The ``openai`` and ``openai_compatible`` provider drivers.

One driver class serves both; they differ only in their defaults (base URL,
whether a key is required, the name of the chat token limit). Each opened
endpoint owns one pooled ``httpx.AsyncClient``, closed in ``aclose``.
"""

from __future__ import annotations

import os
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
from sipp.http import (
    Redactor,
    build_error,
    build_json_post,
    create_http_client,
    error_from_response,
    open_event_stream,
    parse_error_body,
    request_id_of,
    send_request,
    validate_base_url,
)

from ._wire import (
    ChatChunk,
    ChatCompletion,
    Completion,
    CompletionChunk,
    Embeddings,
    WireError,
    chat_body,
    completion_body,
    embed_body,
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
_chat_chunks: Final = msgspec.json.Decoder(ChatChunk)
_completion_chunks: Final = msgspec.json.Decoder(CompletionChunk)
_chat_answer: Final = msgspec.json.Decoder(ChatCompletion)
_completion_answer: Final = msgspec.json.Decoder(Completion)
_embeddings: Final = msgspec.json.Decoder(Embeddings)


class OpenAIDriver:
    """One opened OpenAI (or OpenAI-compatible) endpoint."""

    def __init__(
        self,
        descriptor: ProviderDescriptor,
        *,
        flavor: Flavor,
        base_url: str,
        client: httpx.AsyncClient,
        redactor: Redactor,
    ) -> None:
        self.capabilities = Capabilities(
            query=True, chat=True, embed=True, streaming=True, usage=True, extras="provider_options"
        )
        self.timeouts = Timeouts.of(descriptor.timeout) or Timeouts()
        self.retries = DEFAULT_RETRIES if descriptor.retries is None else descriptor.retries
        self.client = client
        self._model = descriptor.model
        self._name = flavor
        self._request_id_header = descriptor.request_id_header
        self._redactor = redactor
        self._chat_limit = "max_completion_tokens" if flavor == "openai" else "max_tokens"
        self._chat_url = f"{base_url}/chat/completions"
        self._completions_url = f"{base_url}/completions"
        self._embeddings_url = f"{base_url}/embeddings"

    # -- operations ---------------------------------------------------------------

    async def query(self, request: QueryRequest, call: Call) -> TextResult:
        body = completion_body(self._model, request, stream=call.stream, stream_usage=True)
        if call.stream:
            return await self._stream(self._completions_url, body, call, chat=False)
        answer = await self._send(self._completions_url, body, call, _completion_answer)
        choice = answer.choices[0] if answer.choices else None
        text = choice.text if choice is not None else None
        return await self._whole(answer.id, text, choice, answer.usage, call)

    async def chat(self, request: ChatRequest, call: Call) -> TextResult:
        body = chat_body(
            self._model,
            request,
            stream=call.stream,
            stream_usage=True,
            max_tokens_field=self._chat_limit,
        )
        if call.stream:
            return await self._stream(self._chat_url, body, call, chat=True)
        answer = await self._send(self._chat_url, body, call, _chat_answer)
        choice = answer.choices[0] if answer.choices else None
        message = choice.message if choice is not None else None
        text = message.content if message is not None else None
        return await self._whole(answer.id, text, choice, answer.usage, call)

    async def embed(self, request: EmbedRequest, call: Call) -> EmbeddingResult:
        body = embed_body(self._model, request.input, request.options)
        answer = await self._send(self._embeddings_url, body, call, _embeddings)
        if not answer.data:
            raise ProtocolError(f"{self._name}: the embeddings answer holds no vector")
        try:
            values, pooling = pooled(answer.data[0].embedding)
        except ValueError as exc:
            raise ProtocolError(f"{self._name}: malformed embedding: {exc}") from exc
        usage = usage_of(answer.usage)
        return EmbeddingResult(
            values=values,
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

    async def _whole(
        self, response_id: str | None, text: str | None, choice: Any, usage: Any, call: Call
    ) -> TextResult:
        if choice is None:
            raise ProtocolError(f"{self._name}: the answer holds no choice")
        result_usage = usage_of(usage)
        if text:
            await call.emit(text, result_usage.output_tokens or 1)
        return TextResult(
            finish_reason=finish_of(choice.finish_reason),
            usage=result_usage,
            response_id=response_id,
        )

    async def _stream(
        self, url: str, body: dict[str, Any], call: Call, *, chat: bool
    ) -> TextResult:
        request = self._request(url, body, call, stream=True)
        decode = _chat_chunks.decode if chat else _completion_chunks.decode
        emit = call.emit
        finish: str | None = None
        usage = None
        response_id: str | None = None
        done = False
        async with open_event_stream(
            self.client, request, on_error=self._error, redactor=self._redactor, upstream=self._name
        ) as events:
            async for batch in events:
                for event in batch:
                    data = event.data
                    if data == "[DONE]":
                        done = True
                        break
                    try:
                        chunk = decode(data)
                    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                        raise ProtocolError(f"{self._name}: malformed stream chunk: {exc}") from exc
                    if chunk.error is not None or event.event == "error":
                        error = chunk.error if chunk.error is not None else parse_error_body(data)
                        raise self._in_band(
                            _as_wire_error(error), request_id_of(events.response.headers)
                        )
                    choices = chunk.choices
                    if choices:
                        choice = choices[0]
                        if chat:
                            delta = choice.delta  # type: ignore[union-attr]
                            text = delta.content if delta is not None else None
                        else:
                            text = choice.text  # type: ignore[union-attr]
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
            ending = "[DONE] before any finish_reason" if done else "its end"
            raise ProtocolError(f"{self._name}: the stream reached {ending} without finishing")
        return TextResult(
            finish_reason=finish_of(finish), usage=usage_of(usage), response_id=response_id
        )


def _as_wire_error(error: Any) -> WireError | str:
    if isinstance(error, (WireError, str)):
        return error
    return WireError(message=error.message, type=error.type, code=error.code)


class OpenAIFactory:
    """Opens ``provider.openai`` or ``provider.openai_compatible`` endpoints."""

    api_version: ClassVar[int] = DRIVER_API_VERSION
    descriptor_type = ProviderDescriptor

    def __init__(self, flavor: Flavor) -> None:
        self.flavor: Flavor = flavor

    def __repr__(self) -> str:
        return f"OpenAIFactory({self.flavor!r})"

    async def open(self, descriptor: Any, context: OpenContext) -> OpenAIDriver:
        if not isinstance(descriptor, ProviderDescriptor):
            raise ConfigurationError(f"endpoint {context.name!r}: expected a ProviderDescriptor")
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
            headers=headers,
        )
        redactor = Redactor([api_key, *(descriptor.headers or {}).values()])
        return OpenAIDriver(
            descriptor, flavor=self.flavor, base_url=base_url, client=client, redactor=redactor
        )


openai_driver = OpenAIFactory("openai")
openai_compatible_driver = OpenAIFactory("openai_compatible")
