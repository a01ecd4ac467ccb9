"""SippClient: the endpoints, the task group their runs live in, and the request entry points."""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeVar

import anyio
import msgspec

from ._descriptors import Descriptor
from ._endpoint import Endpoint, EndpointRef
from ._errors import (
    ClientClosedError,
    ConfigurationError,
    EndpointNotFoundError,
    InvalidRequestError,
    UnsupportedOperationError,
)
from ._models import ChatMessage, ChatRequest, EmbedRequest, QueryRequest, Timeouts
from ._registry import load_driver
from ._run import EmbedRun, Run, RunState
from ._validation import convert_descriptor, convert_request
from .driver import Driver, OpenContext, Operation

__all__ = ["SippClient"]

RequestT = TypeVar("RequestT", QueryRequest, ChatRequest, EmbedRequest)
EndpointArg = EndpointRef | str | None

_EXTRAS_OWNER = {"local": "local", "provider_options": "provider", "endpoint_options": "gateway"}
#: Keys an extras dict may not set, because they are typed fields on the wire.
_TEXT_WIRE_KEYS = frozenset(
    {"model", "prompt", "messages", "max_tokens", "temperature", "top_p", "stop", "seed", "stream"}
)
_EMBED_WIRE_KEYS = frozenset({"model", "input"})


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

    def _ensure_open(self, action: str) -> anyio.abc.TaskGroup:
        if self._state == "open" and self._task_group is not None:
            return self._task_group
        if self._state == "new":
            raise ClientClosedError(
                f"cannot {action}: the SippClient is not open; "
                "use `async with SippClient() as client:`"
            )
        raise ClientClosedError(f"cannot {action}: the SippClient is closed")

    # -- endpoints ---------------------------------------------------------------

    async def add(self, name: str, descriptor: Descriptor | Mapping[str, Any]) -> EndpointRef:
        """Register (or replace) the endpoint ``name``; the slow work happens here.

        ``descriptor`` is a typed descriptor or a dict with a ``kind`` key. A
        replaced endpoint keeps serving its runs in flight and is closed after them.
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
        else:
            raise ConfigurationError(
                f"endpoint {name!r}: driver {driver_name!r} takes a "
                f"{factory.descriptor_type.__name__}, not a {type(descriptor).__name__}"
            )
        driver = await factory.open(
            typed, OpenContext(name=name, show_progress=self._show_progress)
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
        self, prompt: str | QueryRequest, *, endpoint: EndpointArg = None, **options: Any
    ) -> Run:
        """Complete a raw prompt. Returns a running ``Run``; ``await`` it for the response."""
        request = _build(QueryRequest, "prompt", prompt, options)
        return Run(self._start("query", request, endpoint, request.emit_tokens))

    def chat(
        self,
        messages: Iterable[ChatMessage | Mapping[str, str]] | ChatRequest,
        *,
        endpoint: EndpointArg = None,
        **options: Any,
    ) -> Run:
        """Continue a conversation (``[{"role": "user", "content": "Hi"}]``)."""
        value = messages if isinstance(messages, ChatRequest) else list(messages)
        request = _build(ChatRequest, "messages", value, options)
        return Run(self._start("chat", request, endpoint, request.emit_tokens))

    def embed(
        self, input: str | EmbedRequest, *, endpoint: EndpointArg = None, **options: Any
    ) -> EmbedRun:
        """Turn one string into one vector."""
        request = _build(EmbedRequest, "input", input, options)
        return EmbedRun(self._start("embed", request, endpoint, False))

    def _start(
        self,
        operation: Operation,
        request: QueryRequest | ChatRequest | EmbedRequest,
        endpoint_arg: EndpointArg,
        stream: bool,
    ) -> RunState:
        task_group = self._ensure_open(operation)
        endpoint = self._resolve(endpoint_arg, operation)
        _check_extras(request, endpoint)
        timeouts = endpoint.timeouts
        if request.timeout is not None:
            per_request = Timeouts.of(request.timeout)
            assert per_request is not None
            timeouts = per_request.merged_over(timeouts)
        retries = request.retries if request.retries is not None else endpoint.driver.retries
        state = RunState(
            operation, request, endpoint, timeouts=timeouts, retries=retries, stream=stream
        )
        self._runs.add(state)
        task_group.start_soon(self._execute, state, name=f"sipp run {state.id}")
        return state

    async def _execute(self, state: RunState) -> None:
        try:
            await state.execute()
        finally:
            self._runs.discard(state)


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


def _build(type_: type[RequestT], field: str, value: object, options: dict[str, Any]) -> RequestT:
    if isinstance(value, type_):
        if not options:
            data = msgspec.structs.asdict(value)
        else:
            data = {**msgspec.structs.asdict(value), **options}
    elif isinstance(value, (QueryRequest, ChatRequest, EmbedRequest)):
        raise InvalidRequestError(
            f"expected a {type_.__name__}, got a {type(value).__name__}", field=field
        )
    else:
        data = {field: value, **options}
    return convert_request(data, type_)


def _check_extras(request: QueryRequest | ChatRequest | EmbedRequest, endpoint: Endpoint) -> None:
    accepted = endpoint.driver.capabilities.extras
    for extras, owner in _EXTRAS_OWNER.items():
        value = getattr(request, extras)
        if value is None:
            continue
        if extras != accepted:
            raise InvalidRequestError(
                f"{extras}= is accepted only by {owner} endpoints; endpoint "
                f"{endpoint.info.name!r} is a {endpoint.info.kind} endpoint",
                field=extras,
            )
        if isinstance(value, dict):
            typed = _EMBED_WIRE_KEYS if isinstance(request, EmbedRequest) else _TEXT_WIRE_KEYS
            clash = sorted(typed.intersection(value))
            if clash:
                raise InvalidRequestError(
                    f"{extras} may not set the typed field {clash[0]!r}; pass it as an option",
                    field=f"{extras}.{clash[0]}",
                )
    local = request.local
    constrained = local is not None and (local.grammar or local.json_schema)
    if constrained and not endpoint.driver.capabilities.grammar:
        raise UnsupportedOperationError(
            f"endpoint {endpoint.info.name!r} does not support grammar or json_schema"
        )


async def _close_driver(name: str, driver: Driver) -> None:
    with anyio.CancelScope(shield=True):
        try:
            await driver.aclose()
        except Exception:  # a failing close must not stop the others from closing
            import logging

            logging.getLogger("sipp").exception("closing endpoint %r failed", name)
