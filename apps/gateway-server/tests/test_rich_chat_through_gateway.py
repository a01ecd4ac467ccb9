"""The rich-chat extension end to end: gateway driver → standalone gateway → targets.

Tool calls, reasoning, structured output and batch embeddings cross a real
gateway process (uvicorn on asyncio, hypercorn on trio) to a scripted target,
a ``gateway`` target (the profile's route helpers behind it), a provider
target (an OpenAI-compatible mock that answers as asked) and a local target
(the real test model), and come back to the SDK as if the target were local.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from gwtest import TOKEN, Gateway

from sipp import SippClient, tool
from sipp.testing import ThreadedServer

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).parents[3] / "examples"

TURNS = """
[[targets.turns]]
reply = "Let me look."
tool_calls = [{ name = "get_weather", arguments = { city = "Oslo" } }]

[[targets.turns]]
reasoning = "Rain means an umbrella."
reply = "Take an umbrella."

[[targets.turns]]
reply_json = { answer = "4" }
"""

RICH_UPSTREAM: dict[str, Any] = {
    "kind": "scripted",
    "embedding": [0.5, 0.25],
    "turns": [
        {
            "reply": "Let me look.",
            "tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}],
        },
        {"reasoning": "Rain means an umbrella.", "reply": "Take an umbrella."},
        {"reply_json": {"answer": "4"}},
    ],
}


class Answer(msgspec.Struct):
    answer: str


class Sum(msgspec.Struct):
    result: int


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"rain in {city}"


@pytest.fixture(scope="module")
def route_server() -> Iterator[str]:
    sys.path.insert(0, str(EXAMPLES))
    try:
        from gateway_provider_route import create_app
    finally:
        sys.path.remove(str(EXAMPLES))
    with ThreadedServer(create_app(RICH_UPSTREAM)) as server:
        yield server.url


@pytest.fixture(scope="module")
def provider_server() -> Iterator[str]:
    sys.path.insert(0, str(Path(__file__).parents[3] / "drivers" / "openai" / "tests"))
    try:
        from openai_mock import MockState, ServerThread, make_app
    finally:
        sys.path.pop(0)
    with ServerThread(make_app(MockState())) as server:
        yield server.base_url


@pytest.fixture
def gateway(
    gateways: Callable[[str, str], Gateway],
    backend: str,
    route_server: str,
    provider_server: str,
) -> Gateway:
    from sipp_llama.testing import test_model_path

    config = f"""
[[targets]]
name = "rich"
kind = "scripted"
embedding = [0.5, 0.25]
{TURNS}

[[targets]]
name = "relay"
kind = "gateway"
target = "gpt-5-mini"
base_url = "{route_server}"
allow_insecure_http = true

[[targets]]
name = "provider"
kind = "provider"
provider = "openai_compatible"
model = "auto"
base_url = "{provider_server}"
allow_insecure_http = true

[[targets]]
name = "local"
kind = "local"
source = "{test_model_path()}"
n_ctx = 2048
n_threads = 1

[[tokens]]
caller = "web-app"
token_env = "GW_WEB_TOKEN"
"""
    return gateways(config, backend)


@pytest.fixture(params=["rich", "relay"])
def target(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _endpoint(gateway: Gateway, target: str) -> dict[str, Any]:
    return {
        "kind": "gateway",
        "target": target,
        "base_url": gateway.url,
        "allow_insecure_http": True,
        "authentication": {"kind": "bearer", "value": TOKEN},
    }


async def test_a_tool_loop_runs_through_the_gateway(gateway: Gateway, target: str) -> None:
    async with SippClient() as client:
        model = await client.add("gw", _endpoint(gateway, target))
        run = client.run_tools(
            [{"role": "user", "content": "Weather in Oslo?"}],
            tools=[get_weather],
            endpoint=model,
            emit_tokens=True,
        )
        batches = [batch async for batch in run.tokens]
        response = await run
    assert response.text == "Take an umbrella."
    assert response.reasoning == "Rain means an umbrella."
    transcript = response.transcript or []
    assert transcript[0].tool_calls is not None
    assert [(c.name, c.parsed_arguments) for c in transcript[0].tool_calls] == [
        ("get_weather", {"city": "Oslo"})
    ]
    assert [m.content for m in transcript if m.role == "tool"] == ["rain in Oslo"]
    # The stream carried the calls and the reasoning as their own events.
    assert any(batch.tool_calls for batch in batches)
    assert "".join(batch.reasoning for batch in batches) == "Rain means an umbrella."


async def test_structured_output_and_batch_embeddings_come_back(
    gateway: Gateway, target: str
) -> None:
    history = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
        {"role": "assistant", "content": "d"},
        {"role": "user", "content": "2 + 2?"},
    ]
    async with SippClient() as client:
        model = await client.add("gw", _endpoint(gateway, target))
        response = await client.chat(history, endpoint=model, output=Answer)
        vectors = await client.embed(["one", "two", "three"], endpoint=model)
    assert response.parsed == Answer(answer="4")
    # The scripted model shifts its vector per input, so the order is visible.
    assert vectors.vectors == [[0.5, 0.25], [1.5, 1.25], [2.5, 2.25]]


async def test_a_provider_target_calls_tools_and_answers_json(gateway: Gateway) -> None:
    async with SippClient() as client:
        model = await client.add("gw", _endpoint(gateway, "provider"))
        loop = await client.run_tools(
            [{"role": "user", "content": "Weather in Oslo?"}], tools=[get_weather], endpoint=model
        )
        structured = await client.chat(
            [{"role": "user", "content": "2 + 2?"}], endpoint=model, output=Answer
        )
    calls = (loop.transcript or [])[0].tool_calls or []
    assert [(c.name, c.parsed_arguments) for c in calls] == [("get_weather", {"city": "Oslo"})]
    assert loop.text == "Done."
    assert isinstance(structured.parsed, Answer)


async def test_a_local_target_answers_a_schema_through_the_gateway(gateway: Gateway) -> None:
    async with SippClient() as client:
        model = await client.add("gw", _endpoint(gateway, "local"))
        response = await client.chat(
            [{"role": "user", "content": "What is 2 + 2?"}],
            endpoint=model,
            output=Sum,
            max_tokens=48,
            temperature=0,
        )
    assert isinstance(response.parsed, Sum)
