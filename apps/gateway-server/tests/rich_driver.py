"""A test driver that answers with every rich-chat piece the surfaces must carry.

The core's scripted driver streams plain text; this one, registered as kind
``rich`` in the gateway process (``rich_gateway.py``), decides from the
request what to produce, so a test can check that each field went through
the surface's decoder and comes back through its encoder:

* tools (and ``tool_choice`` not ``none``), and no tool result yet: it
  reasons ``"choosing a tool"``, then calls the forced tool (or the first one)
  with arguments built from its schema, streamed in three pieces;
  ``finish_reason`` ``tool_calls``;
* a tool result in the conversation: ``"tool said: <result>"``;
* ``output_schema``: a JSON object matching the schema, in pieces;
* ``reasoning``: reasons ``"thinking <effort or budget>"``, then answers;
* otherwise it echoes the last message's text word by word, followed by
  ``[images: N]`` when the message held images (their bytes are checked);
* embeddings: ``[len(text), index, 0.5]`` per input.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

import anyio
import msgspec

from sipp import (
    ChatRequest,
    Descriptor,
    EmbedRequest,
    ImagePart,
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

_WORDS = re.compile(r"\S+\s*|\s+")


class RichDescriptor(Descriptor, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: Literal["rich"] = "rich"
    token_delay: float = 0.0


def _sample(schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: _sample(sub) for name, sub in props.items()}
    if kind == "array":
        return [_sample(schema.get("items", {}))]
    if "enum" in schema:
        return schema["enum"][0]
    return {"string": "Paris", "integer": 3, "number": 1.5, "boolean": True}.get(str(kind))


def _pieces(text: str, count: int = 3) -> list[str]:
    step = max(1, -(-len(text) // count))
    return [text[i : i + step] for i in range(0, len(text), step)]


class RichDriver:
    def __init__(self, descriptor: RichDescriptor) -> None:
        self.descriptor = descriptor
        self.capabilities = Capabilities(
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

    async def _say(self, text: str, call: Call) -> int:
        tokens = _WORDS.findall(text)
        for index, token in enumerate(tokens):
            if index and self.descriptor.token_delay:
                await anyio.sleep(self.descriptor.token_delay)
            await call.emit(token)
        return len(tokens)

    async def query(self, request: QueryRequest, call: Call) -> TextResult:
        out = await self._say(request.prompt, call)
        return self._result("stop", request.prompt, out)

    def _result(
        self, reason: Any, source: str, out: int, reasoning: int | None = None
    ) -> TextResult:
        used = len(_WORDS.findall(source))
        usage = Usage(
            input_tokens=used,
            output_tokens=out,
            total_tokens=used + out,
            reasoning_tokens=reasoning,
        )
        return TextResult(finish_reason=reason, usage=usage)

    async def chat(self, request: ChatRequest, call: Call) -> TextResult:
        last = request.messages[-1]
        source = " ".join(m.text for m in request.messages)
        results = [m for m in request.messages if m.role == "tool"]
        if request.tools and request.tool_choice != "none" and not results:
            await call.emit_reasoning("choosing a tool")
            choice = request.tool_choice
            tool = next((t for t in request.tools if t.name == choice), request.tools[0])
            arguments = msgspec.json.encode(_sample(tool.parameters)).decode()
            for number, piece in enumerate(_pieces(arguments)):
                if number == 0:
                    await call.emit_tool_call(0, id="call_rich_0", name=tool.name, arguments=piece)
                else:
                    await call.emit_tool_call(0, arguments=piece)
            return self._result("tool_calls", source, 3, reasoning=3)
        if results:
            out = await self._say(f"tool said: {results[-1].text}", call)
            return self._result("stop", source, out)
        if request.output_schema is not None:
            answer = msgspec.json.encode(_sample(request.output_schema)).decode()
            for piece in _pieces(answer):
                await call.emit(piece)
            return self._result("stop", source, 3)
        reasoning = None
        if request.reasoning is not None:
            how = request.reasoning.effort or request.reasoning.budget_tokens
            await call.emit_reasoning(f"thinking {how}")
            reasoning = 2
        text = last.text
        images = [p for p in last.content if isinstance(p, ImagePart)] if last.has_images else []
        if images:
            sizes = ",".join(str(len(p.data)) if p.data else p.url or "" for p in images)
            text = f"{text} [images: {len(images)} {sizes}]"
        out = await self._say(text, call)
        return self._result("stop", source, out, reasoning)

    async def embed(self, request: EmbedRequest, call: Call) -> EmbeddingResult:
        vectors = [[float(len(t)), float(i), 0.5] for i, t in enumerate(request.inputs)]
        usage = Usage(input_tokens=sum(len(t.split()) for t in request.inputs))
        if isinstance(request.input, str):
            return EmbeddingResult(values=vectors[0], usage=usage)
        return EmbeddingResult(vectors=vectors, usage=usage)

    async def aclose(self) -> None:
        return None


class RichFactory:
    api_version: ClassVar[int] = DRIVER_API_VERSION
    descriptor_type = RichDescriptor

    async def open(self, descriptor: Descriptor, context: OpenContext) -> RichDriver:
        assert isinstance(descriptor, RichDescriptor)
        return RichDriver(descriptor)


rich_driver = RichFactory()
