"""The ``local`` driver: the factory the entry point names, and the opened endpoint.

The loop side of each request is small: render the chat template, hand a job
to the endpoint's worker thread, then relay the text that arrives in the
job's mailbox to ``call.emit`` until the worker delivers the result. When the
run is cancelled, the ``await`` is interrupted and the job is withdrawn at
once; the worker drops it before its next decode.
"""

from __future__ import annotations

from typing import ClassVar, TypeVar

import anyio
import msgspec

from sipp import (
    ChatRequest,
    ConfigurationError,
    Descriptor,
    EmbedRequest,
    InvalidRequestError,
    QueryRequest,
    Timeouts,
    UnsupportedOperationError,
)
from sipp.driver import (
    DRIVER_API_VERSION,
    Call,
    Capabilities,
    EmbeddingResult,
    OpenContext,
    TextResult,
)

from ._engine import Engine, ModelInfo
from ._handoff import Mailbox
from ._sequence import EmbedJob, Sampling, TextJob, grammar_of
from ._types import LocalDescriptor, LocalOptions, LocalStats

__all__ = ["LlamaDriver", "LlamaFactory"]

T = TypeVar("T")
ResultT = TypeVar("ResultT", TextResult, EmbeddingResult)


class LlamaDriver:
    """One loaded GGUF model with its worker thread."""

    retries = 0
    #: Per-request options (``local=`` or ``options=``), converted by the core.
    options_type = LocalOptions
    options_keyword = "local"
    stats_type = LocalStats

    def __init__(self, descriptor: LocalDescriptor, engine: Engine, info: ModelInfo) -> None:
        self.descriptor = descriptor
        self.info = info
        self.capabilities = Capabilities(
            query=True,
            chat=info.chat is not None,
            embed=descriptor.embeddings,
            streaming=True,
            grammar=True,
            usage=True,
            structured_output=True,
        )
        self.timeouts = Timeouts.of(descriptor.timeout) or Timeouts()
        self._engine = engine
        self._closed = False

    async def query(self, request: QueryRequest, call: Call) -> TextResult:
        return await self._generate(request, request.prompt, True, call)

    async def chat(self, request: ChatRequest, call: Call) -> TextResult:
        template = self.info.chat
        if template is None:
            raise UnsupportedOperationError(
                "this model has no chat template: use query with your own prompt format, "
                "or give the endpoint a chat_template"
            )
        # The template already writes the special tokens (BOS included) it wants.
        return await self._generate(request, template.render(request.messages), False, call)

    async def embed(self, request: EmbedRequest, call: Call) -> EmbeddingResult:
        if not self.descriptor.embeddings:
            raise UnsupportedOperationError("this endpoint was not opened with embeddings=True")
        job = EmbedJob(request.input, external_cancel=lambda: call.cancel_requested)
        return await self._relay(job, job.mailbox, call)

    async def _generate(
        self, request: QueryRequest | ChatRequest, prompt: str, add_special: bool, call: Call
    ) -> TextResult:
        descriptor = self.descriptor
        local: LocalOptions | None = request.options
        if request.output_schema is not None:
            if local is not None and (local.grammar or local.json_schema):
                raise InvalidRequestError(
                    "pass either output= or a local grammar/json_schema, not both",
                    field="output",
                )
            local = msgspec.structs.replace(
                local or LocalOptions(), json_schema=request.output_schema
            )
        sampling = Sampling(
            temperature=_first(request.temperature, descriptor.temperature),
            top_p=_first(request.top_p, descriptor.top_p),
            top_k=_first(local.top_k if local else None, descriptor.top_k),
            repeat_penalty=_first(
                local.repeat_penalty if local else None, descriptor.repeat_penalty
            ),
            seed=_first(request.seed, descriptor.seed),
            grammar=grammar_of(local),
        )
        job = TextJob(
            prompt,
            add_special=add_special,
            sampling=sampling,
            max_tokens=request.max_tokens,
            stop=request.stop,
            context_key=local.context_key if local else None,
            external_cancel=lambda: call.cancel_requested,
        )
        return await self._relay(job, job.mailbox, call)

    async def _relay(
        self, job: TextJob | EmbedJob, mailbox: Mailbox[ResultT], call: Call
    ) -> ResultT:
        self._engine.submit(job)
        finished = False
        try:
            while not finished:
                text, frames, finished = await mailbox.take()
                if text:
                    await call.emit(text, frames)
        finally:
            if not finished:
                self._engine.withdraw(job)
        return mailbox.outcome()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            await self._engine.aclose()


def _first(*values: T | None) -> T | None:
    for value in values:
        if value is not None:
            return value
    return None


def _check(descriptor: LocalDescriptor, name: str) -> None:
    problems = []
    if not descriptor.source:
        problems.append("source must name a .gguf file")
    if descriptor.n_parallel < 1:
        problems.append("n_parallel must be at least 1")
    if descriptor.n_ctx is not None and descriptor.n_ctx < 16:
        problems.append("n_ctx must be at least 16 tokens")
    if descriptor.n_batch is not None and descriptor.n_batch < max(descriptor.n_parallel, 8):
        problems.append("n_batch must be at least 8 and at least n_parallel")
    if descriptor.n_threads is not None and descriptor.n_threads < 1:
        problems.append("n_threads must be at least 1")
    if descriptor.max_queue < 0:
        problems.append("max_queue must be >= 0")
    if problems:
        raise ConfigurationError(f"local endpoint {name!r}: " + "; ".join(problems))


class LlamaFactory:
    """The ``local`` entry point: opens a :class:`~sipp.LocalDescriptor` endpoint."""

    api_version: ClassVar[int] = DRIVER_API_VERSION
    descriptor_type = LocalDescriptor

    async def open(self, descriptor: Descriptor, context: OpenContext) -> LlamaDriver:
        assert isinstance(descriptor, LocalDescriptor)
        _check(descriptor, context.name)
        engine = Engine(descriptor, context.name, show_progress=context.show_progress)
        # Loads on the endpoint's own thread; a failure leaves no thread behind.
        info = await engine.start()
        return LlamaDriver(descriptor, engine, info)
