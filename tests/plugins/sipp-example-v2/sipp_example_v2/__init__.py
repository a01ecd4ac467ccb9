"""An example third-party driver for contract v2, written only against the public API.

Kind ``parrot``: repeats the last message back, a word per token. It shows
what a v2 driver declares beyond version 1:

* its own per-request options (:class:`ParrotOptions`, a msgspec Struct the
  core validates before any I/O and hands over as ``request.options``);
* its own statistics (:class:`ParrotStats`, reaching callers as
  ``response.stats``);
* tool calls: offered tools and a user message make it call the forced tool
  (or the first one whose name the message mentions), filling each required
  string argument with the message; a tool result makes it answer with it;
* reasoning: with ``reasoning=`` it first says, apart from the answer, what it
  is about to do.
"""

from __future__ import annotations

from typing import Any, Literal

import anyio
import msgspec

from sipp import (
    ChatMessage,
    ChatRequest,
    Descriptor,
    EmbedRequest,
    QueryRequest,
    Timeouts,
    Tool,
    Usage,
)
from sipp.driver import Call, Capabilities, EmbeddingResult, OpenContext, TextResult

__all__ = ["ParrotDescriptor", "ParrotDriver", "ParrotOptions", "ParrotStats", "driver"]


class ParrotDescriptor(Descriptor, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: Literal["parrot"] = "parrot"
    #: Seconds between two tokens.
    pause: float = 0.002


class ParrotOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Per request: ``client.chat(..., options={"shout": True, "repeat": 2})``."""

    shout: bool = False
    repeat: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.repeat <= 5:
            raise ValueError("repeat must be between 1 and 5")


class ParrotStats(msgspec.Struct, frozen=True, kw_only=True):
    words: int
    shouted: bool


_NO_OPTIONS = ParrotOptions()


class ParrotDriver:
    capabilities = Capabilities(query=True, chat=True, embed=False, tools=True, reasoning=True)
    timeouts = Timeouts()
    retries = 0
    options_type = ParrotOptions
    stats_type = ParrotStats

    def __init__(self, descriptor: ParrotDescriptor) -> None:
        self._pause = descriptor.pause

    async def query(self, request: QueryRequest, call: Call) -> TextResult:
        return await self._say(request.prompt, request, call)

    async def chat(self, request: ChatRequest, call: Call) -> TextResult:
        last = request.messages[-1]
        if last.role == "tool":
            return await self._say(f"The tool said: {last.text}", request, call)
        wanted = self._wanted_tool(request, last)
        if wanted is not None:
            await call.emit_tool_call(
                0, id="parrot_call_0", name=wanted.name, arguments=_arguments(wanted, last.text)
            )
            return TextResult(finish_reason="tool_calls", usage=Usage(output_tokens=1))
        return await self._say(last.text, request, call)

    def _wanted_tool(self, request: ChatRequest, last: ChatMessage) -> Tool | None:
        if not request.tools or request.tool_choice == "none" or last.role != "user":
            return None
        by_name = {tool.name: tool for tool in request.tools}
        if request.tool_choice in by_name:
            return by_name[request.tool_choice]
        mentioned = [tool for tool in request.tools if tool.name in last.text]
        if mentioned:
            return mentioned[0]
        return request.tools[0] if request.tool_choice == "required" else None

    async def _say(self, text: str, request: QueryRequest | ChatRequest, call: Call) -> TextResult:
        options: ParrotOptions = request.options or _NO_OPTIONS
        words = " ".join([text] * options.repeat).split()
        if options.shout:
            words = [word.upper() for word in words]
        if request.reasoning is not None:
            await call.emit_reasoning(f"I will repeat {len(words)} words.")
        for index, word in enumerate(words):
            await anyio.sleep(self._pause)
            await call.emit(word if index == 0 else " " + word)
        return TextResult(
            usage=Usage(input_tokens=len(text.split()), output_tokens=len(words)),
            stats=ParrotStats(words=len(words), shouted=options.shout),
        )

    async def embed(self, request: EmbedRequest, call: Call) -> EmbeddingResult:
        raise AssertionError("the core refuses embed before calling the driver")

    async def aclose(self) -> None:
        pass


def _arguments(tool: Tool, text: str) -> str:
    properties: dict[str, Any] = tool.parameters.get("properties", {})
    required = tool.parameters.get("required", [])
    values = {
        name: text
        for name in required
        if isinstance(properties.get(name), dict) and properties[name].get("type") == "string"
    }
    return msgspec.json.encode(values).decode()


class ParrotFactory:
    #: Written for contract version 2 only: a core that loads only version 1 refuses it.
    api_version = 2
    descriptor_type = ParrotDescriptor

    async def open(self, descriptor: Descriptor, context: OpenContext) -> ParrotDriver:
        assert isinstance(descriptor, ParrotDescriptor)
        return ParrotDriver(descriptor)


driver = ParrotFactory()
