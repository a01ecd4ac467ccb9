"""The exact request JSON the anthropic driver sends for tools, images, tool turns,
thinking and structured output, as received by the loopback mock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from anthropic_mock import MockState, ServerThread

import sipp
from sipp import ChatMessage, ImagePart, SippClient, TextPart, Tool, ToolCall

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n\x00\x00fake"
WEATHER = Tool(
    name="weather",
    description="Current weather for a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)
CLOCK = Tool(name="clock", parameters={"type": "object", "properties": {}})


class Person(msgspec.Struct):
    name: str
    age: int


@pytest.fixture
async def client() -> AsyncIterator[SippClient]:
    async with SippClient() as client:
        yield client


async def endpoint(client: SippClient, server: ServerThread, model: str = "tokens=1") -> Any:
    return await client.add(
        "a",
        {
            "kind": "provider",
            "provider": "anthropic",
            "model": model,
            "base_url": server.base_url,
            "api_key": "sk-ant-test",
            "retries": 0,
        },
    )


def body_of(state: MockState, run: sipp.Run) -> dict[str, Any]:
    request = next(r for r in state.requests if r["headers"]["x-request-id"] == run.id)
    body: dict[str, Any] = request["body"]
    return body


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        pytest.param(None, None, id="default"),
        pytest.param("auto", {"type": "auto"}, id="auto"),
        pytest.param("none", {"type": "none"}, id="none"),
        pytest.param("required", {"type": "any"}, id="required"),
        pytest.param("weather", {"type": "tool", "name": "weather"}, id="named"),
    ],
)
async def test_tools_and_tool_choice(
    client: SippClient,
    anthropic_server: ServerThread,
    anthropic_state: MockState,
    choice: str | None,
    wire: dict[str, Any] | None,
) -> None:
    ep = await endpoint(client, anthropic_server)
    run = client.query("Weather?", endpoint=ep, tools=[WEATHER, CLOCK], tool_choice=choice)
    await run
    body = body_of(anthropic_state, run)
    assert body["tools"] == [
        {
            "name": "weather",
            "description": "Current weather for a city.",
            "input_schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
        {"name": "clock", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert body.get("tool_choice") == wire


async def test_image_parts_become_image_blocks(
    client: SippClient, anthropic_server: ServerThread, anthropic_state: MockState
) -> None:
    ep = await endpoint(client, anthropic_server)
    message = ChatMessage(
        role="user",
        content=[
            TextPart(text="What are these?"),
            ImagePart(data=PNG, media_type="image/png"),
            ImagePart(url="https://example.com/cat.jpg"),
        ],
    )
    run = client.chat([message], endpoint=ep)
    await run
    assert body_of(anthropic_state, run)["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What are these?"},
                {
                    "type": "image",
                    "source": {
                        "type": "base64",
                        "media_type": "image/png",
                        "data": "iVBORw0KGgoAAGZha2U=",
                    },
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            ],
        }
    ]


async def test_tool_turns_become_tool_use_and_tool_result_blocks(
    client: SippClient, anthropic_server: ServerThread, anthropic_state: MockState
) -> None:
    ep = await endpoint(client, anthropic_server)
    messages = [
        {"role": "system", "content": "Use tools."},
        {"role": "user", "content": "Weather and time in Oslo?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {"id": "toolu_1", "name": "weather", "arguments": '{"city": "Oslo"}'},
                {"id": "toolu_2", "name": "clock", "arguments": ""},
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "12 °C, rain"},
        {
            "role": "tool",
            "tool_call_id": "toolu_2",
            "content": [{"type": "text", "text": "14:05"}],
        },
        {"role": "user", "content": "Be short."},
        {"role": "assistant", "content": "Rain, 14:05."},
        {"role": "user", "content": "Thanks"},
    ]
    run = client.chat(messages, endpoint=ep, tools=[WEATHER, CLOCK])
    await run
    body = body_of(anthropic_state, run)
    assert body["system"] == "Use tools."
    assert body["messages"] == [
        {"role": "user", "content": "Weather and time in Oslo?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "toolu_2", "name": "clock", "input": {}},
            ],
        },
        # Both results in one user turn, and the user's next words after them.
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "12 °C, rain"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "14:05"}],
                },
                {"type": "text", "text": "Be short."},
            ],
        },
        {"role": "assistant", "content": "Rain, 14:05."},
        {"role": "user", "content": "Thanks"},
    ]


@pytest.mark.parametrize(
    "arguments",
    [pytest.param('{"city": ', id="not-json"), pytest.param("[1, 2]", id="not-an-object")],
)
async def test_bad_tool_call_arguments_are_refused_before_io(
    client: SippClient, anthropic_server: ServerThread, anthropic_state: MockState, arguments: str
) -> None:
    ep = await endpoint(client, anthropic_server)
    count = len(anthropic_state.requests)
    messages = [
        ChatMessage(role="user", content="Hi"),
        ChatMessage(
            role="assistant",
            content="",
            tool_calls=[ToolCall(id="toolu_1", name="weather", arguments=arguments)],
        ),
        ChatMessage(role="tool", tool_call_id="toolu_1", content="sunny"),
    ]
    with pytest.raises(sipp.InvalidRequestError, match="toolu_1") as caught:
        await client.chat(messages, endpoint=ep, tools=[WEATHER])
    assert caught.value.field == "messages.1.tool_calls"
    assert len(anthropic_state.requests) == count


@pytest.mark.parametrize(
    ("reasoning", "max_tokens", "budget", "wire_max"),
    [
        pytest.param({"effort": "low"}, None, 1024, 1024 + 4096, id="low"),
        pytest.param({"effort": "medium"}, 100, 4096, 4196, id="medium"),
        pytest.param({"effort": "high"}, 500, 16384, 16884, id="high"),
        pytest.param({}, None, 4096, 8192, id="default-medium"),
        pytest.param({"effort": "high", "budget_tokens": 2000}, 10, 2000, 2010, id="budget-wins"),
    ],
)
async def test_reasoning_becomes_thinking_with_the_budget_on_top_of_max_tokens(
    client: SippClient,
    anthropic_server: ServerThread,
    anthropic_state: MockState,
    reasoning: dict[str, Any],
    max_tokens: int | None,
    budget: int,
    wire_max: int,
) -> None:
    ep = await endpoint(client, anthropic_server)
    run = client.query("Think", endpoint=ep, reasoning=reasoning, max_tokens=max_tokens)
    await run
    body = body_of(anthropic_state, run)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == wire_max


async def test_structured_output_sends_a_closed_json_schema(
    client: SippClient, anthropic_server: ServerThread, anthropic_state: MockState
) -> None:
    ep = await endpoint(client, anthropic_server, "scenario=json")
    run = client.query("Who?", endpoint=ep, output=Person)
    assert (await run).parsed == Person(name="Ada", age=36)
    body = body_of(anthropic_state, run)
    assert body["output_config"] == {
        "format": {
            "type": "json_schema",
            "schema": {
                "title": "Person",
                "type": "object",
                "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                "required": ["name", "age"],
                "additionalProperties": False,
            },
        }
    }
    assert "tools" not in body and "tool_choice" not in body


async def test_provider_options_merge_into_the_body(
    client: SippClient, anthropic_server: ServerThread, anthropic_state: MockState
) -> None:
    ep = await endpoint(client, anthropic_server, "scenario=json")
    run = client.query(
        "Who?",
        endpoint=ep,
        output={"type": "object", "properties": {"name": {"type": "string"}}},
        provider_options={"top_k": 5, "output_config": {"effort": "low"}},
    )
    await run
    body = body_of(anthropic_state, run)
    assert body["top_k"] == 5
    # output_config is merged: the effort joins the output format, which stays.
    assert body["output_config"] == {
        "format": {
            "type": "json_schema",
            "schema": {
                "type": "object",
                "properties": {"name": {"type": "string"}},
                "additionalProperties": False,
            },
        },
        "effort": "low",
    }


@pytest.mark.parametrize("key", ["tool_choice", "tools", "max_tokens", "stream"])
async def test_provider_options_may_not_set_typed_fields(
    client: SippClient, anthropic_server: ServerThread, anthropic_state: MockState, key: str
) -> None:
    ep = await endpoint(client, anthropic_server)
    count = len(anthropic_state.requests)
    with pytest.raises(sipp.InvalidRequestError, match=key):
        await client.query("Hi", endpoint=ep, provider_options={key: {"type": "any"}})
    assert len(anthropic_state.requests) == count


async def test_endpoint_declares_the_rich_capabilities(
    client: SippClient, anthropic_server: ServerThread
) -> None:
    ep = await endpoint(client, anthropic_server)
    with pytest.raises(sipp.UnsupportedOperationError, match="embed"):
        await client.embed(["a", "b"], endpoint=ep)
    with pytest.raises(sipp.InvalidRequestError, match="local="):
        await client.query("Hi", endpoint=ep, local={"top_k": 1})


@pytest.mark.parametrize("choice", ["required", "weather"])
async def test_reasoning_with_a_forced_tool_is_refused_before_io(
    client: SippClient, anthropic_server: ServerThread, anthropic_state: MockState, choice: str
) -> None:
    ep = await endpoint(client, anthropic_server)
    count = len(anthropic_state.requests)
    with pytest.raises(sipp.InvalidRequestError, match="tool_choice") as caught:
        await client.query(
            "Hi", endpoint=ep, tools=[WEATHER], tool_choice=choice, reasoning={"effort": "low"}
        )
    assert caught.value.field == "tool_choice"
    assert len(anthropic_state.requests) == count


async def test_images_in_a_system_message_are_refused_before_io(
    client: SippClient, anthropic_server: ServerThread, anthropic_state: MockState
) -> None:
    ep = await endpoint(client, anthropic_server)
    count = len(anthropic_state.requests)
    system = ChatMessage(role="system", content=[ImagePart(url="https://example.com/a.png")])
    with pytest.raises(sipp.InvalidRequestError, match="system"):
        await client.chat([system, ChatMessage(role="user", content="Hi")], endpoint=ep)
    assert len(anthropic_state.requests) == count
