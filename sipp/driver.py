"""The driver contract, for people who write drivers.

A driver turns one request into token batches and a final result for one kind
of endpoint. The core owns everything around it: the task and its cancel
scope, the token queue, validation of the common options, the four timeouts,
retries and the response object. A driver only

* declares a :class:`DriverFactory` (its API version, its descriptor type and
  an async ``open``), published as an entry point in the ``sipp.drivers``
  group, and
* returns from ``open`` a :class:`Driver` that produces text through
  :meth:`Call.emit` and returns a :class:`TextResult` or
  :class:`EmbeddingResult`, and closes its resources in ``aclose``.

Entry-point names: a descriptor of kind ``provider`` resolves to
``provider.<provider>``; any other kind ``K`` to ``K``. A minimal driver::

    class EchoDriver:
        capabilities = Capabilities(query=True, chat=False)
        timeouts = Timeouts()
        retries = 0

        async def query(self, request, call):
            for word in request.prompt.split():
                await call.emit(word + " ")
            return TextResult(finish_reason="stop")

        ...

Contract versions: a factory declares the version it was written for in
``api_version`` (or several in ``api_versions``); the core loads versions 1
and 2. Version 2 adds, all optional so a version 1 driver keeps working:

* capabilities ``tools``, ``structured_output``, ``vision``, ``reasoning`` and
  ``embed_batch``: the core refuses requests that need one the endpoint lacks;
* :meth:`Call.emit_reasoning` and :meth:`Call.emit_tool_call`, so reasoning
  text and tool calls stream in the model's order alongside the answer;
* ``Driver.options_type``: the driver's own per-request options (a msgspec
  Struct, or ``dict`` for free-form pass-through), which the core converts
  and validates before any I/O and hands over as ``request.options``, and
  ``Driver.options_keyword``, an extra keyword name users may pass them under
  (``local=`` for the llama driver); ``TextResult.stats``, the driver's own
  statistics, which reach the caller as ``TextResponse.stats``.

Errors: raise the classes of ``sipp`` (``TransportError``, ``ProtocolError``,
``upstream_error(...)``, ...) with ``raise ... from exc``. Whether the core
may retry one (before the first token) is decided in one place,
:func:`is_retryable`, from the error's kind and status when it is built; a
driver overrides ``retryable`` only when it knows better. HTTP drivers should
use the shared helpers in :mod:`sipp.http`.
"""

from __future__ import annotations

from typing import Any, Final, Literal, Protocol, runtime_checkable

import msgspec

from ._descriptors import Descriptor
from ._models import (
    ChatRequest,
    EmbedRequest,
    QueryRequest,
    Timeouts,
    Usage,
)
from ._retry import is_retryable

__all__ = [
    "DRIVER_API_VERSION",
    "Call",
    "Capabilities",
    "Driver",
    "DriverFactory",
    "EmbeddingResult",
    "ExtrasName",
    "OpenContext",
    "Operation",
    "SUPPORTED_API_VERSIONS",
    "TextResult",
    "is_retryable",
]

#: The newest contract version, the one this module documents.
DRIVER_API_VERSION: Final = 2
#: Every version the core loads; a factory declaring none of these is refused.
SUPPORTED_API_VERSIONS: Final = frozenset({1, 2})

Operation = Literal["query", "chat", "embed"]
#: Version 1's names for per-request extras; version 2 drivers set ``options_keyword``.
ExtrasName = Literal["local", "provider_options", "endpoint_options"]


class Capabilities(msgspec.Struct, frozen=True, kw_only=True):
    """What an opened endpoint can do. The core refuses the rest before any I/O."""

    query: bool = True
    chat: bool = True
    embed: bool = False
    streaming: bool = True
    grammar: bool = False
    usage: bool = False
    #: Version 1: the per-kind extras keyword this endpoint accepts, if any.
    extras: ExtrasName | None = None
    #: Function calling (``tools=``, ``tool_choice=``, tool-call deltas).
    tools: bool = False
    #: Answers constrained to a JSON schema (``output=``).
    structured_output: bool = False
    #: Image parts in chat messages.
    vision: bool = False
    #: ``reasoning=`` settings, and reasoning text streamed apart from the answer.
    reasoning: bool = False
    #: Several inputs embedded in one call.
    embed_batch: bool = False

    def supports(self, operation: Operation) -> bool:
        return bool(getattr(self, operation))


class TextResult(msgspec.Struct, frozen=True, kw_only=True):
    """What a driver returns for ``query``/``chat``.

    The text, reasoning and tool calls themselves went through ``emit*``: the
    core builds the response from what was emitted, so the stream and the
    response can never differ.
    """

    finish_reason: Literal["stop", "length", "tool_calls"] = "stop"
    usage: Usage = Usage()
    response_id: str | None = None
    queue_wait: float | None = None
    #: The driver's own statistics, handed to the caller as ``TextResponse.stats``.
    stats: Any = None


class EmbeddingResult(msgspec.Struct, frozen=True, kw_only=True):
    """One vector (``values``) or one per input (``vectors``), in input order."""

    values: list[float] | None = None
    vectors: list[list[float]] | None = None
    usage: Usage = Usage()
    pooling: str | None = None
    normalized: bool | None = None
    response_id: str | None = None


class Call(Protocol):
    """The core's side of one attempt, handed to the driver."""

    #: The run's id; send it upstream where the transport has a place for it.
    request_id: str
    #: Whether the caller asked for token streaming (``emit_tokens``).
    stream: bool
    #: The limits in force; the driver applies ``connect`` to its transport,
    #: the core enforces the other three.
    timeouts: Timeouts
    #: 0 for the first attempt, then 1, 2, ... on retries.
    attempt: int

    async def emit(self, text: str, frames: int = 1) -> None:
        """Hand ``text`` (``frames`` tokens) to the reader. Never blocks on a slow reader."""
        ...

    async def emit_reasoning(self, text: str, frames: int = 1) -> None:
        """Hand reasoning text to the reader, apart from the answer (contract v2)."""
        ...

    async def emit_tool_call(
        self, index: int, *, id: str | None = None, name: str | None = None, arguments: str = ""
    ) -> None:
        """Hand a piece of tool call ``index`` to the reader (contract v2).

        Give ``id`` and ``name`` with a call's first piece and its JSON
        arguments in as many pieces as the model produced them (a driver whose
        upstream is not streaming emits each call whole, once).
        """
        ...

    @property
    def cancel_requested(self) -> bool:
        """True once the run is cancelled; safe to read from any thread."""
        ...


@runtime_checkable
class Driver(Protocol):
    """One opened endpoint."""

    capabilities: Capabilities
    #: Endpoint-level limits (per-request ones are merged over these).
    timeouts: Timeouts
    #: Extra attempts allowed before the first token (0 turns retrying off).
    retries: int

    async def query(self, request: QueryRequest, call: Call) -> TextResult: ...

    async def chat(self, request: ChatRequest, call: Call) -> TextResult: ...

    async def embed(self, request: EmbedRequest, call: Call) -> EmbeddingResult: ...

    async def aclose(self) -> None:
        """Release everything; must close even when it fails, and be idempotent."""
        ...


class OpenContext(msgspec.Struct, frozen=True, kw_only=True):
    """What ``DriverFactory.open`` learns about the endpoint it builds."""

    name: str
    #: Whether a human is watching (the command line): show load progress on stderr.
    show_progress: bool = False
    #: Objects the application hands the driver at ``client.add(..., extensions=)``
    #: that are not configuration (a shared store, an observer). Like httpx's
    #: ``Request.extensions``: each driver documents the keys it reads, under its
    #: own package name, and the core never looks inside.
    extensions: dict[str, Any] = {}


@runtime_checkable
class DriverFactory(Protocol):
    """The object an entry point in ``sipp.drivers`` names."""

    #: The contract version this driver was written for (see ``SUPPORTED_API_VERSIONS``).
    #: A driver written for several may instead set ``api_versions``.
    api_version: int
    descriptor_type: type[Descriptor]

    async def open(self, descriptor: Descriptor, context: OpenContext) -> Driver:
        """Do the slow work (load a model, build a pool, check URLs) and return the driver."""
        ...
