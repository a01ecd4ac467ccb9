"""The local driver's own types: its descriptor, per-request options and statistics.

They live here, in the driver that owns their fields, not in the core: the
core hands ``local=`` / ``options=`` values to this driver converted into
:class:`LocalOptions`, and passes :class:`LocalStats` through to callers as
``TextResponse.stats``.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from sipp import Descriptor, Timeouts

__all__ = ["LocalDescriptor", "LocalOptions", "LocalStats"]


class LocalDescriptor(Descriptor, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A GGUF model run in-process. Option names follow llama.cpp's own."""

    kind: Literal["local"] = "local"
    source: str
    n_ctx: int | None = None
    n_threads: int | None = None
    n_threads_batch: int | None = None
    n_batch: int | None = None
    n_gpu_layers: int = 0
    #: llama.cpp's flash attention: True on, False off, None llama.cpp's own
    #: choice ("auto": on where the backend supports it, which includes CPUs).
    flash_attn: bool | None = None
    n_parallel: int = 4
    embeddings: bool = False
    #: Sequences reserved for embeddings: how many inputs of one call decode together
    #: (each costs a sequence's share of the cache, like a text slot).
    n_seq_embed: int = 4
    chat_template: str | None = None
    #: The tags a thinking model wraps its reasoning in (streamed as reasoning,
    #: never as answer text); None when the model does not think in tags.
    reasoning_tags: tuple[str, str] | None = ("<think>", "</think>")
    #: A multimodal projector (``mmproj-*.gguf``) for models that see images.
    #: Reserved: opening an endpoint with one fails until the driver evaluates
    #: images; without one, image parts are refused before any work.
    mmproj: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    repeat_penalty: float | None = None
    seed: int | None = None
    max_queue: int = 64
    #: Seconds between two hand-offs of a stream's text from the worker thread to
    #: the event loop; the first text goes at once. Each hand-off costs the decode
    #: thread the loop's work (see docs/local-driver.md, Performance); 0 hands
    #: over every token as it comes.
    stream_interval: float = 0.05
    timeout: float | Timeouts | None = None
    verbose: bool = False


class LocalOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Per-request options of a local endpoint (``local=...`` or ``options=...``)."""

    context_key: str | None = None
    grammar: str | None = None
    json_schema: dict[str, Any] | None = None
    top_k: int | None = None
    repeat_penalty: float | None = None
    #: Whether one answer may hold several tool calls (False: at most one per turn;
    #: small models given the choice tend to repeat a call).
    parallel_tool_calls: bool = True


class LocalStats(msgspec.Struct, frozen=True, kw_only=True):
    """What a local model did for one request (``response.stats``)."""

    prompt_tokens: int = 0
    generated_tokens: int = 0
    cached_prefix_tokens: int = 0
    prompt_seconds: float = 0.0
    decode_seconds: float = 0.0
    time_to_first_token: float | None = None
    tokens_per_second: float | None = None
