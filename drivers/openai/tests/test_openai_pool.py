"""Cancellation and the connection pool: cancelled streams must not leak connections."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from openai_mock import MockState, ServerThread
from sipp_openai import OpenAIDriver, OpenAIFactory

import sipp
from sipp import SippClient, register_driver, unregister_driver
from sipp.driver import OpenContext

pytestmark = pytest.mark.anyio


class RecordingFactory(OpenAIFactory):
    """The real factory, remembering the drivers it opened so tests can inspect the pool."""

    def __init__(self) -> None:
        super().__init__("openai_compatible")
        self.opened: list[OpenAIDriver] = []

    async def open(self, descriptor: Any, context: OpenContext) -> OpenAIDriver:
        driver = await super().open(descriptor, context)
        self.opened.append(driver)
        return driver


@pytest.fixture
def factory() -> Any:
    factory = RecordingFactory()
    register_driver("provider.recording_openai", factory)
    yield factory
    unregister_driver("provider.recording_openai")


def pool_of(driver: OpenAIDriver) -> Any:
    return driver.client._transport.pool  # type: ignore[attr-defined]


def httpcore_pool_of(driver: OpenAIDriver) -> Any:
    transport = driver.client._transport
    assert isinstance(transport, httpx.AsyncHTTPTransport)
    return transport._pool


@pytest.mark.parametrize("http_transport", ["lean", "httpx"])
async def test_cancelled_streams_leave_the_pool_empty(
    factory: RecordingFactory, mock_server: ServerThread, mock_state: MockState,
    http_transport: str,
) -> None:  # fmt: skip
    async with SippClient() as client:
        ep = await client.add(
            "m",
            {
                "kind": "provider",
                "provider": "recording_openai",
                "model": "tokens=100000;delay=0.005",
                "base_url": mock_server.base_url,
                "max_connections": 10,
                "retries": 0,
                "http_transport": http_transport,
            },
        )
        driver = factory.opened[-1]
        cancelled = 0

        async def one_stream() -> None:
            nonlocal cancelled
            run = client.chat([{"role": "user", "content": "Hi"}], endpoint=ep, emit_tokens=True)
            async for _batch in run.tokens:
                run.cancel("caller_cancelled")
            with pytest.raises(sipp.RunCancelled):
                await run
            cancelled += 1

        with anyio.fail_after(90):
            for _ in range(1000 // 25):
                async with anyio.create_task_group() as group:
                    for _ in range(25):  # more streams than connections: some wait in the pool
                        group.start_soon(one_stream)
        assert cancelled == 1000

        response = await client.chat([{"role": "user", "content": "Hi"}], endpoint="m")
        assert response.finish_reason == "stop"
        if http_transport == "lean":
            pool = pool_of(driver)
            assert pool.connections == pool.idle <= 10  # nothing active, nothing leaked
        else:  # httpcore's pool has leaked connections here before
            pool = httpcore_pool_of(driver)
            assert pool._requests == []
            assert len(pool.connections) <= 10
            assert all(connection.is_idle() for connection in pool.connections)
    if http_transport == "lean":
        assert pool.connections == 0
    else:
        assert pool.connections == []


async def test_cancel_closes_the_upstream_stream(
    factory: RecordingFactory, mock_server: ServerThread, mock_state: MockState
) -> None:
    async with SippClient() as client:
        ep = await client.add(
            "m",
            {
                "kind": "provider",
                "provider": "recording_openai",
                "model": "tokens=100000;delay=0.01",
                "base_url": mock_server.base_url,
            },
        )
        before = mock_state.open_streams
        run = client.query("x", endpoint=ep, emit_tokens=True)
        async for _batch in run.tokens:
            break
        assert mock_state.open_streams == before + 1
        run.cancel()
        with pytest.raises(sipp.RunCancelled) as caught:
            await run
        assert caught.value.partial is not None and caught.value.partial.text.startswith("tok0")
        with anyio.fail_after(5):
            while mock_state.open_streams > before:  # noqa: ASYNC110  (another thread's counter)
                await anyio.sleep(0.01)
        assert (await client.query("x", endpoint=ep, max_tokens=3, timeout=5)).text
