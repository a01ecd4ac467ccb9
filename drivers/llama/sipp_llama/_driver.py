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
    LocalModelError,
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
from ._reasoning import ReasoningSplitter
from ._routing import OutputRouter
from ._sequence import EmbedJob, Sampling, TextJob, grammar_of
from ._toolcalls import CallDelta, ToolCallFormatError, ToolCallParser
from ._toolgrammar import schema_grammar, tool_grammar
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
            tools=True,
            reasoning=descriptor.reasoning_tags is not None,
            vision=False,
            embed_batch=descriptor.embeddings,
        )
        self.timeouts = Timeouts.of(descriptor.timeout) or Timeouts()
        self._engine = engine
        self._closed = False

    async def query(self, request: QueryRequest, call: Call) -> TextResult:
        # A raw prompt is the caller's own: tools constrain and parse the output,
        # but describing them in the prompt is up to the caller.
        return await self._generate(request, request.prompt, True, call)

    async def chat(self, request: ChatRequest, call: Call) -> TextResult:
        template = self.info.chat
        if template is None:
            raise UnsupportedOperationError(
                "this model has no chat template: use query with your own prompt format, "
                "or give the endpoint a chat_template"
            )
        tools = request.tools if _tools_active(request) else None
        prompt = template.render(request.messages, tools, request.tool_choice)
        # The template already writes the special tokens (BOS included) it wants.
        return await self._generate(request, prompt, False, call)

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
        tools = _tools_active(request)
        own_grammar = local is not None and (local.grammar or local.json_schema)
        if own_grammar and (tools or request.output_schema is not None):
            raise InvalidRequestError(
                "a local grammar/json_schema cannot be combined with tools or output=",
                field="local.grammar" if local and local.grammar else "local.json_schema",
            )
        grammar: str | None
        if tools:
            assert request.tools is not None
            grammar = tool_grammar(
                request.tools,
                request.tool_choice,
                request.output_schema,
                parallel=local.parallel_tool_calls if local else True,
            )
        elif request.output_schema is not None:
            grammar = schema_grammar(request.output_schema, "output")
        else:
            grammar = grammar_of(local)
        sampling = Sampling(
            temperature=_first(request.temperature, descriptor.temperature),
            top_p=_first(request.top_p, descriptor.top_p),
            top_k=_first(local.top_k if local else None, descriptor.top_k),
            repeat_penalty=_first(
                local.repeat_penalty if local else None, descriptor.repeat_penalty
            ),
            seed=_first(request.seed, descriptor.seed),
            grammar=grammar,
        )
        tags = descriptor.reasoning_tags
        limit = _reasoning_budget(request)
        # Under a grammar the worker may not write tokens the grammar did not choose.
        budget = (limit, tags[1] + "\n") if limit and tags and grammar is None else None
        job = TextJob(
            prompt,
            add_special=add_special,
            sampling=sampling,
            max_tokens=request.max_tokens,
            stop=request.stop,
            context_key=local.context_key if local else None,
            external_cancel=lambda: call.cancel_requested,
            # The loop counts a reasoning budget as tokens arrive: held tokens would
            # let the model think past it, so such a request gets every token at once.
            stream_interval=0.0 if budget else descriptor.stream_interval,
        )
        router = OutputRouter(
            self._splitter(prompt),
            ToolCallParser(_first_call_number(request)) if tools else None,
        )
        result = await self._relay(job, job.mailbox, call, router, budget)
        if router.made_calls and result.finish_reason == "stop":
            result = msgspec.structs.replace(result, finish_reason="tool_calls")
        return result

    def _splitter(self, prompt: str) -> ReasoningSplitter | None:
        tags = self.descriptor.reasoning_tags
        if tags is None:
            return None
        # Templates of thinking models may open the block in the generation prompt.
        return ReasoningSplitter(*tags, inside=prompt.rstrip().endswith(tags[0]))

    async def _relay(
        self,
        job: TextJob | EmbedJob,
        mailbox: Mailbox[ResultT],
        call: Call,
        router: OutputRouter | None = None,
        budget: tuple[int, str] | None = None,
    ) -> ResultT:
        self._engine.submit(job)
        finished = False
        frames = 0
        thought = 0  # tokens spent inside the reasoning block
        try:
            while not finished:
                text, more, finished = await mailbox.take()
                # Frames (tokens) count once, with the first event they produced.
                frames += more
                if router is None:
                    if text:
                        await call.emit(text, frames)
                        frames = 0
                    continue
                thinking = router.in_reasoning
                try:
                    events = router.feed(text) if text else []
                    if finished:
                        events += router.finish()
                except ToolCallFormatError as exc:
                    raise LocalModelError(f"the model wrote a malformed tool call: {exc}") from exc
                if thinking or router.in_reasoning:
                    thought += more
                    if (
                        budget is not None
                        and thought >= budget[0]
                        and router.in_reasoning
                        and isinstance(job, TextJob)
                    ):
                        # Over budget: the worker writes the close tag next; the
                        # tokens already on their way still count as reasoning.
                        job.end_reasoning(budget[1])
                        budget = None
                for event in events:
                    if isinstance(event, CallDelta):
                        await call.emit_tool_call(
                            event.index, id=event.id, name=event.name, arguments=event.arguments
                        )
                    elif event[0] == "text":
                        await call.emit(event[1], frames)
                    else:
                        await call.emit_reasoning(event[1], frames)
                    frames = 0
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


def _tools_active(request: QueryRequest | ChatRequest) -> bool:
    return bool(request.tools) and request.tool_choice != "none"


#: ``reasoning={"effort": ...}`` as a token budget for the thinking block.
_EFFORT_BUDGETS = {"low": 512, "medium": 2048, "high": None}


def _reasoning_budget(request: QueryRequest | ChatRequest) -> int | None:
    options = request.reasoning
    if options is None:
        return None
    if options.budget_tokens is not None:
        return options.budget_tokens
    return _EFFORT_BUDGETS.get(options.effort or "high")


def _first_call_number(request: QueryRequest | ChatRequest) -> int:
    """Call ids continue past those already in the conversation (unique across a loop)."""
    if not isinstance(request, ChatRequest):
        return 1
    return 1 + sum(len(message.tool_calls or ()) for message in request.messages)


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
    if descriptor.mmproj is not None:
        # Refused rather than ignored: an endpoint that silently dropped images would
        # answer questions about pictures it never saw. See docs/local-driver.md.
        problems.append(
            "mmproj is not supported yet: this driver decodes with its own batching "
            "loop, which does not evaluate image embeddings (use a llama.cpp server "
            "through an openai endpoint for images)"
        )
    if descriptor.n_seq_embed < 1:
        problems.append("n_seq_embed must be at least 1")
    tags = descriptor.reasoning_tags
    if tags is not None and not all(tags):
        problems.append("reasoning_tags must be two non-empty strings (or null)")
    if descriptor.stream_interval < 0:
        problems.append("stream_interval must be >= 0 seconds")
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
