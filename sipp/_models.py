"""Value types: requests, token batches, responses.

All are frozen, keyword-only ``msgspec.Struct``s: cheap to build on the hot
path, immutable once handed to a caller, and JSON-ready with ``msgspec.json``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import msgspec

__all__ = [
    "BatchStats",
    "ChatMessage",
    "ChatRequest",
    "EmbedRequest",
    "EmbeddingResponse",
    "EndpointInfo",
    "FinishReason",
    "LocalOptions",
    "LocalStats",
    "QueryRequest",
    "Role",
    "TextResponse",
    "Timeouts",
    "Timings",
    "TokenBatch",
    "Usage",
]

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length", "cancelled", "error"]


class _Value(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class Timeouts(_Value, frozen=True, kw_only=True):
    """The four time limits, in seconds; ``None`` means no limit for that phase.

    ``connect``: opening the connection. ``first_token``: from the start of an
    attempt to the first token (for a non-streaming request, to the whole
    answer). ``idle``: the longest gap between two tokens (keep-alive comments
    are not progress). ``total``: the whole run, retries included.
    """

    connect: float | None = None
    first_token: float | None = None
    idle: float | None = None
    total: float | None = None

    def __post_init__(self) -> None:
        for name in ("connect", "first_token", "idle", "total"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"timeout {name} must be a positive number of seconds")

    @classmethod
    def of(cls, value: float | Timeouts | None) -> Timeouts | None:
        """A number means connect, first token and idle each get that limit."""
        if value is None or isinstance(value, Timeouts):
            return value
        return cls(connect=value, first_token=value, idle=value)

    def merged_over(self, base: Timeouts) -> Timeouts:
        """These limits, with ``base`` filling the phases left unset."""
        return Timeouts(
            connect=self.connect if self.connect is not None else base.connect,
            first_token=self.first_token if self.first_token is not None else base.first_token,
            idle=self.idle if self.idle is not None else base.idle,
            total=self.total if self.total is not None else base.total,
        )


class ChatMessage(_Value, frozen=True, kw_only=True):
    role: Role
    content: str


class LocalOptions(_Value, frozen=True, kw_only=True):
    """Extras only a local endpoint understands (``local=...``)."""

    context_key: str | None = None
    grammar: str | None = None
    json_schema: dict[str, Any] | None = None
    top_k: int | None = None
    repeat_penalty: float | None = None


def _check_text_options(request: QueryRequest | ChatRequest) -> None:
    if request.max_tokens is not None and request.max_tokens <= 0:
        raise ValueError("max_tokens must be greater than zero")
    if request.temperature is not None and not (
        math.isfinite(request.temperature) and request.temperature >= 0
    ):
        raise ValueError("temperature must be a finite number >= 0")
    if request.top_p is not None and not (math.isfinite(request.top_p) and 0 <= request.top_p <= 1):
        raise ValueError("top_p must be a number between 0 and 1")
    if request.retries is not None and request.retries < 0:
        raise ValueError("retries must be >= 0")


class _TextRequest(_Value, frozen=True, kw_only=True):
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    seed: int | None = None
    emit_tokens: bool = False
    timeout: float | Timeouts | None = None
    retries: int | None = None
    local: LocalOptions | None = None
    provider_options: dict[str, Any] | None = None
    endpoint_options: dict[str, Any] | None = None


class QueryRequest(_TextRequest, frozen=True, kw_only=True):
    """A raw prompt to complete."""

    prompt: str

    def __post_init__(self) -> None:
        _check_text_options(self)


class ChatRequest(_TextRequest, frozen=True, kw_only=True):
    """A conversation to continue."""

    messages: list[ChatMessage]

    def __post_init__(self) -> None:
        if not self.messages:
            raise ValueError("messages must not be empty")
        _check_text_options(self)


class EmbedRequest(_Value, frozen=True, kw_only=True):
    """One string to turn into one vector."""

    input: str
    timeout: float | Timeouts | None = None
    retries: int | None = None
    local: LocalOptions | None = None
    provider_options: dict[str, Any] | None = None
    endpoint_options: dict[str, Any] | None = None


class BatchStats(_Value, frozen=True, kw_only=True):
    """Running totals after a batch."""

    frames_sent: int
    bytes_sent: int
    batches_sent: int


class TokenBatch(_Value, frozen=True, kw_only=True):
    """Tokens as they cross to the reader; ``text`` never splits a UTF-8 character."""

    request_id: str
    stream_id: str
    sequence_start: int
    text: str
    frame_count: int
    byte_count: int
    stats: BatchStats


class Usage(_Value, frozen=True, kw_only=True):
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None


class Timings(_Value, frozen=True, kw_only=True):
    """Seconds; ``None`` where the endpoint could not know."""

    queue_wait: float | None = None
    time_to_first_token: float | None = None
    total: float | None = None
    tokens_per_second: float | None = None


class LocalStats(_Value, frozen=True, kw_only=True):
    """What a local model did for one request."""

    prompt_tokens: int = 0
    generated_tokens: int = 0
    cached_prefix_tokens: int = 0
    prompt_seconds: float = 0.0
    decode_seconds: float = 0.0
    time_to_first_token: float | None = None
    tokens_per_second: float | None = None


class EndpointInfo(_Value, frozen=True, kw_only=True):
    kind: str
    name: str


class TextResponse(_Value, frozen=True, kw_only=True):
    endpoint: EndpointInfo
    text: str
    finish_reason: FinishReason
    usage: Usage = Usage()
    id: str | None = None
    request_id: str = ""
    timings: Timings = Timings()
    local_stats: LocalStats | None = None


class EmbeddingResponse(_Value, frozen=True, kw_only=True):
    endpoint: EndpointInfo
    values: list[float]
    usage: Usage = Usage()
    pooling: str | None = None
    normalized: bool | None = None
    id: str | None = None
    request_id: str = ""
