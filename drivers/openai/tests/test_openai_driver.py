"""The openai / openai_compatible drivers against the loopback mock: the happy paths."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from openai_mock import MockState, ServerThread

import sipp
from sipp import SippClient, installed_drivers

pytestmark = pytest.mark.anyio

SECRET = "sk-test-0123456789abcdef"


def descriptor(server: ServerThread, model: str = "tokens=3", **extra: Any) -> dict[str, Any]:
    return {
        "kind": "provider",
        "provider": "openai_compatible",
        "model": model,
        "base_url": server.base_url,
        "api_key": SECRET,
        "retries": 0,
        **extra,
    }


@pytest.fixture
async def client() -> AsyncIterator[SippClient]:
    async with SippClient() as client:
        yield client


def last_request(state: MockState, request_id: str) -> dict[str, Any]:
    return next(r for r in reversed(state.requests) if r["headers"]["x-request-id"] == request_id)


def test_entry_points_are_installed() -> None:
    names = {info.name: info.distribution for info in installed_drivers()}
    assert names["provider.openai"] == "sipp-openai"
    assert names["provider.openai_compatible"] == "sipp-openai"


@pytest.mark.parametrize(
    "stream", [pytest.param(True, id="stream"), pytest.param(False, id="whole")]
)
async def test_chat(
    client: SippClient, mock_server: ServerThread, mock_state: MockState, stream: bool
) -> None:
    ep = await client.add("m", descriptor(mock_server))
    run = client.chat([{"role": "user", "content": "Hi"}], endpoint=ep, emit_tokens=stream)
    batches = [batch.text async for batch in run.tokens]
    response = await run
    assert response.text == "tok0 tok1 tok2 "
    assert "".join(batches) == response.text
    assert response.finish_reason == "stop"
    assert response.usage == sipp.Usage(input_tokens=7, output_tokens=3, total_tokens=10)
    assert response.id == "cmpl-mock"
    sent = last_request(mock_state, run.id)
    assert sent["path"] == "/v1/chat/completions"
    assert sent["body"]["messages"] == [{"role": "user", "content": "Hi"}]
    assert sent["body"].get("stream", False) is stream
    if stream:
        assert sent["body"]["stream_options"] == {"include_usage": True}
        assert len(batches) >= 1


@pytest.mark.parametrize(
    "stream", [pytest.param(True, id="stream"), pytest.param(False, id="whole")]
)
async def test_query_uses_completions(
    client: SippClient, mock_server: ServerThread, mock_state: MockState, stream: bool
) -> None:
    ep = await client.add("m", descriptor(mock_server, "tokens=4;finish=length"))
    run = client.query("Once", endpoint=ep, emit_tokens=stream, max_tokens=4, temperature=0.5)
    response = await run
    assert response.text == "tok0 tok1 tok2 tok3 "
    assert response.finish_reason == "length"
    assert response.usage.output_tokens == 4
    sent = last_request(mock_state, run.id)
    assert sent["path"] == "/v1/completions"
    assert sent["body"]["prompt"] == "Once"
    assert sent["body"]["max_tokens"] == 4
    assert sent["body"]["temperature"] == 0.5


@pytest.mark.parametrize("finish", ["max_tokens", "max_output_tokens", "content_filter"])
async def test_finish_reason_mapping(
    client: SippClient, mock_server: ServerThread, finish: str
) -> None:
    ep = await client.add("m", descriptor(mock_server, f"finish={finish}"))
    response = await client.chat([{"role": "user", "content": "Hi"}], endpoint=ep, emit_tokens=True)
    assert response.finish_reason == ("stop" if finish == "content_filter" else "length")


async def test_stream_without_done_after_finish_succeeds(
    client: SippClient, mock_server: ServerThread
) -> None:
    ep = await client.add("m", descriptor(mock_server, "end=nodone"))
    response = await client.query("x", endpoint=ep, emit_tokens=True)
    assert response.text == "tok0 tok1 tok2 "


async def test_headers_request_id_and_auth(
    client: SippClient, mock_server: ServerThread, mock_state: MockState
) -> None:
    ep = await client.add(
        "m", descriptor(mock_server, headers={"x-team": "blue"}, organization="org-1")
    )
    run = client.query("x", endpoint=ep)
    await run
    headers = last_request(mock_state, run.id)["headers"]
    assert headers["x-request-id"] == run.id
    assert headers["authorization"] == f"Bearer {SECRET}"
    assert headers["x-team"] == "blue"
    assert headers["openai-organization"] == "org-1"


async def test_custom_api_key_header(
    client: SippClient, mock_server: ServerThread, mock_state: MockState
) -> None:
    ep = await client.add("m", descriptor(mock_server, api_key_header="api-key"))
    run = client.query("x", endpoint=ep)
    await run
    headers = last_request(mock_state, run.id)["headers"]
    assert headers["api-key"] == SECRET
    assert "authorization" not in headers


async def test_provider_options_are_merged(
    client: SippClient, mock_server: ServerThread, mock_state: MockState
) -> None:
    ep = await client.add("m", descriptor(mock_server))
    run = client.chat(
        [{"role": "user", "content": "Hi"}],
        endpoint=ep,
        provider_options={"logit_bias": {"50256": -100}, "user": "u1"},
        seed=3,
        stop=["\n"],
    )
    await run
    body = last_request(mock_state, run.id)["body"]
    assert body["logit_bias"] == {"50256": -100}
    assert body["user"] == "u1"
    assert body["seed"] == 3
    assert body["stop"] == ["\n"]


async def test_openai_flavor_sends_max_completion_tokens(
    client: SippClient, mock_server: ServerThread, mock_state: MockState
) -> None:
    ep = await client.add("m", {**descriptor(mock_server), "provider": "openai"})
    run = client.chat([{"role": "user", "content": "Hi"}], endpoint=ep, max_tokens=9)
    await run
    body = last_request(mock_state, run.id)["body"]
    assert body["max_completion_tokens"] == 9
    assert "max_tokens" not in body


async def test_embed(client: SippClient, mock_server: ServerThread, mock_state: MockState) -> None:
    ep = await client.add("m", descriptor(mock_server))
    run = client.embed("some text", endpoint=ep)
    response = await run
    assert response.values == [0.5, -0.25, 1.0]
    assert response.usage.input_tokens == 4
    body = last_request(mock_state, run.id)["body"]
    assert body == {"model": "tokens=3", "input": "some text", "encoding_format": "float"}


async def test_streams_reuse_one_connection(client: SippClient, mock_server: ServerThread) -> None:
    ep = await client.add("m", descriptor(mock_server, max_connections=1))
    for _ in range(5):
        response = await client.chat(
            [{"role": "user", "content": "Hi"}], endpoint=ep, emit_tokens=True
        )
        assert response.text == "tok0 tok1 tok2 "


async def test_request_id_header_can_be_turned_off(
    client: SippClient, mock_server: ServerThread, mock_state: MockState
) -> None:
    ep = await client.add("m", descriptor(mock_server, request_id_header=None))
    await client.query("x", endpoint=ep)
    assert "x-request-id" not in mock_state.requests[-1]["headers"]
