"""SippClient: the endpoints, the task group their runs live in, and the request entry points."""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypeVar

import anyio
import msgspec

from ._chat import ChatMessage, ReasoningOptions
from ._descriptors import Descriptor
from ._endpoint import Endpoint, EndpointRef
from ._errors import (
    ClientClosedError,
    ConfigurationError,
    EndpointNotFoundError,
    InvalidRequestError,
    UnsupportedOperationError,
)
from ._features import AnyRequest, fit_request
from ._handles import EmbedRun, Run
from ._models import ChatRequest, EmbedRequest, QueryRequest, Timeouts
from ._output import output_spec
from ._registry import load_driver
from ._run import RunState
from ._run_tasks import RunTasks
from ._tool_loop import ToolLoopState
from ._tools import ToolLike, to_tools
from ._validation import convert_descriptor, convert_request
from .driver import Driver, OpenContext, Operation

__all__ = ["SippClient"]

RequestT = TypeVar("RequestT", QueryRequest, ChatRequest, EmbedRequest)
EndpointArg = EndpointRef | str | None


class SippClient:
    """One client for every endpoint: local models, providers and gateways.

    Use it as an async context manager; it owns the task group in which every
    run executes, and closes every endpoint on exit::

        async with SippClient() as client:
            model = await client.add("local", {"kind": "local", "source": "model.gguf"})
            print((await client.query("Hello", endpoint=model)).text)
    """

    def __init__(self, *, show_progress: bool = False) -> None:
        self._show_progress = show_progress
        self._state: Literal["new", "open", "closing", "closed"] = "new"
        self._task_group: anyio.abc.TaskGroup | None = None
        self._run_tasks: RunTasks | None = None
        self._endpoints: dict[str, Endpoint] = {}
        self._retired: set[Endpoint] = set()
        self._runs: set[RunState] = set()

    # -- lifecycle ---------------------------------------------------------------

    async def __aenter__(self) -> SippClient:
        if self._state != "new":
            raise ClientClosedError("a SippClient can be entered only once")
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        self._run_tasks = RunTasks(task_group)
        self._state = "open"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        await self._shutdown(exc_type, exc, tb)

    async def aclose(self) -> None:
        """Cancel runs in flight (reason ``client_closed``) and close every endpoint. Idempotent."""
        await self._shutdown(None, None, None)

    async def _shutdown(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        if self._state in ("closing", "closed"):
            return
        task_group = self._task_group
        self._state = "closing"
        try:
            for run in list(self._runs):
                run.cancel("client_closed")
            if self._run_tasks is not None:
                await self._run_tasks.wait_closed()
            if task_group is not None:
                # The body's own exception is not handed to the task group: every run
                # was just cancelled, and the caller must see their exception unwrapped
                # rather than inside an ExceptionGroup.
                await task_group.__aexit__(None, None, None)
        finally:
            endpoints = [*self._endpoints.values(), *self._retired]
            self._endpoints.clear()
            self._retired.clear()
            with anyio.CancelScope(shield=True):
                for endpoint in endpoints:
                    await _close_driver(endpoint.info.name, endpoint.driver)
            self._state = "closed"

    def _ensure_open(self, action: str) -> RunTasks:
        if self._state == "open" and self._run_tasks is not None:
            return self._run_tasks
        if self._state == "new":
            raise ClientClosedError(
                f"cannot {action}: the SippClient is not open; "
                "use `async with SippClient() as client:`"
            )
        raise ClientClosedError(f"cannot {action}: the SippClient is closed")

    # -- endpoints ---------------------------------------------------------------

    async def add(
        self,
        name: str,
        descriptor: Descriptor | Mapping[str, Any],
        *,
        extensions: Mapping[str, Any] | None = None,
    ) -> EndpointRef:
        """Register (or replace) the endpoint ``name``; the slow work happens here.

        ``descriptor`` is a typed descriptor or a dict with a ``kind`` key. A
        replaced endpoint keeps serving its runs in flight and is closed after them.
        ``extensions`` reach the driver as ``OpenContext.extensions``: objects
        that are not configuration (the pool driver reads a shared cooldown
        store there); the driver documents the keys it reads.
        """
        self._ensure_open("add an endpoint")
        if not isinstance(name, str) or not name:
            raise ConfigurationError("endpoint name must be a non-empty string")
        driver_name = _driver_name(name, descriptor)
        # Importing a driver can take a while (httpx, llama.cpp): never on the loop.
        factory = await anyio.to_thread.run_sync(load_driver, driver_name)
        if isinstance(descriptor, Mapping):
            typed = convert_descriptor(dict(descriptor), factory.descriptor_type, name)
        elif isinstance(descriptor, factory.descriptor_type):
            typed = descriptor
        elif isinstance(descriptor, Descriptor) and issubclass(
            factory.descriptor_type, type(descriptor)
        ):
            # A driver may extend a core descriptor with fields of its own
            # (sipp_openai's OpenAIDescriptor); the core one keeps working.
            fields = {f: getattr(descriptor, f) for f in descriptor.__struct_fields__}
            typed = convert_descriptor(fields, factory.descriptor_type, name)
        else:
            raise ConfigurationError(
                f"endpoint {name!r}: driver {driver_name!r} takes a "
                f"{factory.descriptor_type.__name__}, not a {type(descriptor).__name__}"
            )
        driver = await factory.open(
            typed,
            OpenContext(
                name=name, show_progress=self._show_progress, extensions=dict(extensions or {})
            ),
        )
        if not isinstance(driver, Driver):
            await _close_driver(name, driver)
            raise ConfigurationError(
                f"driver {driver_name!r} returned an object that is not a Driver"
            )
        if self._state != "open":  # closed while the endpoint was being built
            await _close_driver(name, driver)
            self._ensure_open("add an endpoint")
        endpoint = Endpoint(name, typed, driver, self._close_when_idle)
        previous = self._endpoints.get(name)
        self._endpoints[name] = endpoint
        if previous is not None:
            self._retired.add(previous)
            previous.retire()
        return endpoint.ref

    def remove(self, name: str) -> None:
        """Unregister ``name``; its runs in flight finish, then it is closed."""
        endpoint = self._endpoints.pop(name, None)
        if endpoint is None:
            raise EndpointNotFoundError(f"no endpoint named {name!r}")
        self._retired.add(endpoint)
        endpoint.retire()

    def get(self, name: str) -> EndpointRef:
        endpoint = self._endpoints.get(name)
        if endpoint is None:
            raise EndpointNotFoundError(f"no endpoint named {name!r}{self._listing()}")
        return endpoint.ref

    @property
    def endpoints(self) -> Mapping[str, EndpointRef]:
        """A read-only snapshot of the registered endpoints by name."""
        return types.MappingProxyType({name: ep.ref for name, ep in self._endpoints.items()})

    def _close_when_idle(self, endpoint: Endpoint) -> None:
        if self._state == "open" and self._task_group is not None:
            self._retired.discard(endpoint)
            self._task_group.start_soon(_close_driver, endpoint.info.name, endpoint.driver)

    def _listing(self) -> str:
        names = sorted(self._endpoints)
        return f" (registered: {', '.join(names)})" if names else " (none registered)"

    def _resolve(self, endpoint: EndpointArg, operation: Operation) -> Endpoint:
        if endpoint is None:
            able = [
                ep for ep in self._endpoints.values() if ep.driver.capabilities.supports(operation)
            ]
            if len(able) == 1:
                return able[0]
            if not able:
                raise EndpointNotFoundError(
                    f"no registered endpoint can {operation}{self._listing()}"
                )
            names = ", ".join(sorted(ep.info.name for ep in able))
            raise EndpointNotFoundError(
                f"several endpoints can {operation} ({names}): pass endpoint= to pick one"
            )
        name = endpoint.name if isinstance(endpoint, EndpointRef) else endpoint
        found = self._endpoints.get(name)
        if found is None:
            raise EndpointNotFoundError(f"no endpoint named {name!r}{self._listing()}")
        if not found.driver.capabilities.supports(operation):
            hint = " (use query instead)" if operation == "chat" else ""
            raise UnsupportedOperationError(
                f"endpoint {name!r} ({found.info.kind}) cannot {operation}{hint}"
            )
        return found

    # -- requests ------------------------------------------------------------------

    def query(
        self,
        prompt: str | QueryRequest,
        *,
        endpoint: EndpointArg = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        stop: list[str] | None = None,
        seed: int | None = None,
        emit_tokens: bool | None = None,
        timeout: float | Timeouts | None = None,
        retries: int | None = None,
        tools: Iterable[ToolLike] | None = None,
        tool_choice: str | None = None,
        output: Any = None,
        reasoning: ReasoningOptions | Mapping[str, Any] | None = None,
        options: Any = None,
        local: Any = None,
        provider_options: Mapping[str, Any] | None = None,
        endpoint_options: Mapping[str, Any] | None = None,
    ) -> Run:
        """Complete a raw prompt. Returns a running ``Run``; ``await`` it for the response.

        ``output=`` (a msgspec Struct, dataclass, TypedDict, pydantic model or
        JSON-schema dict) asks for an answer of that shape, validated into
        ``response.parsed``. ``options=`` are the endpoint's own options (its
        driver's options type); ``local=``, ``provider_options=`` and
        ``endpoint_options=`` are the same under the name the driver accepts.
        """
        given = _given(locals())
        request, parse = _build(QueryRequest, "prompt", prompt, given)
        return Run(self._start("query", request, endpoint, given, parse))

    def chat(
        self,
        messages: Iterable[ChatMessage | Mapping[str, Any]] | ChatRequest,
        *,
        endpoint: EndpointArg = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        stop: list[str] | None = None,
        seed: int | None = None,
        emit_tokens: bool | None = None,
        timeout: float | Timeouts | None = None,
        retries: int | None = None,
        tools: Iterable[ToolLike] | None = None,
        tool_choice: str | None = None,
        output: Any = None,
        reasoning: ReasoningOptions | Mapping[str, Any] | None = None,
        options: Any = None,
        local: Any = None,
        provider_options: Mapping[str, Any] | None = None,
        endpoint_options: Mapping[str, Any] | None = None,
    ) -> Run:
        """Continue a conversation (``[{"role": "user", "content": "Hi"}]``).

        Messages may carry image parts, tool calls and tool results (see
        ``ChatMessage``); ``tools=`` offers functions to call. Other options
        as for :meth:`query`.
        """
        given = _given(locals())
        value = messages if isinstance(messages, ChatRequest) else list(messages)
        request, parse = _build(ChatRequest, "messages", value, given)
        return Run(self._start("chat", request, endpoint, given, parse))

    def run_tools(
        self,
        messages: Iterable[ChatMessage | Mapping[str, Any]] | ChatRequest,
        *,
        tools: Iterable[ToolLike],
        endpoint: EndpointArg = None,
        max_turns: int = 8,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        stop: list[str] | None = None,
        seed: int | None = None,
        emit_tokens: bool | None = None,
        timeout: float | Timeouts | None = None,
        retries: int | None = None,
        tool_choice: str | None = None,
        output: Any = None,
        reasoning: ReasoningOptions | Mapping[str, Any] | None = None,
        options: Any = None,
        local: Any = None,
        provider_options: Mapping[str, Any] | None = None,
        endpoint_options: Mapping[str, Any] | None = None,
    ) -> Run:
        """Chat, run the functions the model asks for, and chat again until it answers.

        Every tool needs its Python function (plain functions, ``sipp.tool``
        ones). Async functions are awaited, sync ones run in a worker thread;
        one that raises reaches the model as an ``error: ...`` result. The loop
        makes at most ``max_turns`` model calls; the response is the last
        one, with ``usage`` summed over the turns and ``transcript`` holding
        the messages the loop appended. ``timeout`` and ``retries`` apply to
        each model call; other options as for :meth:`chat`.
        """
        given = _given(locals())
        if not isinstance(max_turns, int) or isinstance(max_turns, bool) or max_turns < 1:
            raise InvalidRequestError("max_turns must be an integer >= 1", field="max_turns")
        value = messages if isinstance(messages, ChatRequest) else list(messages)
        request, parse = _build(ChatRequest, "messages", value, given)
        for tool in request.tools or []:
            if not callable(tool.function):
                raise InvalidRequestError(
                    f"run_tools needs a Python function for every tool; {tool.name!r} has none "
                    "(build it with sipp.tool(fn) or pass the function itself)",
                    field="tools",
                )
        if not request.tools:
            raise InvalidRequestError("run_tools needs at least one tool", field="tools")
        return Run(self._start("chat", request, endpoint, given, parse, max_turns=max_turns))

    def embed(
        self,
        input: str | list[str] | EmbedRequest,
        *,
        endpoint: EndpointArg = None,
        timeout: float | Timeouts | None = None,
        retries: int | None = None,
        options: Any = None,
        local: Any = None,
        provider_options: Mapping[str, Any] | None = None,
        endpoint_options: Mapping[str, Any] | None = None,
    ) -> EmbedRun:
        """Turn a string into a vector, or a list of strings into one vector each."""
        given = _given(locals())
        request, _ = _build(EmbedRequest, "input", input, given)
        return EmbedRun(self._start("embed", request, endpoint, given, None))

    def _start(
        self,
        operation: Operation,
        request: AnyRequest,
        endpoint_arg: EndpointArg,
        given: dict[str, Any],
        parse: Callable[[str], Any] | None,
        *,
        max_turns: int | None = None,
    ) -> RunState:
        run_tasks = self._ensure_open(operation)
        endpoint = self._resolve(endpoint_arg, operation)
        request = fit_request(request, endpoint, _extras_keyword(given))
        stream = not isinstance(request, EmbedRequest) and request.emit_tokens
        timeouts = endpoint.timeouts
        if request.timeout is not None:
            per_request = Timeouts.of(request.timeout)
            assert per_request is not None
            timeouts = per_request.merged_over(timeouts)
        retries = request.retries if request.retries is not None else endpoint.driver.retries
        state: RunState
        if max_turns is not None:
            assert isinstance(request, ChatRequest)
            state = ToolLoopState(
                request,
                endpoint,
                timeouts=timeouts,
                retries=retries,
                stream=stream,
                parse=parse,
                max_turns=max_turns,
            )
        else:
            state = RunState(
                operation,
                request,
                endpoint,
                timeouts=timeouts,
                retries=retries,
                stream=stream,
                parse=parse,
            )
        self._runs.add(state)
        run_tasks.start(
            state.execute, functools.partial(self._runs.discard, state), f"sipp run {state.id}"
        )
        return state


def _driver_name(name: str, descriptor: object) -> str:
    if isinstance(descriptor, Descriptor):
        return descriptor.driver_name
    if not isinstance(descriptor, Mapping):
        raise ConfigurationError(
            f"endpoint {name!r}: a descriptor is a Descriptor or a dict, "
            f"not {type(descriptor).__name__}"
        )
    kind = descriptor.get("kind")
    if not isinstance(kind, str) or not kind:
        raise ConfigurationError(f"endpoint {name!r}: the descriptor needs a string 'kind' key")
    if kind != "provider":
        return kind
    provider = descriptor.get("provider")
    if not isinstance(provider, str) or not provider:
        raise ConfigurationError(
            f"endpoint {name!r}: a provider descriptor needs a string 'provider' key"
        )
    return f"provider.{provider}"


#: Keyword arguments of the request methods that are not request fields.
_EXTRAS_KEYWORDS = ("local", "provider_options", "endpoint_options")
_NOT_FIELDS = frozenset({"self", "endpoint", "output", "max_turns", *_EXTRAS_KEYWORDS})


def _given(arguments: dict[str, Any]) -> dict[str, Any]:
    """The keyword options the caller actually passed (``None`` means not given)."""
    return {key: value for key, value in arguments.items() if value is not None}


def _extras_keyword(given: dict[str, Any]) -> str | None:
    named = [key for key in _EXTRAS_KEYWORDS if key in given]
    if len(named) > 1 or (named and "options" in given):
        raise InvalidRequestError(
            "pass the endpoint's options once (options= or its own keyword)", field="options"
        )
    return named[0] if named else None


def _build(
    type_: type[RequestT], field: str, value: object, given: dict[str, Any]
) -> tuple[RequestT, Callable[[str], Any] | None]:
    """The typed request, and the validator of its answer when ``output=`` was given."""
    fields = {k: v for k, v in given.items() if k not in _NOT_FIELDS and k != field}
    keyword = _extras_keyword(given)
    if keyword is not None:
        fields["options"] = given[keyword]
    if isinstance(fields.get("options"), Mapping):
        fields["options"] = dict(fields["options"])
    parse = None
    if "output" in given:
        spec = output_spec(given["output"])
        fields["output_schema"] = spec.schema
        parse = spec.parse
    if "tools" in fields:
        fields["tools"] = to_tools(fields["tools"])
    if isinstance(value, type_):
        data = msgspec.structs.asdict(value)
        data.update(fields)
    elif isinstance(value, (QueryRequest, ChatRequest, EmbedRequest)):
        raise InvalidRequestError(
            f"expected a {type_.__name__}, got a {type(value).__name__}", field=field
        )
    else:
        data = {field: value, **fields}
    # Typed values (Tool, ChatMessage, ...) go in as they are; msgspec checks them.
    return convert_request(data, type_), parse


async def _close_driver(name: str, driver: Driver) -> None:
    with anyio.CancelScope(shield=True):
        try:
            await driver.aclose()
        except Exception:  # a failing close must not stop the others from closing
            import logging

            logging.getLogger("sipp").exception("closing endpoint %r failed", name)
