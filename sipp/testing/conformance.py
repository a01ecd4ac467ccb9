"""The conformance kit: the driver contract as a pytest test suite.

A driver author subclasses :class:`DriverConformance` in a test module and
provides a ``descriptor`` fixture (a dict or Descriptor for an endpoint that
streams several tokens for the kit's prompt). Every test runs on asyncio and
trio::

    from sipp.testing.conformance import DriverConformance

    class TestMyDriver(DriverConformance):
        @pytest.fixture
        def descriptor(self):
            return {"kind": "my-kind", "model": "small"}

Override ``request_options`` (default ``{"max_tokens": 32}``) if the endpoint
needs other options to produce a few tokens. The kit checks what every driver
must do whatever its transport: streamed text equals the response, batches
are contiguous, cancellation at every phase and from another thread, outside
cancellation staying native, closing the client with runs in flight, dropped
runs, operations the endpoint cannot do refused before any I/O, and no task
or thread left behind.

Contract v2's capabilities are checked on every endpoint that declares them
(and refused before any I/O on every one that does not): a tool-call round
trip, structured output parsed, reasoning kept out of the text, an image
part accepted, one vector per input. These checks talk to ``rich_descriptor``
(default: ``descriptor``) and take their requests from fixtures a driver's
tests override to make its mock produce those things: ``tool_call_request``,
``structured_request``, ``reasoning_request``, ``vision_request`` (``chat``
keyword arguments, ``messages`` included) and ``embed_batch_inputs``::

    class TestMyDriver(DriverConformance):
        @pytest.fixture
        def reasoning_request(self):
            return {"messages": [{"role": "user", "content": "think"}],
                    "reasoning": {"budget_tokens": 1024}}
"""

from __future__ import annotations

import gc
import threading
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
import pytest

from .. import (
    EndpointRef,
    Run,
    RunCancelled,
    SippClient,
    UnsupportedOperationError,
)
from .._descriptors import Descriptor
from ._conformance_rich import KIT_TOOL, TINY_PNG, KitAnswer, RichConformance

__all__ = [
    "KIT_TOOL",
    "TINY_PNG",
    "DriverConformance",
    "KitAnswer",
    "leftover_threads",
    "settle",
]

_POOL_THREAD_PREFIXES = ("AnyIO worker thread", "Trio thread", "asyncio_")


def leftover_threads(baseline: set[threading.Thread]) -> list[threading.Thread]:
    """Threads started since ``baseline`` that are still alive, ignoring idle pool workers."""
    return [
        thread
        for thread in threading.enumerate()
        if thread not in baseline
        and thread.is_alive()
        and not thread.name.startswith(_POOL_THREAD_PREFIXES)
    ]


async def settle(predicate: Any, *, seconds: float = 5.0) -> None:
    """Wait until ``predicate()`` is true (cleanup runs on the loop, a moment later)."""
    with anyio.fail_after(seconds):
        while not predicate():  # noqa: ASYNC110 (polls state that has no event to wait on)
            await anyio.sleep(0.01)


class DriverConformance(RichConformance):
    """Subclass and provide a ``descriptor`` fixture; see the module docstring."""

    prompt = "Write a short story about a lighthouse keeper."
    endpoint_name = "under-test"

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        backend: str = request.param
        return backend

    @pytest.fixture
    def request_options(self) -> dict[str, Any]:
        return {"max_tokens": 32}

    @pytest.fixture
    async def client(
        self, descriptor: Descriptor | Mapping[str, Any]
    ) -> AsyncIterator[tuple[SippClient, EndpointRef]]:
        async with SippClient() as client:
            endpoint = await client.add(self.endpoint_name, descriptor)
            yield client, endpoint

    async def _assert_healthy(self, client: SippClient, endpoint: EndpointRef, opts: Any) -> None:
        response = await client.query(self.prompt, endpoint=endpoint, **opts)
        assert response.text, "the endpoint must still answer after the previous run"

    # -- streaming and responses ---------------------------------------------------

    @pytest.mark.anyio
    async def test_streamed_text_equals_response(self, client: Any, request_options: Any) -> None:
        sipp_client, endpoint = client
        run = sipp_client.query(self.prompt, endpoint=endpoint, emit_tokens=True, **request_options)
        texts = [batch.text async for batch in run.tokens]
        response = await run
        assert "".join(texts) == response.text
        assert response.text
        assert response.finish_reason in ("stop", "length")
        assert response.request_id == run.id
        assert run.status == "completed"

    @pytest.mark.anyio
    async def test_batches_are_contiguous_and_counted(
        self, client: Any, request_options: Any
    ) -> None:
        sipp_client, endpoint = client
        run = sipp_client.query(self.prompt, endpoint=endpoint, emit_tokens=True, **request_options)
        expected_start = frames = size = 0
        async for count, batch in _enumerate(run.tokens):
            assert batch.request_id == run.id
            assert batch.sequence_start == expected_start
            assert batch.byte_count == len(batch.text.encode("utf-8"))
            expected_start += batch.frame_count
            frames += batch.frame_count
            size += batch.byte_count
            assert batch.stats.frames_sent == frames
            assert batch.stats.bytes_sent == size
            assert batch.stats.batches_sent == count
        await run

    @pytest.mark.anyio
    async def test_without_streaming_one_batch_arrives_at_the_end(
        self, client: Any, request_options: Any
    ) -> None:
        sipp_client, endpoint = client
        run = sipp_client.query(self.prompt, endpoint=endpoint, **request_options)
        batches = [batch async for batch in run.tokens]
        response = await run
        assert len(batches) == (1 if response.text else 0)
        assert "".join(b.text for b in batches) == response.text

    @pytest.mark.anyio
    async def test_reader_that_breaks_early_loses_nothing(
        self, client: Any, request_options: Any
    ) -> None:
        sipp_client, endpoint = client
        run = sipp_client.query(self.prompt, endpoint=endpoint, emit_tokens=True, **request_options)
        async for _ in run.tokens:
            break
        response = await run
        assert response.text
        assert run.status == "completed"

    # -- cancellation ----------------------------------------------------------------

    @pytest.mark.anyio
    async def test_cancel_before_first_token(self, client: Any, request_options: Any) -> None:
        sipp_client, endpoint = client
        run = sipp_client.query(self.prompt, endpoint=endpoint, emit_tokens=True, **request_options)
        run.cancel("caller_cancelled")
        run.cancel("second call is a no-op")
        with pytest.raises(RunCancelled) as caught:
            await run
        assert caught.value.reason == "caller_cancelled"
        assert caught.value.partial is not None
        assert caught.value.partial.finish_reason == "cancelled"
        assert run.status == "cancelled"
        assert [b async for b in run.tokens] == []
        await self._assert_healthy(sipp_client, endpoint, request_options)

    @pytest.mark.anyio
    async def test_cancel_mid_stream(self, client: Any, request_options: Any) -> None:
        sipp_client, endpoint = client
        run = sipp_client.query(self.prompt, endpoint=endpoint, emit_tokens=True, **request_options)
        seen = []
        async for batch in run.tokens:
            seen.append(batch.text)
            run.cancel("mid_stream")
        with pytest.raises(RunCancelled) as caught:
            await run.response
        assert caught.value.reason == "mid_stream"
        assert caught.value.partial is not None
        assert caught.value.partial.text.startswith(seen[0])
        await self._assert_healthy(sipp_client, endpoint, request_options)

    @pytest.mark.anyio
    async def test_cancel_from_another_thread(self, client: Any, request_options: Any) -> None:
        sipp_client, endpoint = client
        run = sipp_client.query(self.prompt, endpoint=endpoint, emit_tokens=True, **request_options)
        async for _ in run.tokens:
            await anyio.to_thread.run_sync(run.cancel, "from_thread")
        with pytest.raises(RunCancelled) as caught:
            await run
        assert caught.value.reason == "from_thread"
        await self._assert_healthy(sipp_client, endpoint, request_options)

    @pytest.mark.anyio
    async def test_outside_cancellation_stays_native_and_stops_the_run(
        self, client: Any, request_options: Any
    ) -> None:
        sipp_client, endpoint = client
        run = sipp_client.query(self.prompt, endpoint=endpoint, emit_tokens=True, **request_options)
        with anyio.move_on_after(0) as scope:
            await run
        assert scope.cancelled_caught
        with pytest.raises(RunCancelled):
            await run
        assert run.status == "cancelled"

    @pytest.mark.anyio
    async def test_closing_the_client_cancels_runs_in_flight(
        self, descriptor: Any, request_options: Any
    ) -> None:
        baseline = set(threading.enumerate())
        async with SippClient() as sipp_client:
            endpoint = await sipp_client.add(self.endpoint_name, descriptor)
            run = sipp_client.query(
                self.prompt, endpoint=endpoint, emit_tokens=True, **request_options
            )
            async for _ in run.tokens:
                break
        assert run.status in ("cancelled", "completed")
        if run.status == "cancelled":
            assert run.cancel_reason == "client_closed"
        assert leftover_threads(baseline) == []

    @pytest.mark.anyio
    async def test_dropped_run_is_cancelled_and_released(
        self, client: Any, request_options: Any
    ) -> None:
        sipp_client, endpoint = client
        tasks_before = len(anyio.get_running_tasks())
        sipp_client.query(self.prompt, endpoint=endpoint, emit_tokens=True, **request_options)
        gc.collect()
        await settle(lambda: len(anyio.get_running_tasks()) <= tasks_before)
        await self._assert_healthy(sipp_client, endpoint, request_options)

    # -- refusals and leaks -------------------------------------------------------------

    @pytest.mark.anyio
    async def test_unsupported_operations_are_refused_before_io(self, client: Any) -> None:
        sipp_client, endpoint = client
        capabilities = _capabilities(sipp_client, endpoint)
        if not capabilities.chat:
            with pytest.raises(UnsupportedOperationError):
                sipp_client.chat([{"role": "user", "content": "hi"}], endpoint=endpoint)
        if not capabilities.embed:
            with pytest.raises(UnsupportedOperationError):
                sipp_client.embed("hi", endpoint=endpoint)

    @pytest.mark.anyio
    async def test_chat_and_embed_when_supported(self, client: Any, request_options: Any) -> None:
        sipp_client, endpoint = client
        capabilities = _capabilities(sipp_client, endpoint)
        if capabilities.chat:
            response = await sipp_client.chat(
                [{"role": "user", "content": self.prompt}], endpoint=endpoint, **request_options
            )
            assert response.text
        if capabilities.embed:
            embedding = await sipp_client.embed(self.prompt, endpoint=endpoint)
            assert embedding.values
            assert all(isinstance(v, float) for v in embedding.values)

    @pytest.mark.anyio
    async def test_nothing_left_behind(self, descriptor: Any, request_options: Any) -> None:
        baseline = set(threading.enumerate())
        tasks_before = len(anyio.get_running_tasks())
        async with SippClient() as sipp_client:
            endpoint = await sipp_client.add(self.endpoint_name, descriptor)
            runs: list[Run] = [
                sipp_client.query(
                    self.prompt, endpoint=endpoint, emit_tokens=True, **request_options
                )
                for _ in range(3)
            ]
            runs[0].cancel()
            async for _ in runs[1].tokens:
                break
            await runs[2]
        assert len(anyio.get_running_tasks()) == tasks_before
        assert leftover_threads(baseline) == []


def _capabilities(client: SippClient, endpoint: EndpointRef) -> Any:
    return client.get(endpoint.name).capabilities


async def _enumerate(iterator: Any) -> AsyncIterator[tuple[int, Any]]:
    count = 0
    async for item in iterator:
        count += 1
        yield count, item
