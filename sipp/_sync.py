"""SyncClient: the same client without ``await``, for scripts, notebooks and threads.

Each ``SyncClient`` owns one event loop in one background thread (an anyio
``BlockingPortal``); every call hops into that loop and the calling thread
waits for the answer. So the client works wherever a thread can block: a plain
script, a thread pool, a worker thread of an asyncio or trio program, and the
thread of a running event loop (a Jupyter cell), because the caller's own
loop, if any, is never touched. Connections live on the client's own loop for
the client's whole life, which is what breaks in clients that run a fresh
loop per call ("Event loop is closed" on the second call).

Ctrl-C (``KeyboardInterrupt`` in the waiting thread) cancels the run being
waited for with reason ``caller_cancelled`` before the exception propagates,
so an interrupted call leaves no work running upstream.

The loop thread is a daemon: a client nobody closed never keeps the
interpreter from exiting. A finalizer closes such a client properly (its
runs cancelled, its endpoints closed, its thread joined) when it is garbage
collected or, at the latest, at interpreter exit.
"""

from __future__ import annotations

import contextlib
import threading
import types
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, Literal, TypedDict, TypeVar, cast

import anyio

from ._chat import ChatMessage, ReasoningOptions
from ._client import SippClient
from ._descriptors import Descriptor
from ._endpoint import EndpointRef
from ._errors import ClientClosedError
from ._handles import EmbedRun, Run
from ._models import ChatRequest, EmbedRequest, QueryRequest, Timeouts
from ._sync_run import SyncEmbedRun, SyncRun

if TYPE_CHECKING:
    import concurrent.futures

    from anyio.from_thread import BlockingPortal
    from typing_extensions import Unpack

__all__ = ["EmbedOptions", "SyncClient", "TextOptions"]

T = TypeVar("T")
EndpointArg = EndpointRef | str | None
Backend = Literal["asyncio", "trio"]

#: How long an interrupted call waits for its run to wind down before re-raising.
_INTERRUPT_GRACE = 2.0


class TextOptions(TypedDict, total=False):
    """The keyword options of ``query`` and ``chat``; the async client takes the same.

    One place to extend when the core grows an option: every blocking method
    forwards ``**options`` unchanged.
    """

    max_tokens: int
    temperature: float
    top_p: float
    stop: list[str]
    seed: int
    emit_tokens: bool
    timeout: float | Timeouts
    retries: int
    tools: Iterable[Any]
    tool_choice: str
    output: Any
    reasoning: ReasoningOptions | Mapping[str, Any]
    options: Any
    local: Any
    provider_options: Mapping[str, Any]
    endpoint_options: Mapping[str, Any]


class EmbedOptions(TypedDict, total=False):
    """The keyword options of ``embed``."""

    timeout: float | Timeouts
    retries: int
    options: Any
    local: Any
    provider_options: Mapping[str, Any]
    endpoint_options: Mapping[str, Any]


class _Loop:
    """One event loop in a daemon thread, reached through a blocking portal."""

    def __init__(self, backend: Backend, backend_options: dict[str, Any] | None) -> None:
        import concurrent.futures  # loaded by anyio's portal anyway; kept off `import sipp`

        ready: concurrent.futures.Future[BlockingPortal] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._serve,
            args=(backend, backend_options, ready),
            name="sipp-sync-loop",
            daemon=True,
        )
        self._thread.start()
        self.portal = ready.result()

    @staticmethod
    def _serve(
        backend: Backend,
        backend_options: dict[str, Any] | None,
        ready: concurrent.futures.Future[BlockingPortal],
    ) -> None:
        # Imported here, in the loop thread: `import sipp` does not pay for it.
        from anyio.from_thread import BlockingPortal

        async def main() -> None:
            async with BlockingPortal() as portal:
                ready.set_result(portal)
                await portal.sleep_until_stopped()

        try:
            anyio.run(main, backend=backend, backend_options=backend_options)
        except BaseException as exc:  # handed to the thread that waits for the portal
            if not ready.done():
                ready.set_exception(exc)
            else:
                raise

    def in_loop_thread(self) -> bool:
        return self._thread is threading.current_thread()

    def stop(self) -> None:
        if self.in_loop_thread():
            raise RuntimeError("a SyncClient cannot be closed from its own loop thread")
        with contextlib.suppress(RuntimeError):  # the portal already stopped
            self.portal.call(self.portal.stop, True)
        self._thread.join()


def _shutdown(loop: _Loop, context: contextlib.AbstractContextManager[Any]) -> None:
    """Close the client on its loop, then stop the loop; never holds a SyncClient reference."""
    if loop.in_loop_thread():
        # Collected on the loop's own thread: it cannot wait for itself; hand over.
        threading.Thread(target=_shutdown, args=(loop, context), daemon=True).start()
        return
    try:
        context.__exit__(None, None, None)
    finally:
        loop.stop()


class SyncClient:
    """``SippClient`` without ``await``: every method blocks until it has its answer.

    ::

        with SyncClient() as client:
            client.add("local", {"kind": "local", "source": "model.gguf"})
            print(client.query("Hello", max_tokens=32).response().text)

    ``backend`` picks the background loop (``"asyncio"`` or ``"trio"``). Safe
    to share between threads. Close it with ``close()`` or a ``with`` block;
    one left open is closed at interpreter exit.
    """

    def __init__(
        self,
        *,
        backend: Backend = "asyncio",
        backend_options: dict[str, Any] | None = None,
        show_progress: bool = False,
    ) -> None:
        self._lock = threading.Lock()
        self._closed = False
        self._loop = _Loop(backend, backend_options)
        self._client = SippClient(show_progress=show_progress)
        # Entered and left in one task of the loop, as the client's task group requires.
        self._context = self._loop.portal.wrap_async_context_manager(self._client)
        try:
            self._context.__enter__()
        except BaseException:
            self._loop.stop()
            raise
        # Runs once: from close(), when the client is collected, or at interpreter exit.
        self._finalizer = weakref.finalize(self, _shutdown, self._loop, self._context)

    # -- lifecycle ---------------------------------------------------------------

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Cancel runs in flight (reason ``client_closed``), close every endpoint, stop the loop.

        Idempotent; safe from any thread except the client's own loop.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._finalizer()

    @property
    def closed(self) -> bool:
        return self._closed

    def _call(self, func: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await func(*args)`` on the loop and wait for it here."""
        return cast("T", self._call_plain(_awaited, func, *args))

    def _call_plain(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func(*args)`` on the loop's thread (the client is single-threaded there)."""
        if self._closed:
            raise ClientClosedError("the SyncClient is closed")
        try:
            return self._loop.portal.call(func, *args)
        except RuntimeError as exc:
            if self._closed:
                raise ClientClosedError("the SyncClient is closed") from exc
            raise

    # -- endpoints ---------------------------------------------------------------

    def add(self, name: str, descriptor: Descriptor | Mapping[str, Any]) -> EndpointRef:
        """Register (or replace) the endpoint ``name``; see ``SippClient.add``."""
        return self._call(self._client.add, name, descriptor)

    def remove(self, name: str) -> None:
        self._call_plain(self._client.remove, name)

    def get(self, name: str) -> EndpointRef:
        return self._call_plain(self._client.get, name)

    @property
    def endpoints(self) -> Mapping[str, EndpointRef]:
        """A read-only snapshot of the registered endpoints by name."""
        return self._call_plain(lambda: self._client.endpoints)

    # -- requests ------------------------------------------------------------------

    def query(
        self,
        prompt: str | QueryRequest,
        *,
        endpoint: EndpointArg = None,
        **options: Unpack[TextOptions],
    ) -> SyncRun:
        """Start completing ``prompt``; ``.response()`` on the result waits for the answer."""
        run = self._start(lambda: self._client.query(prompt, endpoint=endpoint, **options))
        return SyncRun(run, self)

    def chat(
        self,
        messages: Iterable[ChatMessage | Mapping[str, Any]] | ChatRequest,
        *,
        endpoint: EndpointArg = None,
        **options: Unpack[TextOptions],
    ) -> SyncRun:
        """Start continuing a conversation; ``.response()`` waits for the answer."""
        if not isinstance(messages, ChatRequest):
            messages = list(messages)  # a generator is consumed here, in the caller's thread
        run = self._start(lambda: self._client.chat(messages, endpoint=endpoint, **options))
        return SyncRun(run, self)

    def embed(
        self,
        input: str | list[str] | EmbedRequest,
        *,
        endpoint: EndpointArg = None,
        **options: Unpack[EmbedOptions],
    ) -> SyncEmbedRun:
        """Start embedding ``input`` (a list: one vector each); ``.response()`` waits."""
        run = self._start(lambda: self._client.embed(input, endpoint=endpoint, **options))
        return SyncEmbedRun(run, self)

    def _start(self, start: Callable[[], T]) -> T:
        # The run is created on the loop (it belongs to the loop's task group).
        starter = _Starter(start)
        try:
            return self._call(starter)
        except KeyboardInterrupt:
            starter.abandon()  # Ctrl-C while the loop created it: nothing keeps running
            raise

    def _wait(self, handle: Run | EmbedRun, func: Callable[[], Awaitable[T]]) -> T:
        """Wait in this thread for ``func()`` on the loop; Ctrl-C cancels ``handle``'s run."""
        future = None
        try:
            try:
                future = self._loop.portal.start_task_soon(func)
            except RuntimeError as exc:
                raise ClientClosedError("the SyncClient is closed") from exc
            return future.result()
        except KeyboardInterrupt:
            # Ctrl-C can land while the task is being handed to the loop, too.
            handle.cancel("caller_cancelled")
            if future is not None:
                # Let the run wind down (its HTTP stream closed, its slot released) so
                # the interrupted program does not exit with work still in flight.
                import concurrent.futures

                concurrent.futures.wait([future], timeout=_INTERRUPT_GRACE)
            raise

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<SyncClient {state}>"


async def _awaited(func: Callable[..., Awaitable[T]], *args: Any) -> T:
    return await func(*args)


class _Starter(Generic[T]):
    """Creates a run on the loop; whichever of "created" and "abandoned" comes second cancels."""

    def __init__(self, start: Callable[[], T]) -> None:
        self._start = start
        self._lock = threading.Lock()
        self._handle: T | None = None
        self._abandoned = False

    async def __call__(self) -> T:
        # A coroutine on purpose: the portal awaits what a plain function returns,
        # and a Run is awaitable, so it would hand back the response instead.
        handle = self._start()
        with self._lock:
            self._handle = handle
            abandoned = self._abandoned
        if abandoned:
            _cancel(handle)
        return handle

    def abandon(self) -> None:
        with self._lock:
            self._abandoned = True
            handle = self._handle
        if handle is not None:
            _cancel(handle)


def _cancel(handle: object) -> None:
    if isinstance(handle, (Run, EmbedRun)):
        handle.cancel("caller_cancelled")
