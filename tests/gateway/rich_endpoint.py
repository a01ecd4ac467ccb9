"""A test endpoint that produces every rich-chat event, and a framework-free profile app.

``RichFactory`` is registered with ``sipp.register_driver("rich", ...)``: its
driver records each request it gets (so a test can compare what reached the
endpoint behind a gateway route with what the caller sent) and answers with
reasoning, text and two tool calls through ``call.emit_reasoning`` /
``call.emit`` / ``call.emit_tool_call``, in pieces, with small pauses so a
streamed answer really is several SSE frames.

``asgi_app(client)`` is the plain-ASGI route (no framework) from the
``sipp.gateway.asgi`` docstring, for all three operations.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import anyio

from sipp import (
    ChatRequest,
    Descriptor,
    EmbedRequest,
    QueryRequest,
    SippClient,
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
    decode_gateway_chat_body,
    decode_gateway_embed_body,
    decode_gateway_query_body,
    gateway_embedding_response_body,
    gateway_error_response,
    gateway_json_response,
    gateway_text_response_body,
    gateway_text_stream_response,
    read_json_body,
)
from sipp.gateway.asgi import Receive, Scope, Send

#: What the endpoint answers when ``json_reply`` is not set.
REASONING = ["Let me ", "think."]
TEXT = ["Calling ", "tools."]
CALLS = [
    (0, {"id": "call_1", "name": "lookup", "arguments": '{"city":'}),
    (0, {"arguments": '"Paris"}'}),
    (1, {"id": "call_2", "name": "clock", "arguments": "{}"}),
]
USAGE = Usage(
    input_tokens=7,
    output_tokens=9,
    total_tokens=16,
    reasoning_tokens=3,
    cache_read_tokens=5,
    cache_write_tokens=2,
)


class RichDescriptor(Descriptor, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: Literal["rich"] = "rich"
    #: Answer with this text only (structured output tests), instead of the tool turn.
    json_reply: str | None = None
    pause: float = 0.01


class RichDriver:
    options_type: ClassVar[type] = dict
    options_keyword: ClassVar[str] = "endpoint_options"

    def __init__(self, descriptor: RichDescriptor) -> None:
        self.descriptor = descriptor
        self.capabilities = Capabilities(
            query=True,
            chat=True,
            embed=True,
            usage=True,
            tools=True,
            structured_output=True,
            vision=True,
            reasoning=True,
            embed_batch=True,
        )
        self.timeouts = Timeouts()
        self.retries = 0
        self.requests: list[Any] = []

    async def _answer(self, call: Call) -> TextResult:
        pause = self.descriptor.pause
        if self.descriptor.json_reply is not None:
            await call.emit(self.descriptor.json_reply)
            return TextResult(finish_reason="stop", usage=USAGE)
        for piece in REASONING:
            await call.emit_reasoning(piece)
            await anyio.sleep(pause)
        for piece in TEXT:
            await call.emit(piece)
            await anyio.sleep(pause)
        for index, delta in CALLS:
            await call.emit_tool_call(index, **delta)
            await anyio.sleep(pause)
        return TextResult(finish_reason="tool_calls", usage=USAGE, response_id="resp_rich")

    async def query(self, request: QueryRequest, call: Call) -> TextResult:
        self.requests.append(request)
        return await self._answer(call)

    async def chat(self, request: ChatRequest, call: Call) -> TextResult:
        self.requests.append(request)
        return await self._answer(call)

    async def embed(self, request: EmbedRequest, call: Call) -> EmbeddingResult:
        self.requests.append(request)
        vectors = [[float(len(text)), float(index)] for index, text in enumerate(request.inputs)]
        return EmbeddingResult(vectors=vectors, usage=Usage(input_tokens=len(request.inputs)))

    async def aclose(self) -> None:
        pass


class RichFactory:
    api_version: int = DRIVER_API_VERSION
    descriptor_type: type[Descriptor] = RichDescriptor

    def __init__(self) -> None:
        self.opened: list[RichDriver] = []

    async def open(self, descriptor: Any, context: OpenContext) -> RichDriver:
        driver = RichDriver(descriptor)
        self.opened.append(driver)
        return driver


def asgi_app(client: SippClient, endpoint: str = "rich") -> Any:
    """The profile's three routes as a plain ASGI app, built from ``sipp.gateway`` alone."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                phase = (await receive())["type"].rsplit(".", 1)[-1]
                await send({"type": f"lifespan.{phase}.complete"})
                if phase == "shutdown":
                    return
        response: Any
        try:
            body = await read_json_body(receive)
            path = scope["path"]
            if path == "/v1/embed":
                decoded_embed = decode_gateway_embed_body(body)
                result = await client.embed(decoded_embed.request, endpoint=endpoint)
                response = gateway_json_response(
                    gateway_embedding_response_body(
                        decoded_embed.target, result, batch=decoded_embed.batch
                    )
                )
            else:
                decoded = (
                    decode_gateway_chat_body(body)
                    if path == "/v1/chat"
                    else decode_gateway_query_body(body)
                )
                run = (
                    client.chat(decoded.request, endpoint=endpoint)  # type: ignore[arg-type]
                    if path == "/v1/chat"
                    else client.query(decoded.request, endpoint=endpoint)  # type: ignore[arg-type]
                )
                if decoded.stream:
                    response = gateway_text_stream_response(run)
                else:
                    response = gateway_json_response(
                        gateway_text_response_body(decoded.target, await run)
                    )
        except Exception as error:
            response = gateway_error_response(error)
        await response(scope, receive, send)

    return app
