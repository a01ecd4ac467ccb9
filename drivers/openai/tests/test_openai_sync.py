"""The blocking client through the openai_compatible driver, over real loopback HTTP."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from typing import Any

import pytest
from openai_mock import MockState, ServerThread

from sipp import RateLimitedError, RunCancelled, SyncClient


def descriptor(server: ServerThread, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "provider",
        "provider": "openai_compatible",
        "model": "tokens=3",
        "base_url": server.base_url,
        "api_key": "sk-test-sync",
        "retries": 0,
        **extra,
    }


@pytest.fixture(params=["asyncio", "trio"])
def client(request: pytest.FixtureRequest, mock_server: ServerThread) -> Iterator[SyncClient]:
    with SyncClient(backend=request.param) as client:
        client.add("mock", descriptor(mock_server))
        yield client


def test_streams_and_answers_over_http(client: SyncClient) -> None:
    run = client.chat([{"role": "user", "content": "hi"}], emit_tokens=True)
    streamed = "".join(batch.text for batch in run.tokens)
    response = run.response()
    assert streamed == response.text == "tok0 tok1 tok2 "
    assert response.usage.output_tokens == 3


def test_the_connection_pool_survives_between_calls_and_threads(
    client: SyncClient, mock_state: MockState
) -> None:
    # One loop for the client's whole life: pooled connections stay usable, the
    # failure mode of clients that run a new loop per call ("Event loop is closed").
    assert client.query("a").response().text == "tok0 tok1 tok2 "
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        texts = list(pool.map(lambda i: client.query(f"q{i}").response().text, range(16)))
    assert texts == ["tok0 tok1 tok2 "] * 16
    assert client.query("again").response().text == "tok0 tok1 tok2 "


def test_upstream_errors_and_cancel_cross_the_thread(
    client: SyncClient, mock_server: ServerThread
) -> None:
    client.add("limited", descriptor(mock_server, model="status=429;code=rate_limit_exceeded"))
    with pytest.raises(RateLimitedError):
        client.query("x", endpoint="limited").response()
    client.add("slow", descriptor(mock_server, model="tokens=200;delay=0.02"))
    run = client.query("x", endpoint="slow", emit_tokens=True)
    next(iter(run.tokens))
    run.cancel()
    with pytest.raises(RunCancelled) as caught:
        run.response()
    assert caught.value.reason == "caller_cancelled"
    assert client.query("after", endpoint="mock").response().text == "tok0 tok1 tok2 "
