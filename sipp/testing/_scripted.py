"""A deterministic driver for tests: scripted tokens, delays and failures.

Register an endpoint with ``{"kind": "scripted", ...}`` (the core's own
``pyproject.toml`` publishes it as the ``scripted`` entry point, so it is
found like any plugin). Without ``reply`` or ``tokens`` it echoes the prompt
(or the last chat message) word by word.
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

import anyio

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

__all__ = ["ScriptedDescriptor", "ScriptedDriver", "ScriptedFactory", "scripted_driver"]

Failure = Literal[
    "transport", "connect", "protocol", "local", "rate_limited", "overloaded", "provider"
]
_WORDS = re.compile(r"\S+\s*|\s+")


class ScriptedDescriptor(Descriptor, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the scripted endpoint does, token by token."""

    kind: Literal["scripted"] = "scripted"
    #: The answer, split into word tokens. Default: echo the input.
    reply: str | None = None
    #: Explicit tokens; wins over ``reply``.
    tokens: list[str] | None = None
    first_token_delay: float = 0.0
    token_delay: float = 0.0
    #: Fail before emitting token number ``fail_at`` (0 = before the first token).
    fail_at: int | None = None
    failure: Failure = "transport"
    #: Fail only the first ``fail_times`` attempts (then succeed); ``None`` = always.
    fail_times: int | None = None
    retry_after: float | None = None
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
    """The opened scripted endpoint. ``active_calls`` and ``closed`` let tests check cleanup."""

    def __init__(self, descriptor: ScriptedDescriptor) -> None:
        self.descriptor = descriptor
        self.capabilities = Capabilities(
            query=True, chat=descriptor.chat, embed=descriptor.embedding is not None, usage=True
        )
        self.timeouts = Timeouts.of(descriptor.timeout) or Timeouts()
        self.retries = descriptor.retries
        self.attempts = 0
        self.active_calls = 0
        self.closed = False

    def _tokens(self, text: str) -> list[str]:
        script = self.descriptor
        if script.tokens is not None:
            return list(script.tokens)
        return _WORDS.findall(script.reply if script.reply is not None else text)

    async def _produce(self, source: str, call: Call) -> TextResult:
        script = self.descriptor
        self.attempts += 1
        self.active_calls += 1
        try:
            failing = script.fail_at is not None and (
                script.fail_times is None or self.attempts <= script.fail_times
            )
            tokens = self._tokens(source)
            if script.first_token_delay:
                await anyio.sleep(script.first_token_delay)
            for index, token in enumerate(tokens):
                if failing and index == script.fail_at:
                    raise _error(script.failure, script.retry_after)
                if index and script.token_delay:
                    await anyio.sleep(script.token_delay)
                await call.emit(token)
            if failing and script.fail_at is not None and script.fail_at >= len(tokens):
                raise _error(script.failure, script.retry_after)
            usage = Usage(
                input_tokens=len(_WORDS.findall(source)),
                output_tokens=len(tokens),
                total_tokens=len(_WORDS.findall(source)) + len(tokens),
            )
            return TextResult(finish_reason=script.finish_reason, usage=usage)
        finally:
            self.active_calls -= 1

    async def query(self, request: QueryRequest, call: Call) -> TextResult:
        return await self._produce(request.prompt, call)

    async def chat(self, request: ChatRequest, call: Call) -> TextResult:
        return await self._produce(request.messages[-1].text, call)

    async def embed(self, request: EmbedRequest, call: Call) -> EmbeddingResult:
        assert self.descriptor.embedding is not None
        self.attempts += 1
        if self.descriptor.first_token_delay:
            await anyio.sleep(self.descriptor.first_token_delay)
        values = list(self.descriptor.embedding)
        return EmbeddingResult(
            values=values,
            usage=Usage(input_tokens=sum(len(text.split()) for text in request.inputs)),
            normalized=False,
        )

    async def aclose(self) -> None:
        self.closed = True


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
