"""Run and EmbedRun: one request's lifecycle, from start to its one terminal state.

A run's work executes in the client's task group inside its own cancel scope,
so it starts at once and outlives the statement that created it, like a
JavaScript promise. The public ``Run`` (``_handles.py``) is a thin handle over a ``RunState``
that the task owns; the handle being garbage collected cancels the work
(nobody can read it any more), which releases its connection, thread slot
and admission slot without anyone awaiting anything.

Lifecycle (the status only ever moves once, out of ``running``)::

    running ──driver returned──────────────▶ completed
       │    ──driver raised / timed out───▶ failed
       └────cancel(reason) / client closed─▶ cancelled
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import anyio

from ._call import AttemptCall
from ._chat import ToolCall, ToolCallDelta
from ._endpoint import Endpoint
from ._errors import ProtocolError, RunCancelled, SippError, TimeoutError
from ._models import (
    ChatRequest,
    EmbeddingResponse,
    EmbedRequest,
    QueryRequest,
    TextResponse,
    Timeouts,
    Timings,
    Usage,
)
from ._policy import backoff_delay
from ._telemetry import start_run as _start_telemetry
from ._tokens import TokenChannel, merge_tool_deltas
from .driver import EmbeddingResult, TextResult

__all__ = ["RunState", "RunStatus"]

RunStatus = Literal["running", "completed", "failed", "cancelled"]
Request = QueryRequest | ChatRequest | EmbedRequest

_INF = math.inf
_NO_USAGE = Usage()


def _new_id(prefix: str) -> str:
    return prefix + os.urandom(12).hex()


class RunState:
    """The work of one run; owned by its task, shared with the public handle."""

    # Slotted: a gateway holds one per open stream, and a dict of these ~35
    # attributes is about 1 KB of it.
    __slots__ = (
        "__weakref__",
        "_clock",
        "_done",
        "_feed",
        "_finished",
        "_first_token_at",
        "_frames",
        "_idle",
        "_idle_slack",
        "_lock",
        "_loop_thread",
        "_loop_token",
        "_parts",
        "_reasoning",
        "_refresh_at",
        "_scope",
        "_started",
        "_tool_deltas",
        "_total_deadline",
        "cancel_reason",
        "channel",
        "endpoint",
        "error",
        "id",
        "operation",
        "parse",
        "request",
        "response",
        "retries",
        "status",
        "stream",
        "telemetry",
        "timeouts",
    )

    def __init__(
        self,
        operation: Literal["query", "chat", "embed"],
        request: Request,
        endpoint: Endpoint,
        *,
        timeouts: Timeouts,
        retries: int,
        stream: bool,
        parse: Callable[[str], Any] | None = None,
    ) -> None:
        self.id = _new_id("req_")
        self.operation = operation
        self.request = request
        self.endpoint = endpoint
        self.timeouts = timeouts
        self.retries = retries
        self.stream = stream
        #: Validates the final text into ``response.parsed`` (``output=``); raises
        #: ``OutputValidationError``, which fails the run with the raw text kept.
        self.parse = parse
        self.status: RunStatus = "running"
        self.cancel_reason: str | None = None
        self.response: TextResponse | EmbeddingResponse | None = None
        self.error: BaseException | None = None
        self.channel = TokenChannel(self.id, _new_id("str_")) if operation != "embed" else None
        #: Where emitted tokens go as they come: the channel when streaming (set when the
        #: task starts, as the tool loop swaps a turn's channel after building it).
        self._feed: TokenChannel | None = None
        import anyio.lowlevel  # cached after the first run; kept off `import sipp`

        self._lock = threading.Lock()
        self._loop_token = anyio.lowlevel.current_token()
        #: The loop's clock (the one cancel-scope deadlines use), read on every token, so
        #: looked up once: asyncio's loop carries it (``loop.time``, 4x cheaper than the
        #: backend's classmethod); elsewhere (trio) the backend's ``current_time``.
        #: ``anyio.current_time()`` would add a backend lookup (sniffio) to every read.
        native_clock = getattr(self._loop_token.native_token, "time", None)
        self._clock: Callable[[], float] = (
            native_clock if callable(native_clock) else self._loop_token.backend_class.current_time
        )
        self._loop_thread = threading.get_ident()
        #: Made only for a caller that waits while the task still runs: most
        #: callers (a stream's reader) find the run already finished.
        self._done: anyio.Event | None = None
        self._finished = False
        #: The cancel scope in force: the attempt's (its deadline is the timeouts'), or
        #: the backoff sleep's. ``cancel`` cancels it.
        self._scope: anyio.CancelScope | None = None
        self._parts: list[str] = []
        self._reasoning: list[str] | None = None
        self._tool_deltas: list[ToolCallDelta] | None = None
        self._frames = 0
        self._started = time.perf_counter()
        self._first_token_at: float | None = None
        self._total_deadline = _INF
        self._idle = timeouts.idle
        self._idle_slack = (timeouts.idle or 0.0) * 0.01
        #: Loop time from which the next token must move the attempt's deadline (``_progress``).
        self._refresh_at = -_INF
        # Telemetry hook: None (and free) unless OpenTelemetry is set up; see sipp._telemetry.
        self.telemetry = _start_telemetry(self)

    # -- cancellation, from anywhere ------------------------------------------

    def cancel(self, reason: str, *, from_finalizer: bool = False) -> None:
        with self._lock:
            if self.cancel_reason is not None or self.status != "running":
                return
            self.cancel_reason = reason
        if threading.get_ident() == self._loop_thread and not from_finalizer:
            self._cancel_in_loop()
        else:
            # Another thread, or a finalizer that may run in the middle of the
            # loop's own bookkeeping: hand the cancel to the loop's thread-safe queue.
            self._call_soon_in_loop(self._cancel_in_loop)

    def _cancel_in_loop(self) -> None:
        if self._scope is not None:
            self._scope.cancel()

    def _call_soon_in_loop(self, callback: Callable[[], None]) -> None:
        native: Any = self._loop_token.native_token
        try:
            if hasattr(native, "call_soon_threadsafe"):  # asyncio's loop
                native.call_soon_threadsafe(callback)
            else:  # trio's TrioToken
                native.run_sync_soon(callback)
        except RuntimeError:
            # The loop is closed: the run's task cannot be running any more.
            pass

    # -- the task --------------------------------------------------------------

    async def execute(self) -> None:
        self.endpoint.acquire()
        telemetry = self.telemetry  # telemetry hook: the run's span is current in this task
        entered = telemetry.enter() if telemetry is not None else None
        result: TextResult | EmbeddingResult | None = None
        failure: BaseException | None = None
        try:
            try:
                if self.cancel_reason is None:
                    result = await self._attempts()
            except Exception as exc:  # the run's outcome, handed to whoever awaits it
                failure = exc
            if result is not None:
                self._complete(result)
            elif self.cancel_reason is not None:
                self._finish_cancelled(self.cancel_reason)
            else:
                assert failure is not None
                self._fail(failure)
        except anyio.get_cancelled_exc_class():
            # Cancelled from outside our scopes: the client's task group is going down.
            self._finish_cancelled(self.cancel_reason or "client_closed")
            raise
        finally:
            self._scope = None
            self.endpoint.release()
            if telemetry is not None:  # telemetry hook: span and metrics of the final state
                telemetry.finish(self, entered)
            self._mark_finished()

    def _enter(self, scope: anyio.CancelScope) -> None:
        """Make ``scope`` the one :meth:`cancel` cancels (a cancel may have come in between)."""
        self._scope = scope
        if self.cancel_reason is not None:
            scope.cancel()

    async def _attempts(self) -> TextResult | EmbeddingResult | None:
        """The attempts, each in one cancel scope that both ``cancel`` and the deadlines use.

        One scope per attempt (and one per backoff sleep), not a scope for the
        run around a scope per attempt: a gateway holds a run per open stream,
        and an anyio scope is about 0.6 KB. Returns None when cancelled.
        """
        driver_method = getattr(self.endpoint.driver, self.operation)
        self._feed = self.channel if self.stream else None
        clock = self._clock
        if self.timeouts.total is not None:
            self._total_deadline = clock() + self.timeouts.total
        first_token = self.timeouts.first_token
        attempt = 0
        while True:
            now = clock()
            deadline = min(self._total_deadline, now + first_token if first_token else _INF)
            error: SippError | None = None
            with anyio.CancelScope(deadline=deadline) as scope:
                self._enter(scope)
                self._refresh_at = -_INF  # this attempt's first token moves the deadline
                try:
                    return await driver_method(self.request, AttemptCall(self, attempt))  # type: ignore[no-any-return]
                except SippError as exc:
                    error = exc
            self._scope = None
            if self.cancel_reason is not None:
                return None
            if error is None:  # our own deadline fired
                error = TimeoutError(
                    f"{self._timeout_phase()} timeout on endpoint {self.endpoint.info.name!r}",
                    phase=self._timeout_phase(),
                )
            if self._frames or attempt >= self.retries or not error.retryable:
                raise error
            delay = backoff_delay(attempt, getattr(error, "retry_after", None))
            if delay is None or clock() + delay >= self._total_deadline:
                raise error
            with anyio.CancelScope() as scope:
                self._enter(scope)
                await anyio.sleep(delay)
            self._scope = None
            if self.cancel_reason is not None:
                return None
            attempt += 1

    def _timeout_phase(self) -> Literal["first_token", "idle", "total"]:
        if self._clock() >= self._total_deadline:
            return "total"
        return "idle" if self._frames else "first_token"

    # -- the hot path: what the driver emits (``AttemptCall.emit*`` are these) ------------

    async def emit(self, text: str, frames: int = 1) -> None:
        if self._clock() >= self._refresh_at:
            self._progress()
        self._parts.append(text)
        self._frames += frames
        feed = self._feed
        if feed is not None:
            feed.push(text, frames)

    async def emit_reasoning(self, text: str, frames: int = 1) -> None:
        if self._clock() >= self._refresh_at:
            self._progress()
        if self._reasoning is None:
            self._reasoning = [text]
        else:
            self._reasoning.append(text)
        self._frames += frames
        feed = self._feed
        if feed is not None:
            feed.push_reasoning(text, frames)

    async def emit_tool_call(
        self, index: int, *, id: str | None = None, name: str | None = None, arguments: str = ""
    ) -> None:
        if self._clock() >= self._refresh_at:
            self._progress()
        delta = ToolCallDelta(index=index, id=id, name=name, arguments=arguments)
        if self._tool_deltas is None:
            self._tool_deltas = [delta]
        else:
            self._tool_deltas.append(delta)
        self._frames += 1
        feed = self._feed
        if feed is not None:
            feed.push_tool_call(delta)

    def _progress(self) -> None:
        """Move the attempt's deadline: the first token starts the idle limit, later ones push it.

        Called only once the loop clock reaches ``_refresh_at``, so most tokens
        cost one clock read and a comparison. Moving a deadline reschedules a
        timer; the deadline moves at most once per 1 % of the idle limit, so it
        always lies between ``idle - 1 %`` and ``idle`` after the last token.
        Once it reaches the total limit (or there is no idle limit) it never
        moves again.
        """
        if self._first_token_at is None:
            self._first_token_at = time.perf_counter()
        scope = self._scope
        if scope is None:
            return
        now = self._clock()
        if self._idle is not None and now + self._idle < self._total_deadline:
            scope.deadline = now + self._idle
            self._refresh_at = now + self._idle_slack
        else:
            scope.deadline = self._total_deadline
            self._refresh_at = _INF

    # -- terminal states ---------------------------------------------------------

    def _set_status(self, status: RunStatus) -> None:
        with self._lock:
            self.status = status

    def _text(self) -> str:
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    def _timings(self, queue_wait: float | None) -> Timings:
        end = time.perf_counter()
        first = self._first_token_at
        tps = None
        if first is not None and self._frames > 1 and end > first:
            tps = (self._frames - 1) / (end - first)
        return Timings(
            queue_wait=queue_wait,
            time_to_first_token=None if first is None else first - self._started,
            total=end - self._started,
            tokens_per_second=tps,
        )

    def _tool_calls(self) -> list[ToolCall]:
        if self._tool_deltas is None:
            return []
        return [
            ToolCall(
                id=delta.id or f"call_{delta.index}",
                name=delta.name or "",
                arguments=delta.arguments or "{}",
            )
            for delta in merge_tool_deltas(self._tool_deltas)
        ]

    def _text_response(
        self, finish_reason: Any, result: TextResult | None, parsed: Any = None
    ) -> TextResponse:
        return TextResponse(
            endpoint=self.endpoint.info,
            text=self._text(),
            finish_reason=finish_reason,
            usage=result.usage if result is not None else _NO_USAGE,
            id=result.response_id if result is not None else None,
            request_id=self.id,
            timings=self._timings(result.queue_wait if result is not None else None),
            reasoning=None if self._reasoning is None else "".join(self._reasoning),
            tool_calls=self._tool_calls(),
            parsed=parsed,
            stats=result.stats if result is not None else None,
        )

    def _flush_unstreamed(self) -> None:
        channel = self.channel
        if self.stream or channel is None:
            return
        # One batch in the model's usual order: reasoning, answer, tool calls.
        if self._reasoning is not None:
            channel.push_reasoning("".join(self._reasoning), 0)
        text = self._text()
        if text or self._frames:
            channel.push(text, self._frames)
        if self._tool_deltas is not None:
            for delta in merge_tool_deltas(self._tool_deltas):
                channel.push_tool_call(delta)

    def _complete(self, result: TextResult | EmbeddingResult) -> None:
        if isinstance(result, EmbeddingResult):
            try:
                self.response = self._embedding_response(result)
            except ProtocolError as exc:
                self._fail(exc)
                return
        else:
            parsed = None
            if self.parse is not None and result.finish_reason != "tool_calls":
                try:
                    parsed = self.parse(self._text())
                except SippError as exc:  # OutputValidationError: the run fails, text kept
                    self._fail(exc)
                    return
            self.response = self._text_response(result.finish_reason, result, parsed)
            self._flush_unstreamed()
            assert self.channel is not None
            self.channel.close()
        self._set_status("completed")

    def _embedding_response(self, result: EmbeddingResult) -> EmbeddingResponse:
        assert isinstance(self.request, EmbedRequest)
        expected = len(self.request.inputs)
        vectors = result.vectors
        if vectors is None:
            vectors = [] if result.values is None else [result.values]
        if len(vectors) != expected:
            raise ProtocolError(
                f"endpoint {self.endpoint.info.name!r} returned {len(vectors)} vector(s) "
                f"for {expected} input(s)"
            )
        return EmbeddingResponse(
            endpoint=self.endpoint.info,
            values=vectors[0],
            vectors=vectors,
            usage=result.usage,
            pooling=result.pooling,
            normalized=result.normalized,
            id=result.response_id,
            request_id=self.id,
        )

    def _fail(self, error: BaseException) -> None:
        if isinstance(error, SippError) and self._frames and self.operation != "embed":
            # The partial answer (text, reasoning and tool calls so far) goes with the error.
            error.partial = self._text_response("error", None)
        self.error = error
        if self.channel is not None:
            self._flush_unstreamed()
            self.channel.close(error)
        self._set_status("failed")

    def _finish_cancelled(self, reason: str) -> None:
        if self.cancel_reason is None:
            self.cancel_reason = reason
        partial = self._text_response("cancelled", None) if self.operation != "embed" else None
        self.error = RunCancelled(reason, partial)
        if self.channel is not None:
            self._flush_unstreamed()
            self.channel.close()
        self._set_status("cancelled")

    # -- waiting -----------------------------------------------------------------

    def _mark_finished(self) -> None:
        self._finished = True
        if self._done is not None:
            self._done.set()

    async def wait(self) -> TextResponse | EmbeddingResponse:
        try:
            if self._finished:
                await anyio.lowlevel.checkpoint()  # still a cancellation point, as before
            else:
                if self._done is None:
                    self._done = anyio.Event()
                await self._done.wait()
        except anyio.get_cancelled_exc_class():
            # Outside cancellation stops the run too, and stays native.
            self.cancel("caller_cancelled")
            raise
        if self.error is not None:
            raise self.error
        assert self.response is not None
        return self.response
