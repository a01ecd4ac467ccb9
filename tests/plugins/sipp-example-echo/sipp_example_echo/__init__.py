"""An example third-party driver, written only against the public contract.

Kind ``echo``: streams the prompt (or the last chat message) back, a few
characters per token, optionally reversed, with a pause between tokens.
"""

from __future__ import annotations

from typing import Literal

import anyio

from sipp import ChatRequest, Descriptor, EmbedRequest, QueryRequest, Timeouts, Usage
from sipp.driver import (
    DRIVER_API_VERSION,
    Call,
    Capabilities,
    EmbeddingResult,
    OpenContext,
    TextResult,
)


class EchoDescriptor(Descriptor, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: Literal["echo"] = "echo"
    chars_per_token: int = 3
    pause: float = 0.002
    reverse: bool = False


class EchoDriver:
    capabilities = Capabilities(query=True, chat=True, embed=False)
    timeouts = Timeouts()
    retries = 0

    def __init__(self, descriptor: EchoDescriptor) -> None:
        self._descriptor = descriptor

    async def _echo(self, text: str, call: Call, max_tokens: int | None) -> TextResult:
        if self._descriptor.reverse:
            text = text[::-1]
        step = self._descriptor.chars_per_token
        pieces = [text[i : i + step] for i in range(0, len(text), step)]
        cut = max_tokens is not None and len(pieces) > max_tokens
        pieces = pieces[:max_tokens] if max_tokens is not None else pieces
        for piece in pieces:
            await anyio.sleep(self._descriptor.pause)
            await call.emit(piece)
        return TextResult(
            finish_reason="length" if cut else "stop",
            usage=Usage(input_tokens=len(text) // step, output_tokens=len(pieces)),
        )

    async def query(self, request: QueryRequest, call: Call) -> TextResult:
        return await self._echo(request.prompt, call, request.max_tokens)

    async def chat(self, request: ChatRequest, call: Call) -> TextResult:
        return await self._echo(request.messages[-1].content, call, request.max_tokens)

    async def embed(self, request: EmbedRequest, call: Call) -> EmbeddingResult:
        raise AssertionError("the core refuses embed before calling the driver")

    async def aclose(self) -> None:
        pass


class EchoFactory:
    api_version = DRIVER_API_VERSION
    descriptor_type = EchoDescriptor

    async def open(self, descriptor: Descriptor, context: OpenContext) -> EchoDriver:
        assert isinstance(descriptor, EchoDescriptor)
        return EchoDriver(descriptor)


driver = EchoFactory()
