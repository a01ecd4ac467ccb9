"""Value types: requests, token batches, responses.

All are frozen, keyword-only ``msgspec.Struct``s: cheap to build on the hot
path, immutable once handed to a caller, and JSON-ready with ``msgspec.json``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import msgspec

from ._chat import ChatMessage, ReasoningOptions, Tool, ToolCall, ToolCallDelta

__all__ = [
    "BatchStats",
    "ChatRequest",
    "EmbedRequest",
    "EmbeddingResponse",
    "EndpointInfo",
    "FinishReason",
    "QueryRequest",
    "TextResponse",
    "Timeouts",
    "Timings",
    "TokenBatch",
    "Usage",
]

FinishReason = Literal["stop", "length", "tool_calls", "cancelled", "error"]


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
    tools = request.tools
    if tools:
        names = [tool.name for tool in tools]
        if len(set(names)) != len(names):
            raise ValueError("tools must have distinct names")
    choice = request.tool_choice
    if (
        choice is not None
        and choice not in _TOOL_CHOICE_WORDS
        and (not tools or choice not in {tool.name for tool in tools})
    ):
        raise ValueError(
            "tool_choice must be 'auto', 'none', 'required' or the name of one of the tools"
        )


_TOOL_CHOICE_WORDS = frozenset({"auto", "none", "required"})


def _v1_options(request: Any) -> dict[str, Any] | None:
    """``provider_options`` / ``endpoint_options``, read-only: a contract-v1 driver reads
    its free-form options under the keyword it declared; v2 hands every driver ``options``."""
    return request.options if isinstance(request.options, dict) else None


class _TextRequest(_Value, frozen=True, kw_only=True):
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    seed: int | None = None
    emit_tokens: bool = False
    timeout: float | Timeouts | None = None
    retries: int | None = None
    #: Functions the model may call, and whether/which it must.
    tools: list[Tool] | None = None
    tool_choice: str | None = None
    #: A JSON schema the answer must match (``output=`` on the client fills it in).
    output_schema: dict[str, Any] | None = None
    reasoning: ReasoningOptions | None = None
    #: The endpoint's own per-request options: a value of its driver's
    #: ``options_type`` once the client has checked it (a dict before).
    options: Any = None

    # Contract v1 names (see ``_v1_options``).
    provider_options = property(_v1_options)
    endpoint_options = property(_v1_options)


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
    """One string to turn into one vector, or a list of strings into one vector each."""

    input: str | list[str]
    timeout: float | Timeouts | None = None
    retries: int | None = None
    options: Any = None

    # Contract v1 names (see ``_v1_options``).
    provider_options = property(_v1_options)
    endpoint_options = property(_v1_options)

    def __post_init__(self) -> None:
        if isinstance(self.input, list) and not self.input:
            raise ValueError("input must not be an empty list")

    @property
    def inputs(self) -> list[str]:
        """The input as a list (one string becomes a list of one)."""
        return [self.input] if isinstance(self.input, str) else self.input


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
    #: Reasoning text produced in this batch (never part of ``text``).
    reasoning: str = ""
    #: Tool-call pieces in this batch; pieces of one ``index`` are already merged.
    tool_calls: tuple[ToolCallDelta, ...] = ()


class Usage(_Value, frozen=True, kw_only=True):
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    reasoning_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None

    def __add__(self, other: Usage) -> Usage:
        """Counts summed field by field; a field unknown on both sides stays unknown."""
        return Usage(
            **{
                name: _add(getattr(self, name), getattr(other, name))
                for name in self.__struct_fields__
            }
        )


def _add(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else a + b


class Timings(_Value, frozen=True, kw_only=True):
    """Seconds; ``None`` where the endpoint could not know."""

    queue_wait: float | None = None
    time_to_first_token: float | None = None
    total: float | None = None
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
    #: What the model reasoned before answering, or ``None`` when it did not.
    reasoning: str | None = None
    #: The calls the model asked for, in its order (``finish_reason == "tool_calls"``).
    tool_calls: list[ToolCall] = msgspec.field(default_factory=list)
    #: The validated value when ``output=`` was given, else ``None``.
    parsed: Any = None
    #: Messages a tool loop appended (``run_tools``), else ``None``.
    transcript: list[ChatMessage] | None = None
    #: The endpoint's own statistics (a value of its driver's stats type), if any.
    stats: Any = None

    @property
    def message(self) -> ChatMessage:
        """The assistant turn to append to the conversation, tool calls included."""
        return ChatMessage(
            role="assistant", content=self.text, tool_calls=list(self.tool_calls) or None
        )


class EmbeddingResponse(_Value, frozen=True, kw_only=True):
    """``vectors`` holds one vector per input, in order; ``values`` is the first."""

    endpoint: EndpointInfo
    values: list[float]
    vectors: list[list[float]] = msgspec.field(default_factory=list)
    usage: Usage = Usage()
    pooling: str | None = None
    normalized: bool | None = None
    id: str | None = None
    request_id: str = ""
