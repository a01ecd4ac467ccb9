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

Errors: raise the classes of ``sipp`` (``TransportError``, ``ProtocolError``,
``upstream_error(...)``, ...) with ``raise ... from exc``; set ``retryable``
on an error the core may retry before the first token. HTTP drivers should
use the shared helpers in :mod:`sipp.http`.
"""

from __future__ import annotations

from typing import Final, Literal, Protocol, runtime_checkable

import msgspec

from ._descriptors import Descriptor
from ._models import (
    ChatRequest,
    EmbedRequest,
    LocalStats,
    QueryRequest,
    Timeouts,
    Usage,
)

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
    "TextResult",
]

#: The contract version. The core refuses a factory whose ``api_version`` differs.
DRIVER_API_VERSION: Final = 1

Operation = Literal["query", "chat", "embed"]
ExtrasName = Literal["local", "provider_options", "endpoint_options"]


class Capabilities(msgspec.Struct, frozen=True, kw_only=True):
    """What an opened endpoint can do. The core refuses the rest before any I/O."""

    query: bool = True
    chat: bool = True
    embed: bool = False
    streaming: bool = True
    grammar: bool = False
    usage: bool = False
    #: The per-kind extras argument this endpoint accepts, if any.
    extras: ExtrasName | None = None

    def supports(self, operation: Operation) -> bool:
        return bool(getattr(self, operation))


class TextResult(msgspec.Struct, frozen=True, kw_only=True):
    """What a driver returns for ``query``/``chat``. The text itself went through ``emit``."""

    finish_reason: Literal["stop", "length"] = "stop"
    usage: Usage = Usage()
    response_id: str | None = None
    queue_wait: float | None = None
    local_stats: LocalStats | None = None


class EmbeddingResult(msgspec.Struct, frozen=True, kw_only=True):
    values: list[float]
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


@runtime_checkable
class DriverFactory(Protocol):
    """The object an entry point in ``sipp.drivers`` names."""

    api_version: int
    descriptor_type: type[Descriptor]

    async def open(self, descriptor: Descriptor, context: OpenContext) -> Driver:
        """Do the slow work (load a model, build a pool, check URLs) and return the driver."""
        ...
