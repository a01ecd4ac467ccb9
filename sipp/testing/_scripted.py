"""A deterministic driver for tests: scripted tokens, delays, failures, tool calls, reasoning.

Register an endpoint with ``{"kind": "scripted", ...}`` (the core's own
``pyproject.toml`` publishes it as the ``scripted`` entry point, so it is
found like any plugin). Without ``reply`` or ``tokens`` it echoes the prompt
(or the last chat message's text) word by word.

A conversation is scripted with ``turns``: a chat request is answered by
turn number *n*, where *n* is the number of assistant messages already in
the conversation (the last turn repeats past the end), so a tool loop gets
its tool calls first and its answer after the tool results, and concurrent
conversations never disturb each other::

    {"kind": "scripted", "turns": [
        {"tool_calls": [{"name": "weather", "arguments": {"city": "Oslo"}}]},
        {"reasoning": "It rains.", "reply": "Take an umbrella."},
    ]}

A turn's ``reply_json`` is a value sent as its JSON text (a structured
reply). The endpoint declares every capability of contract v2 (tools,
structured output, vision, reasoning, batch embeddings) unless listed in
``without``.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

import anyio
import msgspec

from .._descriptors import Descriptor
from .._errors import (
    ConnectError,
    LocalModelError,
    ProtocolError,
    SippError,
    TransportError,
    upstream_error,
)
from .._models import ChatRequest, EmbedRequest, QueryRequest, Timeouts, Usage
from ..driver import (
    DRIVER_API_VERSION,
    Call,
    Capabilities,
    EmbeddingResult,
    OpenContext,
    TextResult,
)

__all__ = [
    "ScriptedDescriptor",
    "ScriptedDriver",
    "ScriptedFactory",
    "ScriptedToolCall",
    "ScriptedTurn",
    "scripted_driver",
]

Failure = Literal[
    "transport", "connect", "protocol", "local", "rate_limited", "overloaded", "provider"
]
_WORDS = re.compile(r"\S+\s*|\s+")
Capability = Literal["tools", "structured_output", "vision", "reasoning", "embed_batch"]


class ScriptedToolCall(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A call the scripted model asks for; ``arguments`` as data or as raw JSON text."""

    name: str
    arguments: dict[str, Any] | str = msgspec.field(default_factory=dict)
    #: Default ``call_<turn>_<index>``.
    id: str | None = None


class ScriptedTurn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One answer of the scripted model: reasoning, then text, then tool calls."""

    reply: str | None = None
    #: Any JSON-ready value, sent as its JSON text (wins over ``reply``).
    reply_json: Any = None
    reasoning: str | None = None
    tool_calls: list[ScriptedToolCall] | None = None


class ScriptedDescriptor(Descriptor, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the scripted endpoint does, token by token."""

    kind: Literal["scripted"] = "scripted"
    #: The answer, split into word tokens. Default: echo the input.
    reply: str | None = None
    #: Explicit tokens; wins over ``reply``.
    tokens: list[str] | None = None
    #: A JSON-ready value sent as its JSON text (a structured reply; wins over ``reply``).
    reply_json: Any = None
    #: Reasoning text streamed (word by word) before the answer.
    reasoning: str | None = None
    #: A conversation's answers, by the number of assistant turns so far (module docstring).
    turns: list[ScriptedTurn] | None = None
    #: Capabilities of contract v2 this endpoint should lack (to test refusals).
    without: list[Capability] = msgspec.field(default_factory=list)
    first_token_delay: float = 0.0
    token_delay: float = 0.0
    #: Fail before emitting token number ``fail_at`` (0 = before the first token).
    fail_at: int | None = None
    failure: Failure = "transport"
    #: Fail only the first ``fail_times`` attempts (then succeed); ``None`` = always.
    fail_times: int | None = None
    retry_after: float | None = None
    #: For answers without tool calls (a turn with tool calls finishes with ``tool_calls``).
    finish_reason: Literal["stop", "length"] = "stop"
    chat: bool = True
    embedding: list[float] | None = None
    timeout: float | Timeouts | None = None
    retries: int = 0


def _error(kind: Failure, retry_after: float | None) -> SippError:
    if kind == "transport":
        return TransportError("scripted transport failure")
    if kind == "connect":
        return ConnectError("scripted connect failure")
    if kind == "protocol":
        return ProtocolError("scripted stream ended without its terminal event")
    if kind == "local":
        return LocalModelError("scripted decode failure")
    status = {"rate_limited": 429, "overloaded": 503, "provider": 500}[kind]
    return upstream_error(
        "provider", kind, f"scripted {kind}", status=status, retry_after=retry_after
    )


class ScriptedDriver:
    """The opened scripted endpoint. ``active_calls`` and ``closed`` let tests check cleanup.

    ``requests`` keeps every request it was given, so tests can check what the
    core sent (tools, images, options, ...).
    """

    def __init__(self, descriptor: ScriptedDescriptor) -> None:
        self.descriptor = descriptor
        lacking = set(descriptor.without)
        self.capabilities = Capabilities(
            query=True,
            chat=descriptor.chat,
            embed=descriptor.embedding is not None,
            usage=True,
            tools="tools" not in lacking,
            structured_output="structured_output" not in lacking,
            vision="vision" not in lacking,
            reasoning="reasoning" not in lacking,
            embed_batch=descriptor.embedding is not None and "embed_batch" not in lacking,
        )
        self.timeouts = Timeouts.of(descriptor.timeout) or Timeouts()
        self.retries = descriptor.retries
        self.attempts = 0
        self.active_calls = 0
        self.closed = False
        self.requests: list[QueryRequest | ChatRequest | EmbedRequest] = []

    def _turn(self, request: QueryRequest | ChatRequest) -> ScriptedTurn:
        script = self.descriptor
        if script.turns:
            done = 0
            if isinstance(request, ChatRequest):
                done = sum(1 for message in request.messages if message.role == "assistant")
            return script.turns[min(done, len(script.turns) - 1)]
        return ScriptedTurn(
            reply=script.reply, reply_json=script.reply_json, reasoning=script.reasoning
        )

    def _tokens(self, text: str, turn: ScriptedTurn) -> list[str]:
        script = self.descriptor
        if turn.reply_json is not None:
            return [msgspec.json.encode(turn.reply_json).decode()]
        if script.tokens is not None and not script.turns:
            return list(script.tokens)
        if turn.reply is not None:
            return _WORDS.findall(turn.reply)
        if turn.tool_calls and script.turns:
            return []  # a turn of only tool calls has no text
        return _WORDS.findall(text)

    async def _produce(
        self, source: str, request: QueryRequest | ChatRequest, call: Call
    ) -> TextResult:
        script = self.descriptor
        self.attempts += 1
        self.active_calls += 1
        self.requests.append(request)
        try:
            failing = script.fail_at is not None and (
                script.fail_times is None or self.attempts <= script.fail_times
            )
            turn = self._turn(request)
            tokens = self._tokens(source, turn)
            thoughts = _WORDS.findall(turn.reasoning) if turn.reasoning else []
            if script.first_token_delay:
                await anyio.sleep(script.first_token_delay)
            for thought in thoughts:
                await call.emit_reasoning(thought)
            for index, token in enumerate(tokens):
                if failing and index == script.fail_at:
                    raise _error(script.failure, script.retry_after)
                if index and script.token_delay:
                    await anyio.sleep(script.token_delay)
                await call.emit(token)
            if failing and script.fail_at is not None and script.fail_at >= len(tokens):
                raise _error(script.failure, script.retry_after)
            calls = turn.tool_calls if request.tools and request.tool_choice != "none" else None
            for index, tool_call in enumerate(calls or ()):
                await _emit_call(call, index, tool_call, self._turn_number(request))
            inputs = len(_WORDS.findall(source))
            outputs = len(tokens) + len(thoughts)
            usage = Usage(
                input_tokens=inputs,
                output_tokens=outputs,
                total_tokens=inputs + outputs,
                reasoning_tokens=len(thoughts) if thoughts else None,
            )
            finish = "tool_calls" if calls else script.finish_reason
            return TextResult(finish_reason=finish, usage=usage)
        finally:
            self.active_calls -= 1

    def _turn_number(self, request: QueryRequest | ChatRequest) -> int:
        if isinstance(request, ChatRequest):
            return sum(1 for message in request.messages if message.role == "assistant")
        return 0

    async def query(self, request: QueryRequest, call: Call) -> TextResult:
        return await self._produce(request.prompt, request, call)

    async def chat(self, request: ChatRequest, call: Call) -> TextResult:
        return await self._produce(request.messages[-1].text, request, call)

    async def embed(self, request: EmbedRequest, call: Call) -> EmbeddingResult:
        assert self.descriptor.embedding is not None
        self.attempts += 1
        self.requests.append(request)
        if self.descriptor.first_token_delay:
            await anyio.sleep(self.descriptor.first_token_delay)
        values = list(self.descriptor.embedding)
        usage = Usage(input_tokens=sum(len(text.split()) for text in request.inputs))
        if isinstance(request.input, str):
            return EmbeddingResult(values=values, usage=usage, normalized=False)
        # One vector per input; the input's position is added so they differ.
        vectors = [[value + index for value in values] for index in range(len(request.inputs))]
        return EmbeddingResult(vectors=vectors, usage=usage, normalized=False)

    async def aclose(self) -> None:
        self.closed = True


async def _emit_call(call: Call, index: int, tool_call: ScriptedToolCall, turn: int) -> None:
    """A call in two pieces (id and name with the first), as streaming providers send them."""
    arguments = tool_call.arguments
    text = arguments if isinstance(arguments, str) else msgspec.json.encode(arguments).decode()
    half = len(text) // 2
    call_id = tool_call.id or f"call_{turn}_{index}"
    await call.emit_tool_call(index, id=call_id, name=tool_call.name, arguments=text[:half])
    await call.emit_tool_call(index, arguments=text[half:])


class ScriptedFactory:
    """The ``scripted`` driver factory; ``opened`` keeps every driver it built, for tests."""

    api_version: ClassVar[int] = DRIVER_API_VERSION
    descriptor_type = ScriptedDescriptor

    def __init__(self) -> None:
        self.opened: list[ScriptedDriver] = []

    async def open(self, descriptor: Descriptor, context: OpenContext) -> ScriptedDriver:
        assert isinstance(descriptor, ScriptedDescriptor)
        driver = ScriptedDriver(descriptor)
        self.opened.append(driver)
        return driver


scripted_driver = ScriptedFactory()
