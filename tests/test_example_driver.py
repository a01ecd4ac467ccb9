"""The provider-driver guide's example, ``examples/echo-cloud``, against a loopback mock.

The package is installed (editable) with the project, so the core finds it
the way it finds any third-party driver: by its ``provider.echo-cloud``
entry point. The guide shows the package's files; the first test keeps the
two identical.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from echo_cloud import EchoCloudOptions, EchoCloudStats, echo_cloud_driver
from echo_cloud_mock import API_KEY, REGION, EchoCloudMock

import sipp
from sipp import InvalidRequestError, RateLimitedError, SippClient, load_driver
from sipp.testing import ThreadedServer
from sipp.testing.conformance import DriverConformance

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "examples" / "echo-cloud"
GUIDE = ROOT / "docs" / "writing-a-provider-driver.md"

# A link to a file of the package, then the fenced block that shows it.
_SHOWN = re.compile(
    r"^\[`(examples/echo-cloud/[^`]+)`\]\([^)]+\)\n\n```[a-z]*\n(.*?)^```$", re.M | re.S
)


def test_the_guide_shows_every_file_of_the_package_as_it_is() -> None:
    shown = dict(_SHOWN.findall(GUIDE.read_text(encoding="utf-8")))
    files = [PACKAGE / "pyproject.toml", *sorted((PACKAGE / "echo_cloud").glob("*.py"))]
    names = [file.relative_to(ROOT).as_posix() for file in files]
    assert sorted(shown) == sorted(names)
    for name, file in zip(names, files, strict=True):
        assert shown[name] == file.read_text(encoding="utf-8"), name


def test_the_entry_point_names_the_factory() -> None:
    assert load_driver("provider.echo-cloud") is echo_cloud_driver


@pytest.fixture(scope="module")
def upstream() -> EchoCloudMock:
    return EchoCloudMock()


@pytest.fixture(scope="module")
def server(upstream: EchoCloudMock) -> Iterator[ThreadedServer]:
    with ThreadedServer(upstream, lifespan="off") as server:
        yield server


@pytest.fixture
def mock(upstream: EchoCloudMock, server: ThreadedServer) -> EchoCloudMock:
    upstream.reset()
    return upstream


@pytest.fixture
def descriptor(server: ThreadedServer, mock: EchoCloudMock) -> dict[str, Any]:
    return {
        "kind": "provider",
        "provider": "echo-cloud",
        "model": "echo-1",
        "base_url": server.url,
        "api_key": API_KEY,
    }


@pytest.mark.anyio
async def test_text_streams_and_the_request_carries_key_model_and_run_id(
    descriptor: dict[str, Any], mock: EchoCloudMock
) -> None:
    async with SippClient() as client:
        echo = await client.add("echo", descriptor)
        run = client.chat(
            [{"role": "user", "content": "hello from the loopback"}],
            endpoint=echo,
            emit_tokens=True,
        )
        texts = [batch.text async for batch in run.tokens]
        response = await run
    assert response.text == "hello from the loopback"
    assert "".join(texts) == response.text
    assert response.finish_reason == "stop"
    assert response.usage.output_tokens == 4
    assert response.stats == EchoCloudStats(region=REGION, queue_ms=3)
    [sent] = mock.requests
    assert sent["path"] == "/generate"
    assert sent["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert sent["headers"]["x-request-id"] == run.id
    assert sent["body"] == {
        "model": "echo-1",
        "messages": [{"role": "user", "content": "hello from the loopback"}],
    }


@pytest.mark.anyio
async def test_a_tool_call_round_trip_through_run_tools(
    descriptor: dict[str, Any], mock: EchoCloudMock
) -> None:
    asked: list[str] = []

    @sipp.tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        asked.append(city)
        return "7 °C, light rain"

    async with SippClient() as client:
        echo = await client.add("echo", descriptor)
        response = await client.run_tools(
            [{"role": "user", "content": "Oslo"}], tools=[get_weather], endpoint=echo
        )
    assert asked == ["Oslo"]
    assert response.text == "The tool said: 7 °C, light rain"
    assert [m.role for m in response.transcript] == ["assistant", "tool", "assistant"]
    [call] = response.transcript[0].tool_calls
    assert (call.id, call.name) == ("call_1", "get_weather")
    assert call.parsed_arguments == {"city": "Oslo"}
    # The second request carries the call and its result back to the model.
    follow_up = mock.requests[1]["body"]["messages"]
    assert follow_up[1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": "call_1", "name": "get_weather", "arguments": '{"city": "Oslo"}'}],
    }
    assert follow_up[2] == {
        "role": "tool",
        "content": "7 °C, light rain",
        "tool_call_id": "call_1",
    }


@pytest.mark.anyio
async def test_reasoning_streams_apart_from_the_answer(
    descriptor: dict[str, Any], mock: EchoCloudMock
) -> None:
    async with SippClient() as client:
        echo = await client.add("echo", descriptor)
        run = client.query("seventeen times three", endpoint=echo, reasoning={"effort": "high"})
        batches = [batch async for batch in run.tokens]
        response = await run
    assert response.reasoning == "Echoing 3 words."
    assert response.text == "seventeen times three"
    assert "".join(batch.reasoning for batch in batches) == response.reasoning
    assert mock.requests[0]["body"]["think"] == "high"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"top_k": 5, "safe_mode": True}, id="dict"),
        pytest.param(EchoCloudOptions(top_k=5, safe_mode=True), id="typed"),
    ],
)
async def test_typed_options_reach_the_wire(
    descriptor: dict[str, Any], mock: EchoCloudMock, options: Any
) -> None:
    async with SippClient() as client:
        echo = await client.add("echo", descriptor)
        await client.query("hi", endpoint=echo, options=options)
    body = mock.requests[0]["body"]
    assert (body["top_k"], body["safe_mode"]) == (5, True)


@pytest.mark.anyio
async def test_bad_options_are_refused_before_any_request(
    descriptor: dict[str, Any], mock: EchoCloudMock
) -> None:
    async with SippClient() as client:
        echo = await client.add("echo", descriptor)
        with pytest.raises(InvalidRequestError, match="top_k must be at least 1"):
            client.query("hi", endpoint=echo, options={"top_k": 0})
        with pytest.raises(InvalidRequestError) as misspelt:
            client.query("hi", endpoint=echo, options={"topk": 5})
    assert misspelt.value.field == "options.topk"
    assert mock.requests == []


@pytest.mark.anyio
async def test_a_429_is_retried(descriptor: dict[str, Any], mock: EchoCloudMock) -> None:
    mock.rate_limited = 1
    async with SippClient() as client:
        echo = await client.add("echo", descriptor)
        run = client.query("second time lucky", endpoint=echo)
        response = await run
    assert response.text == "second time lucky"
    assert [r["headers"]["x-request-id"] for r in mock.requests] == [run.id, run.id]


@pytest.mark.anyio
async def test_a_429_becomes_a_redacted_rate_limited_error(
    descriptor: dict[str, Any], mock: EchoCloudMock
) -> None:
    mock.rate_limited = 1
    async with SippClient() as client:
        echo = await client.add("echo", {**descriptor, "retries": 0})
        with pytest.raises(RateLimitedError) as caught:
            await client.query("hi", endpoint=echo)
    error = caught.value
    assert (error.status, error.code, error.retryable) == (429, "rate_limit_exceeded", True)
    assert (error.request_id, error.retry_after) == ("ec-1", 0.0)
    assert API_KEY not in str(error)
    assert error.raw_body is not None
    assert API_KEY not in error.raw_body
    assert "[redacted]" in str(error)
    assert len(mock.requests) == 1


class TestEchoCloudConforms(DriverConformance):
    """The conformance kit, against the mock (the ``descriptor`` fixture above)."""
