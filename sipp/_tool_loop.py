"""``client.run_tools``: the tool loop, as one more kind of run.

The loop is a :class:`RunState` whose task, instead of calling a driver once,
runs *turns*: each turn is an ordinary chat run (its own ``RunState`` with
its own timeouts, retries and output validation) executed inline in the
loop's task, so the loop's cancel scope covers it; between turns the loop
runs the functions the model asked for. Reusing ``RunState`` gives the loop
the same handle (``Run``), the same single terminal state, cancellation from
any thread and the same token channel:

* every turn's batches go into the loop's one channel (``_TurnChannel``), so
  a reader sees the whole conversation; tool-call indexes continue across
  turns so coalescing never merges two turns' calls;
* ``cancel(reason)`` cancels the loop's scope: a model call in progress ends
  as a cancelled turn, an async function is cancelled, a sync function's
  worker thread is abandoned (its result dropped);
* a function that raises, an unknown tool name or arguments that do not
  validate become an ``error: ...`` tool result for the model, never a crash.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import anyio
import msgspec

from ._chat import ChatMessage, Tool, ToolCall, ToolCallDelta
from ._endpoint import Endpoint
from ._errors import OutputValidationError, RunCancelled, SippError
from ._function_tools import signature_of
from ._models import ChatRequest, TextResponse, Timeouts, Usage
from ._run import RunState
from ._tokens import TokenChannel

__all__ = ["ToolLoopState"]

#: A tool result longer than this is cut (a model's context is finite; the loop must not die).
MAX_RESULT_CHARS = 100_000


class _TurnChannel(TokenChannel):
    """One turn's view of the loop's channel: pushes go through, closing is the loop's job."""

    __slots__ = ("_loop", "_offset")

    def __init__(self, loop: TokenChannel, offset: int) -> None:
        super().__init__(loop.request_id, loop.stream_id)
        self._loop = loop
        self._offset = offset

    def push(self, text: str, frames: int) -> None:
        self._loop.push(text, frames)

    def push_reasoning(self, text: str, frames: int) -> None:
        self._loop.push_reasoning(text, frames)

    def push_tool_call(self, delta: ToolCallDelta) -> None:
        if self._offset:
            delta = msgspec.structs.replace(delta, index=delta.index + self._offset)
        self._loop.push_tool_call(delta)

    def close(self, error: BaseException | None = None) -> None:
        pass


class ToolLoopState(RunState):
    """The state of one ``run_tools`` run; its task runs the turns."""

    def __init__(
        self,
        request: ChatRequest,
        endpoint: Endpoint,
        *,
        timeouts: Timeouts,
        retries: int,
        stream: bool,
        parse: Callable[[str], Any] | None,
        max_turns: int,
    ) -> None:
        super().__init__(
            "chat", request, endpoint, timeouts=timeouts, retries=retries, stream=stream
        )
        self._turn_parse = parse
        self.max_turns = max_turns
        self._tools = {tool.name: tool for tool in request.tools or []}
        self.transcript: list[ChatMessage] = []
        self._usage = Usage()
        self._turn: RunState | None = None
        self._calls_so_far = 0
        #: What the turn in progress had produced when it was cancelled or failed.
        self._partial: TextResponse | None = None

    def _cancel_in_loop(self) -> None:
        turn = self._turn
        if turn is not None:
            turn.cancel(self.cancel_reason or "caller_cancelled")
        super()._cancel_in_loop()

    async def execute(self) -> None:
        response: TextResponse | None = None
        failure: BaseException | None = None
        # Held across turns, so a replaced endpoint is not closed between two of them.
        self.endpoint.acquire()
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                try:
                    if self.cancel_reason is None:
                        response = await self._loop()
                except Exception as exc:  # the run's outcome, handed to whoever awaits it
                    # (A turn's RunCancelled means we were cancelled: reported below.)
                    failure = exc
            if response is not None and self.cancel_reason is None:
                self.response = response
                self._close_channel(None)
                self._set_status("completed")
            elif self.cancel_reason is not None:
                self._finish_cancelled(self.cancel_reason)
            else:
                self._fail(failure or RuntimeError("the tool loop ended without a response"))
        except anyio.get_cancelled_exc_class():
            self._finish_cancelled(self.cancel_reason or "client_closed")
            raise
        finally:
            self._scope = None
            self._turn = None
            self.endpoint.release()
            self._mark_finished()

    async def _loop(self) -> TextResponse:
        request = self.request
        assert isinstance(request, ChatRequest)
        messages = list(request.messages)
        for turn_number in range(self.max_turns):
            if turn_number == 1 and request.tool_choice not in (None, "auto", "none"):
                # A forced choice applies to the first turn; forcing it again would
                # make the model call tools until max_turns.
                request = msgspec.structs.replace(request, tool_choice="auto")
            # A copy: the request must not change when later turns append to the list.
            turn_request = msgspec.structs.replace(request, messages=list(messages))
            response = await self._run_turn(turn_request)
            self._usage = self._usage + response.usage
            self.transcript.append(response.message)
            messages.append(response.message)
            calls = response.tool_calls
            last = turn_number == self.max_turns - 1
            if response.finish_reason != "tool_calls" or not calls or last:
                return msgspec.structs.replace(
                    response,
                    usage=self._usage,
                    transcript=list(self.transcript),
                    request_id=self.id,
                    # The last turn's own timings, but the whole loop's duration.
                    timings=msgspec.structs.replace(
                        response.timings, total=time.perf_counter() - self._started
                    ),
                )
            for call in calls:
                result = await self._run_tool(call)
                message = ChatMessage(role="tool", tool_call_id=call.id, content=result)
                self.transcript.append(message)
                messages.append(message)
        raise AssertionError("max_turns is at least 1")  # pragma: no cover

    async def _run_turn(self, request: ChatRequest) -> TextResponse:
        turn = RunState(
            "chat",
            request,
            self.endpoint,
            timeouts=self.timeouts,
            retries=self.retries,
            stream=self.stream,
            parse=self._turn_parse,
        )
        assert self.channel is not None
        turn.channel = _TurnChannel(self.channel, self._calls_so_far)
        self._turn = turn
        try:
            await turn.execute()
        finally:
            # Also when our own scope's cancellation ends the turn from outside.
            self._turn = None
            if isinstance(turn.error, SippError):
                self._partial = turn.error.partial
        if turn.error is not None:
            raise turn.error
        assert isinstance(turn.response, TextResponse)
        self._calls_so_far += len(turn.response.tool_calls)
        return turn.response

    async def _run_tool(self, call: ToolCall) -> str:
        tool = self._tools.get(call.name)
        if tool is None:
            known = ", ".join(sorted(self._tools)) or "none"
            return f"error: there is no tool named {call.name!r} (tools: {known})"
        try:
            args, kwargs = _bind(tool, call)
        except (OutputValidationError, msgspec.ValidationError, TypeError) as exc:
            return f"error: invalid arguments for {call.name!r}: {_message(exc)}"
        function = tool.function
        try:
            if signature_of(function).is_async:
                value = await function(*args, **kwargs)
            else:
                value = await anyio.to_thread.run_sync(
                    functools.partial(function, *args, **kwargs), abandon_on_cancel=True
                )
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as exc:  # reported to the model, which may try again
            return f"error: {type(exc).__name__}: {exc}"
        return _as_text(value)

    def _close_channel(self, error: BaseException | None) -> None:
        if self.channel is not None:
            self.channel.close(error)

    def _fail(self, error: BaseException) -> None:
        if isinstance(error, SippError):
            base = self._partial or self._empty("error")
            error.partial = msgspec.structs.replace(
                base, usage=self._usage, transcript=list(self.transcript), request_id=self.id
            )
        self.error = error
        self._close_channel(error)
        self._set_status("failed")

    def _finish_cancelled(self, reason: str) -> None:
        if self.cancel_reason is None:
            self.cancel_reason = reason
        self.error = RunCancelled(
            reason,
            msgspec.structs.replace(
                self._partial or self._empty("cancelled"),
                usage=self._usage,
                transcript=list(self.transcript),
                request_id=self.id,
            ),
        )
        self._close_channel(None)
        self._set_status("cancelled")

    def _empty(self, finish_reason: Any) -> TextResponse:
        return TextResponse(endpoint=self.endpoint.info, text="", finish_reason=finish_reason)


def _bind(tool: Tool, call: ToolCall) -> tuple[list[Any], dict[str, Any]]:
    """The function's arguments from the call's JSON, converted to the parameters' types."""
    data = call.parsed_arguments
    if not isinstance(data, dict):
        raise TypeError("the arguments must be a JSON object")
    signature = signature_of(tool.function)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    known = {name for name, _, _, _ in signature.parameters}
    unknown = sorted(set(data) - known)
    if unknown and not signature.var_keyword:
        raise TypeError(f"unexpected argument {unknown[0]!r}")
    kwargs.update((name, data[name]) for name in unknown)  # for its **kwargs, as they are
    for name, hint, positional, required in signature.parameters:
        if name not in data:
            if required:
                raise TypeError(f"missing required argument {name!r}")
            if positional:
                break  # later positional-only ones keep their defaults too
            continue
        try:
            value = msgspec.convert(data[name], hint, strict=False)
        except msgspec.ValidationError as exc:
            raise TypeError(f"{name}: {exc}") from exc
        if positional:
            args.append(value)
        else:
            kwargs[name] = value
    return args, kwargs


def _message(exc: BaseException) -> str:
    return exc.message if isinstance(exc, SippError) else str(exc)


def _as_text(value: Any) -> str:
    """A function's result as the tool message's text: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = msgspec.json.encode(value).decode()
        except (TypeError, ValueError):
            text = str(value)
    if len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + " [cut]"
    return text
