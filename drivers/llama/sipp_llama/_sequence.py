"""One request on the worker: its job (shared with the loop) and its sampler.

A :class:`TextJob` is created on the loop and handed to the worker; from then
on only the worker touches it, except ``cancel()`` (a flag, safe from any
thread) and the mailbox (thread-safe by design).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import llama_cpp as ll

from sipp import InvalidRequestError
from sipp.driver import EmbeddingResult, TextResult

from ._handoff import Mailbox
from ._native import NativeModel
from ._text import TextAssembler
from ._toolgrammar import schema_grammar
from ._types import LocalOptions

__all__ = ["EmbedJob", "Sampling", "TextJob", "build_sampler"]

_DEFAULT_TEMPERATURE = 0.8
_DEFAULT_TOP_P = 0.95
_DEFAULT_TOP_K = 40
_PENALTY_WINDOW = 64


class Sampling:
    """Resolved sampling settings: request, then descriptor, then defaults."""

    __slots__ = ("grammar", "repeat_penalty", "seed", "temperature", "top_k", "top_p")

    def __init__(
        self,
        *,
        temperature: float | None,
        top_p: float | None,
        top_k: int | None,
        repeat_penalty: float | None,
        seed: int | None,
        grammar: str | None,
    ) -> None:
        self.temperature = _DEFAULT_TEMPERATURE if temperature is None else temperature
        self.top_p = _DEFAULT_TOP_P if top_p is None else top_p
        self.top_k = _DEFAULT_TOP_K if top_k is None else top_k
        self.repeat_penalty = 1.0 if repeat_penalty is None else repeat_penalty
        self.seed = ll.LLAMA_DEFAULT_SEED if seed is None else seed & 0xFFFFFFFF
        self.grammar = grammar


def grammar_of(options: LocalOptions | None) -> str | None:
    """The GBNF for ``grammar`` or ``json_schema`` (not both)."""
    if options is None:
        return None
    if options.grammar is not None and options.json_schema is not None:
        raise InvalidRequestError(
            "pass either grammar or json_schema, not both", field="local.json_schema"
        )
    if options.json_schema is not None:
        return schema_grammar(options.json_schema, "local.json_schema")
    return options.grammar


def build_sampler(model: NativeModel, sampling: Sampling) -> Any:
    """A llama.cpp sampler chain for one request (the caller frees it)."""
    chain = ll.llama_sampler_chain_init(ll.llama_sampler_chain_default_params())
    if sampling.grammar:
        grammar = ll.llama_sampler_init_grammar(model.vocab, sampling.grammar.encode(), b"root")
        if not grammar:
            ll.llama_sampler_free(chain)
            raise InvalidRequestError(
                "the grammar does not parse as GBNF with a `root` rule", field="local.grammar"
            )
        ll.llama_sampler_chain_add(chain, grammar)
    if sampling.repeat_penalty != 1.0:
        ll.llama_sampler_chain_add(
            chain,
            ll.llama_sampler_init_penalties(
                model.n_vocab, _PENALTY_WINDOW, sampling.repeat_penalty, 0.0, 0.0
            ),
        )
    if sampling.temperature <= 0:
        ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_greedy())
        return chain
    if sampling.top_k > 0:
        ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_top_k(sampling.top_k))
    if sampling.top_p < 1.0:
        ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_top_p(sampling.top_p, 1))
    ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_temp(sampling.temperature))
    ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_dist(sampling.seed))
    return chain


class _Job:
    __slots__ = ("_cancelled", "_external_cancel", "admitted_at", "context_key", "submitted_at")

    def __init__(self, external_cancel: Callable[[], bool], context_key: str | None) -> None:
        self._cancelled = False
        self._external_cancel = external_cancel
        self.context_key = context_key
        self.submitted_at = time.perf_counter()
        self.admitted_at: float | None = None

    def cancel(self) -> None:
        """Ask the worker to drop this job; safe from any thread."""
        self._cancelled = True

    @property
    def cancelled(self) -> bool:
        # ``call.cancel_requested`` flips the moment the run is cancelled, before
        # the loop has even delivered the cancellation to our task.
        return self._cancelled or self._external_cancel()


class TextJob(_Job):
    """A query or chat on its way through the worker."""

    __slots__ = (
        "add_special",
        "assembler",
        "cached_prefix",
        "close_reasoning",
        "decode_started",
        "first_token_at",
        "forced",
        "generated",
        "mailbox",
        "max_tokens",
        "n_past",
        "prompt",
        "prompt_done_at",
        "prompt_text",
        "sampler",
        "sampling",
        "slot",
        "tokens",
        "unsent_frames",
    )

    def __init__(
        self,
        prompt_text: str,
        *,
        add_special: bool,
        sampling: Sampling,
        max_tokens: int | None,
        stop: list[str] | None,
        context_key: str | None,
        external_cancel: Callable[[], bool],
        stream_interval: float = 0.0,
    ) -> None:
        super().__init__(external_cancel, context_key)
        self.prompt_text = prompt_text
        self.add_special = add_special
        self.sampling = sampling
        self.max_tokens = max_tokens
        self.assembler = TextAssembler(stop)
        self.mailbox: Mailbox[TextResult] = Mailbox(stream_interval)
        # Worker-side state, filled in at admission.
        self.prompt: list[int] = []
        #: Every token whose state is in the cache (prompt, then generated ones fed back).
        self.tokens: list[int] = []
        self.n_past = 0
        self.cached_prefix = 0
        self.generated = 0
        #: Tokens sampled since text was last handed over (a token may carry no text yet).
        self.unsent_frames = 0
        self.sampler: Any = None
        self.slot = -1
        self.decode_started: float | None = None
        self.prompt_done_at: float | None = None
        self.first_token_at: float | None = None
        #: Set by the loop when the reasoning budget is spent: text the worker writes
        #: next instead of sampling (the close tag), then the model goes on.
        self.close_reasoning: str | None = None
        self.forced: list[int] = []

    def end_reasoning(self, text: str) -> None:
        """Have the worker write ``text`` next (safe from any thread: one assignment)."""
        self.close_reasoning = text

    @property
    def in_prompt(self) -> bool:
        return self.n_past < len(self.prompt)


class EmbedJob(_Job):
    """One call's inputs to embed, and the vectors computed so far (worker side)."""

    __slots__ = ("inputs", "mailbox", "norms", "single", "tokens", "vectors")

    def __init__(self, input: str | list[str], *, external_cancel: Callable[[], bool]) -> None:
        super().__init__(external_cancel, None)
        self.single = isinstance(input, str)
        self.inputs = [input] if isinstance(input, str) else list(input)
        self.mailbox: Mailbox[EmbeddingResult] = Mailbox()
        self.tokens: list[list[int]] | None = None
        self.vectors: list[list[float]] = []
        self.norms: list[float] = []
