"""A test endpoint that streams at a steady pace, then may stall: the shape timeouts care about.

``kind: "paced"``: ``tokens`` pieces of ``kind`` (answer text, reasoning or
one tool call's argument pieces), ``pace`` seconds apart, then ``stall``
seconds of silence before the stream finishes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import anyio
import msgspec

from sipp import Descriptor, QueryRequest, Timeouts, register_driver, unregister_driver
from sipp.driver import Call, Capabilities, TextResult

__all__ = ["paced_endpoint"]


class PacedDescriptor(Descriptor, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: Literal["paced"] = "paced"
    tokens: list[str] = msgspec.field(default_factory=list)
    piece: Literal["text", "reasoning", "tool_call"] = "text"
    pace: float = 0.0
    stall: float = 0.0
    timeout: float | Timeouts | None = None


class PacedDriver:
    capabilities = Capabilities(query=True, chat=False, reasoning=True, tools=True)
    retries = 0

    def __init__(self, descriptor: PacedDescriptor) -> None:
        self.descriptor = descriptor
        self.timeouts = Timeouts.of(descriptor.timeout) or Timeouts()

    async def query(self, request: QueryRequest, call: Call) -> TextResult:
        script = self.descriptor
        for index, token in enumerate(script.tokens):
            if index:
                await anyio.sleep(script.pace)
            if script.piece == "text":
                await call.emit(token)
            elif script.piece == "reasoning":
                await call.emit_reasoning(token)
            else:
                await call.emit_tool_call(0, id="c0" if not index else None, arguments=token)
        await anyio.sleep(script.stall)
        return TextResult(finish_reason="stop")

    async def chat(self, request: object, call: Call) -> TextResult:
        raise NotImplementedError

    async def embed(self, request: object, call: Call) -> TextResult:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass


class PacedFactory:
    api_version = 2
    descriptor_type = PacedDescriptor

    async def open(self, descriptor: PacedDescriptor, context: object) -> PacedDriver:
        return PacedDriver(descriptor)


@contextmanager
def paced_endpoint() -> Iterator[None]:
    """Register the ``paced`` driver for the duration of a test."""
    register_driver("paced", PacedFactory())  # type: ignore[arg-type]
    try:
        yield
    finally:
        unregister_driver("paced")
