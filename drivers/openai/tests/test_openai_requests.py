"""What the OpenAI drivers send for rich chat: the exact JSON the loopback mock received."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from openai_mock import MockState, ServerThread

import sipp
from sipp import ChatMessage, ImagePart, SippClient, TextPart, Tool, ToolCall

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
WEATHER = Tool(
    name="weather",
    description="Current weather for a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)
CLOCK = Tool(name="local_time", parameters={"type": "object", "properties": {}})
HI = [{"role": "user", "content": "Hi"}]


class Person(msgspec.Struct):
    name: str
    age: int


class Pet(msgspec.Struct):
    name: str
    kind: str = "cat"


def descriptor(server: ServerThread, provider: str = "openai_compatible", **extra: Any) -> Any:
    return {
        "kind": "provider",
        "provider": provider,
        "model": extra.pop("model", "tokens=1"),
        "base_url": server.base_url,
        "api_key": "sk-test-0123456789abcdef",
        "retries": 0,
        **extra,
    }


@pytest.fixture
async def client() -> AsyncIterator[SippClient]:
    async with SippClient() as client:
        yield client


def sent(state: MockState, run: sipp.Run) -> dict[str, Any]:
    found = [r for r in state.requests if r["headers"].get("x-request-id") == run.id]
    assert len(found) == 1
    body: dict[str, Any] = found[0]["body"]
    return body


@pytest.mark.parametrize(
    "stream", [pytest.param(True, id="stream"), pytest.param(False, id="whole")]
)
async def test_whole_body_with_tools_parts_and_reasoning(
    client: SippClient, mock_server: ServerThread, mock_state: MockState, stream: bool
) -> None:
    ep = await client.add("m", descriptor(mock_server, "openai"))
    messages = [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(
            role="user",
            content=[
                TextPart(text="Weather where this is?"),
                ImagePart(url="https://example.com/fjord.jpg"),
                ImagePart(data=PNG, media_type="image/png"),
            ],
        ),
        ChatMessage(
            role="assistant",
            content="",
            tool_calls=[ToolCall(id="call_1", name="weather", arguments='{"city": "Oslo"}')],
        ),
        ChatMessage(role="tool", tool_call_id="call_1", content="12 °C, rain"),
    ]
    run = client.chat(
        messages,
        endpoint=ep,
        emit_tokens=stream,
        tools=[WEATHER, CLOCK],
        reasoning={"effort": "high", "budget_tokens": 2048},
        max_tokens=50,
        temperature=0,
    )
    await run
    expected: dict[str, Any] = {
        "model": "tokens=1",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather where this is?"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/fjord.jpg"}},
                    {
                        "type": "image_url",
                        "image_url": {
                            "url": "data:image/png;base64," + base64.b64encode(PNG).decode()
                        },
                    },
                ],
            },
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "content": "12 °C, rain", "tool_call_id": "call_1"},
        ],
        "max_completion_tokens": 50,
        "temperature": 0,
        # budget_tokens has no OpenAI field: only the effort goes.
        "reasoning_effort": "high",
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "weather",
                    "description": "Current weather for a city.",
                    "parameters": WEATHER.parameters,
                },
            },
            {
                "type": "function",
                "function": {
                    "name": "local_time",
                    "parameters": {"type": "object", "properties": {}},
                },
            },
        ],
        # Sent explicitly: llama-cpp-python's server ignores tools without it.
        "tool_choice": "auto",
    }
    if stream:
        expected |= {"stream": True, "stream_options": {"include_usage": True}}
    assert sent(mock_state, run) == expected


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        ("none", "none"),
        ("required", "required"),
        ("auto", "auto"),
        ("weather", {"type": "function", "function": {"name": "weather"}}),
    ],
)
async def test_tool_choice(
    client: SippClient, mock_server: ServerThread, mock_state: MockState, choice: str, wire: Any
) -> None:
    ep = await client.add("m", descriptor(mock_server))
    run = client.chat(HI, endpoint=ep, tools=[WEATHER, CLOCK], tool_choice=choice)
    await run
    body = sent(mock_state, run)
    assert body["tool_choice"] == wire
    assert [t["function"]["name"] for t in body["tools"]] == ["weather", "local_time"]


async def test_a_plain_function_is_a_tool(
    client: SippClient, mock_server: ServerThread, mock_state: MockState
) -> None:
    ep = await client.add("m", descriptor(mock_server))
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    run = client.chat(HI, endpoint=ep, tools=[{"name": "square", "parameters": schema}])
    await run
    assert sent(mock_state, run)["tools"] == [
        {"type": "function", "function": {"name": "square", "parameters": schema}}
    ]


async def test_strict_schema_when_every_field_is_required(
    client: SippClient, mock_server: ServerThread, mock_state: MockState
) -> None:
    ep = await client.add("m", descriptor(mock_server, model="reply=json"))
    run = client.chat(HI, endpoint=ep, output=Person)
    assert (await run).parsed == Person(name="Ada", age=36)
    assert sent(mock_state, run)["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "Person",
            "schema": {
                "title": "Person",
                "type": "object",
                "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                "required": ["name", "age"],
                "additionalProperties": False,
            },
            "strict": True,
        },
    }


async def test_not_strict_when_a_field_is_optional(
    client: SippClient, mock_server: ServerThread, mock_state: MockState
) -> None:
    ep = await client.add("m", descriptor(mock_server, model="reply=json"))
    run = client.chat(HI, endpoint=ep, output=Pet)
    await run
    format_ = sent(mock_state, run)["response_format"]
    assert format_["json_schema"]["strict"] is False
    # Sent as given: strict mode would force the model to invent the default.
    assert format_["json_schema"]["schema"] == {
        "title": "Pet",
        "type": "object",
        "properties": {"name": {"type": "string"}, "kind": {"type": "string", "default": "cat"}},
        "required": ["name"],
    }


@pytest.mark.parametrize(
    ("schema", "strict"),
    [
        ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}, True),
        ({"type": "object", "additionalProperties": True, "properties": {}}, False),
        ({"type": "object", "additionalProperties": {"type": "integer"}}, False),
        ({"type": "array", "items": {"type": "string"}}, False),
        (
            {
                "type": "object",
                "properties": {
                    "items": {
                        "type": "array",
                        "items": {"type": "object", "properties": {"b": {"type": "string"}}},
                    }
                },
                "required": ["items"],
            },
            False,  # the nested object leaves "b" optional
        ),
    ],
)
async def test_schema_dicts(
    client: SippClient,
    mock_server: ServerThread,
    mock_state: MockState,
    schema: dict[str, Any],
    strict: bool,
) -> None:
    ep = await client.add("m", descriptor(mock_server, model="reply=json"))
    run = client.chat(HI, endpoint=ep, output=schema)
    await run
    json_schema = sent(mock_state, run)["response_format"]["json_schema"]
    assert json_schema["name"] == "output"
    assert json_schema["strict"] is strict
    if not strict:
        assert json_schema["schema"] == schema


async def test_nested_strict_schema_gets_additional_properties_everywhere(
    client: SippClient, mock_server: ServerThread, mock_state: MockState
) -> None:
    class Owner(msgspec.Struct):
        person: Person
        friends: list[Person]

    ep = await client.add("m", descriptor(mock_server, model="reply=json"))
    run = client.chat(HI, endpoint=ep, output=Owner)
    with pytest.raises(sipp.OutputValidationError):
        await run  # the replayed JSON is a Person, not an Owner
    json_schema = sent(mock_state, run)["response_format"]["json_schema"]
    assert json_schema["strict"] is True
    schema = json_schema["schema"]
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["Person"]["additionalProperties"] is False


async def test_json_object_schema_format(
    client: SippClient, mock_server: ServerThread, mock_state: MockState
) -> None:
    ep = await client.add(
        "m", descriptor(mock_server, model="reply=json", schema_format="json_object")
    )
    run = client.chat(HI, endpoint=ep, output=Person)
    assert (await run).parsed == Person(name="Ada", age=36)
    assert sent(mock_state, run)["response_format"] == {
        "type": "json_object",
        "schema": msgspec.json.schema(Person)["$defs"]["Person"],
    }


async def test_provider_options_pass_through_and_typed_fields_win(
    client: SippClient, mock_server: ServerThread, mock_state: MockState
) -> None:
    ep = await client.add("m", descriptor(mock_server))
    run = client.chat(
        HI, endpoint=ep, provider_options={"logit_bias": {"42": -100}, "user": "u1"}, seed=3
    )
    await run
    body = sent(mock_state, run)
    assert body["logit_bias"] == {"42": -100} and body["user"] == "u1" and body["seed"] == 3
    with pytest.raises(sipp.InvalidRequestError, match="tools"):
        client.chat(HI, endpoint=ep, options={"tools": []})


async def test_capabilities_switched_off_refuse_before_any_io(
    client: SippClient, mock_server: ServerThread, mock_state: MockState
) -> None:
    ep = await client.add(
        "m",
        descriptor(
            mock_server, capabilities={"vision": False, "tools": False, "embed_batch": False}
        ),
    )
    before = len(mock_state.requests)
    image = [{"role": "user", "content": [{"type": "image", "url": "https://x/y.png"}]}]
    with pytest.raises(sipp.UnsupportedOperationError, match="vision"):
        await client.chat(image, endpoint=ep)
    with pytest.raises(sipp.UnsupportedOperationError, match="tools"):
        await client.chat(HI, endpoint=ep, tools=[WEATHER])
    with pytest.raises(sipp.UnsupportedOperationError, match="embed_batch"):
        await client.embed(["a", "b"], endpoint=ep)
    assert len(mock_state.requests) == before
    # What was not switched off still goes out (and this mock's text is no Person).
    with pytest.raises(sipp.OutputValidationError) as caught:
        await client.chat(HI, endpoint=ep, output=Person)
    assert caught.value.text == "tok0 "
    assert len(mock_state.requests) == before + 1


async def test_bad_capability_names_are_configuration_errors(
    client: SippClient, mock_server: ServerThread
) -> None:
    with pytest.raises(sipp.ConfigurationError, match="capabilities"):
        await client.add("m", descriptor(mock_server, capabilities={"telepathy": True}))
    with pytest.raises(sipp.ConfigurationError, match="schema_format"):
        await client.add("m", descriptor(mock_server, schema_format="yaml"))


async def test_query_refuses_chat_features_before_any_io(
    client: SippClient, mock_server: ServerThread, mock_state: MockState
) -> None:
    ep = await client.add("m", descriptor(mock_server))
    before = len(mock_state.requests)
    with pytest.raises(sipp.UnsupportedOperationError, match="need chat"):
        await client.query("Hi", endpoint=ep, tools=[WEATHER])
    with pytest.raises(sipp.UnsupportedOperationError, match="need chat"):
        await client.query("Hi", endpoint=ep, output=Person)
    assert len(mock_state.requests) == before


async def test_a_plain_provider_descriptor_still_works(
    client: SippClient, mock_server: ServerThread
) -> None:
    typed = sipp.ProviderDescriptor(
        provider="openai_compatible", model="tokens=2", base_url=mock_server.base_url
    )
    ep = await client.add("m", typed)
    assert (await client.chat(HI, endpoint=ep)).text == "tok0 tok1 "


async def test_a_typed_openai_descriptor(client: SippClient, mock_server: ServerThread) -> None:
    from sipp_openai import OpenAIDescriptor

    typed = OpenAIDescriptor(
        provider="openai_compatible",
        model="tokens=1",
        base_url=mock_server.base_url,
        capabilities={"reasoning": False},
    )
    ep = await client.add("m", typed)
    with pytest.raises(sipp.UnsupportedOperationError, match="reasoning"):
        await client.chat(HI, endpoint=ep, reasoning={"effort": "low"})
    assert (await client.chat(HI, endpoint=ep)).text == "tok0 "


async def test_embed_batch_in_one_call(
    client: SippClient, mock_server: ServerThread, mock_state: MockState
) -> None:
    ep = await client.add("m", descriptor(mock_server))
    before = len(mock_state.requests)
    response = await client.embed(["a", "bbb", "cc"], endpoint=ep)
    # The mock lists them in reverse: the driver restores input order by index.
    assert response.vectors == [[1.0, 0.0, 1.0], [3.0, 1.0, 1.0], [2.0, 2.0, 1.0]]
    assert response.values == response.vectors[0]
    assert response.pooling is None
    assert len(mock_state.requests) == before + 1
    body = mock_state.requests[-1]["body"]
    assert body == {"model": "tokens=1", "input": ["a", "bbb", "cc"], "encoding_format": "float"}


async def test_embed_batch_of_per_token_matrices_is_mean_pooled(
    client: SippClient, mock_server: ServerThread
) -> None:
    ep = await client.add("m", descriptor(mock_server, model="embed=matrix"))
    response = await client.embed(["a", "bb"], endpoint=ep)
    assert response.vectors == [[2.0, 1.0, 2.0], [3.0, 2.0, 2.0]]
    assert response.pooling == "mean"
    single = await client.embed("a", endpoint=ep)
    assert single.values == [0.5, 1.0, 3.0] and single.vectors == [single.values]
