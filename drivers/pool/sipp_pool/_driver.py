"""The pool driver: one endpoint over several member endpoints, with failover.

The pool opens every member through the same registry the client uses, so a
member may be of any installed kind (local, providers, gateways, plugins).
For each request it asks the strategy for an order and tries the members in
turn. A member that fails *before anything reached the caller* with an error
worth retrying (connection, timeout, 429, 5xx) hands the request to the
next; after the first token the error goes to the caller, because a retry
would repeat text the caller has already seen.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Literal

import anyio
import msgspec

from sipp import (
    ChatRequest,
    ConfigurationError,
    Descriptor,
    EmbedRequest,
    QueryRequest,
    SippError,
    Timeouts,
    TransportError,
    UnsupportedOperationError,
    UpstreamError,
    load_driver,
)
from sipp.driver import (
    DRIVER_API_VERSION,
    Call,
    Capabilities,
    Driver,
    EmbeddingResult,
    OpenContext,
    TextResult,
)

from ._descriptor import PoolDescriptor
from ._health import MemberHealth, MemberStats
from ._hooks import EXTENSION, CooldownStore, PoolHooks
from ._strategy import Picker

__all__ = ["PoolDriver", "PoolFactory"]

logger = logging.getLogger("sipp_pool")

#: Longest a shared-cooldown write may hold up the request that started it.
_SHARE_LIMIT = 2.0

Operation = Literal["query", "chat", "embed"]

#: Statuses that say "this deployment, not this request": worth another member.
_FAILOVER_STATUSES = frozenset({408, 409, 429})


def worth_failover(error: SippError) -> bool:
    if isinstance(error, TransportError):  # connect errors, resets, timeouts
        return True
    if isinstance(error, UpstreamError):
        status = error.status or 0
        return status in _FAILOVER_STATUSES or status >= 500
    return False


class _MemberCall:
    """The pool's ``Call`` for one member: forwards everything, notes the first token."""

    __slots__ = ("_call", "_scope", "attempt", "first_at", "request_id", "stream", "timeouts")

    def __init__(self, call: Call, scope: anyio.CancelScope) -> None:
        self._call = call
        self._scope = scope
        self.request_id = call.request_id
        self.stream = call.stream
        self.timeouts = call.timeouts
        self.attempt = call.attempt
        self.first_at: float | None = None

    def _progress(self) -> None:
        if self.first_at is None:
            self.first_at = anyio.current_time()
            self._scope.deadline = math.inf  # the member's first-token limit is met

    async def emit(self, text: str, frames: int = 1) -> None:
        self._progress()
        await self._call.emit(text, frames)

    async def emit_reasoning(self, text: str, frames: int = 1) -> None:
        self._progress()
        await self._call.emit_reasoning(text, frames)

    async def emit_tool_call(
        self, index: int, *, id: str | None = None, name: str | None = None, arguments: str = ""
    ) -> None:
        self._progress()
        await self._call.emit_tool_call(index, id=id, name=name, arguments=arguments)

    @property
    def cancel_requested(self) -> bool:
        return self._call.cancel_requested


class PoolDriver:
    """An opened pool. ``member_stats()`` feeds metrics and consoles."""

    options_type: ClassVar[None] = None

    def __init__(
        self,
        descriptor: PoolDescriptor,
        members: list[tuple[str, Driver]],
        *,
        name: str = "pool",
        cooldowns: CooldownStore | None = None,
    ) -> None:
        self.descriptor = descriptor
        #: The endpoint's name: the key of this pool's cooldowns in a shared store.
        self.name = name
        self._cooldowns = cooldowns
        self._names = [name for name, _ in members]
        self._drivers = [driver for _, driver in members]
        self._health = [MemberHealth(name) for name in self._names]
        self._picker = Picker(descriptor.strategy, [m.weight for m in descriptor.members])
        caps = [driver.capabilities for driver in self._drivers]
        # The pool can do what any member can; each request goes only to members that can.
        self.capabilities = Capabilities(
            query=any(c.query for c in caps),
            chat=any(c.chat for c in caps),
            embed=any(c.embed for c in caps),
            streaming=all(c.streaming for c in caps),
            usage=all(c.usage for c in caps),
            tools=any(c.tools for c in caps),
            structured_output=any(c.structured_output for c in caps),
            vision=any(c.vision for c in caps),
            reasoning=any(c.reasoning for c in caps),
            embed_batch=any(c.embed_batch for c in caps),
        )
        self.timeouts = Timeouts.of(descriptor.timeout) or Timeouts()
        self.retries = descriptor.retries

    def member_stats(self) -> list[MemberStats]:
        now = anyio.current_time()
        return [health.snapshot(now) for health in self._health]

    async def query(self, request: QueryRequest, call: Call) -> TextResult:
        result: TextResult = await self._dispatch("query", request, call)
        return result

    async def chat(self, request: ChatRequest, call: Call) -> TextResult:
        result: TextResult = await self._dispatch("chat", request, call)
        return result

    async def embed(self, request: EmbedRequest, call: Call) -> EmbeddingResult:
        result: EmbeddingResult = await self._dispatch("embed", request, call)
        return result

    async def _dispatch(self, operation: Operation, request: Any, call: Call) -> Any:
        needs = _needs(operation, request)
        if self._cooldowns is not None:
            await self._read_shared_cooldowns(self._cooldowns)
        order = [
            i
            for i in self._picker.order(self._health, anyio.current_time())
            if all(getattr(self._drivers[i].capabilities, need) for need in needs)
        ]
        if not order:
            raise UnsupportedOperationError(f"no member of this pool can serve {operation}")
        last_error: SippError | None = None
        for position, index in enumerate(order):
            method: Callable[[Any, Any], Awaitable[Any]] = getattr(self._drivers[index], operation)
            try:
                return await self._try(index, method, request, call)
            except _Failover as failover:
                last_error = failover.error
                if position + 1 < len(order):
                    self._health[index].fallbacks += 1
            finally:
                if self._cooldowns is not None and self._health[index].unshared:
                    await self._share_cooldown(self._cooldowns, self._health[index])
        assert last_error is not None
        raise last_error

    async def _try(
        self, index: int, method: Callable[[Any, Any], Awaitable[Any]], request: Any, call: Call
    ) -> Any:
        health = self._health[index]
        descriptor = self.descriptor
        limit = descriptor.member_first_token_timeout
        started = anyio.current_time()
        health.started()
        try:
            with anyio.CancelScope(deadline=started + limit if limit else math.inf) as scope:
                member_call = _MemberCall(call, scope)
                try:
                    result = await method(request, member_call)
                except SippError as exc:
                    if not worth_failover(exc):
                        raise  # refused on its merits: another member would refuse it too
                    self._failed(health, getattr(exc, "retry_after", None))
                    if member_call.first_at is not None:
                        raise  # the caller has seen tokens: a retry would repeat them
                    raise _Failover(exc) from exc
            if scope.cancelled_caught:
                self._failed(health, None)
                raise _Failover(
                    TransportError(
                        f"pool member {health.name!r} gave no first token within {limit} s"
                    )
                )
        finally:
            health.ended()
        first = member_call.first_at
        health.succeeded(None if first is None else first - started)
        return result

    async def _read_shared_cooldowns(self, store: CooldownStore) -> None:
        """Take in the cooldowns other processes started (fail open: our own view stays)."""
        try:
            remaining = await store.remaining(self.name, self._names)
        except Exception as exc:  # a store that cannot answer must not fail the request
            logger.warning("pool %r: cooldown store unavailable: %r", self.name, exc)
            return
        now = anyio.current_time()
        # strict=False: a store that answers short leaves the rest to our own view.
        for health, seconds in zip(self._health, remaining, strict=False):
            if seconds > 0:
                health.cooling_until = max(health.cooling_until, now + seconds)

    async def _share_cooldown(self, store: CooldownStore, health: MemberHealth) -> None:
        """Publish a cooldown this process started, even while the request unwinds."""
        seconds = health.cooling_until - anyio.current_time()
        health.unshared = False
        if seconds <= 0:
            return
        with anyio.move_on_after(_SHARE_LIMIT, shield=True):
            try:
                await store.start(self.name, health.name, seconds)
            except Exception as exc:  # best effort: the other processes learn it themselves
                logger.warning("pool %r: cooldown store unavailable: %r", self.name, exc)

    def _failed(self, health: MemberHealth, retry_after: float | None) -> None:
        health.failed(
            anyio.current_time(),
            max_failures=self.descriptor.max_failures,
            cooldown=self.descriptor.cooldown,
            retry_after=retry_after,
        )

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            for driver in self._drivers:
                try:
                    await driver.aclose()
                except Exception:  # one member failing to close must not keep the others open
                    import logging

                    logging.getLogger("sipp_pool").exception("closing a pool member failed")


class _Failover(Exception):
    """A member failed before its first token in a way another member may not."""

    def __init__(self, error: SippError) -> None:
        super().__init__(str(error))
        self.error = error


def _needs(operation: Operation, request: Any) -> list[str]:
    needs: list[str] = [operation]
    if isinstance(request, EmbedRequest):
        if isinstance(request.input, list):
            needs.append("embed_batch")
        return needs
    if request.tools and request.tool_choice != "none":
        needs.append("tools")
    if request.output_schema is not None:
        needs.append("structured_output")
    if request.reasoning is not None:
        needs.append("reasoning")
    if isinstance(request, ChatRequest) and any(m.has_images for m in request.messages):
        needs.append("vision")
    return needs


class PoolFactory:
    """The ``pool`` entry point."""

    api_version: ClassVar[int] = DRIVER_API_VERSION
    descriptor_type = PoolDescriptor

    async def open(self, descriptor: Descriptor, context: OpenContext) -> PoolDriver:
        assert isinstance(descriptor, PoolDescriptor)
        hooks = context.extensions.get(EXTENSION)
        if hooks is not None and not isinstance(hooks, PoolHooks):
            raise ConfigurationError(
                f"pool {context.name!r}: extensions[{EXTENSION!r}] must be a sipp_pool.PoolHooks"
            )
        opened: list[tuple[str, Driver]] = []
        try:
            for member in descriptor.members:
                opened.append(
                    (member.name, await _open_member(member.name, member.descriptor, context))
                )
        except BaseException:
            with anyio.CancelScope(shield=True):
                for _, driver in opened:
                    await driver.aclose()
            raise
        pool = PoolDriver(
            descriptor,
            opened,
            name=context.name,
            cooldowns=hooks.cooldowns if hooks is not None else None,
        )
        if hooks is not None and hooks.opened is not None:
            hooks.opened(pool)
        return pool


async def _open_member(name: str, data: dict[str, Any], context: OpenContext) -> Driver:
    where = f"pool {context.name!r}, member {name!r}"
    kind = data.get("kind")
    if not isinstance(kind, str) or not kind:
        raise ConfigurationError(f"{where}: the descriptor needs a string 'kind' key")
    driver_name = kind
    if kind == "provider":
        driver_name = f"provider.{data.get('provider')}"
    factory = await anyio.to_thread.run_sync(load_driver, driver_name)
    try:
        typed = msgspec.convert(data, factory.descriptor_type, strict=True)
    except msgspec.ValidationError as exc:
        raise ConfigurationError(f"{where}: {exc}") from exc
    member_context = OpenContext(
        name=f"{context.name}/{name}",
        show_progress=context.show_progress,
        extensions=context.extensions,
    )
    return await factory.open(typed, member_context)
