"""The scripted driver's conversations: tool calls, reasoning, JSON replies, images, batches."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from sipp import (
    ChatMessage,
    ConfigurationError,
    ImagePart,
    OutputValidationError,
    SippClient,
    TextPart,
    ToolCall,
    UnsupportedOperationError,
)
from sipp.testing import ScriptedDriver, scripted_driver

TOOLS = [{"name": "weather", "parameters": {"type": "object", "properties": {}}}]


async def _open(script: dict[str, Any]) -> AsyncIterator[tuple[SippClient, ScriptedDriver]]:
    async with SippClient() as client:
        await client.add("model", {"kind": "scripted", **script})
        yield client, scripted_driver.opened[-1]


@pytest.mark.anyio
async def test_turns_follow_the_conversation() -> None:
    script = {
        "turns": [
            {"tool_calls": [{"name": "weather", "arguments": {"city": "Oslo"}, "id": "c1"}]},
            {"reply": "Rainy."},
        ]
    }
    async for client, _ in _open(script):
        user = ChatMessage(role="user", content="Weather?")
        first = await client.chat([user], tools=TOOLS)
        assert first.finish_reason == "tool_calls"
        assert first.tool_calls == [ToolCall(id="c1", name="weather", arguments='{"city":"Oslo"}')]
        assert first.tool_calls[0].parsed_arguments == {"city": "Oslo"}
        assert first.text == ""
        result = ChatMessage(role="tool", tool_call_id="c1", content="rain")
        second = await client.chat([user, first.message, result], tools=TOOLS)
        assert second.finish_reason == "stop"
        assert second.text == "Rainy."
        # Past the end, the last turn repeats.
        third = await client.chat([user, first.message, result, second.message, user])
        assert third.text == "Rainy."


@pytest.mark.anyio
async def test_tool_calls_need_tools_offered_and_not_refused() -> None:
    script = {"turns": [{"reply": "Let me check.", "tool_calls": [{"name": "weather"}]}]}
    async for client, _ in _open(script):
        messages = [{"role": "user", "content": "hi"}]
        without = await client.chat(messages)
        assert (without.finish_reason, without.tool_calls) == ("stop", [])
        refused = await client.chat(messages, tools=TOOLS, tool_choice="none")
        assert refused.tool_calls == []
        offered = await client.chat(messages, tools=TOOLS)
        assert offered.text == "Let me check."
        assert [c.name for c in offered.tool_calls] == ["weather"]
        assert offered.message.tool_calls == offered.tool_calls


@pytest.mark.anyio
async def test_reasoning_streams_apart_from_the_answer() -> None:
    async for client, _ in _open({"reply": "Four.", "reasoning": "Two plus two is four."}):
        run = client.query("2+2?", emit_tokens=True)
        batches = [b async for b in run.tokens]
        response = await run
        assert response.text == "Four."
        assert response.reasoning == "Two plus two is four."
        assert "".join(b.reasoning for b in batches) == response.reasoning
        assert "".join(b.text for b in batches) == response.text
        assert response.usage.reasoning_tokens == 5


@pytest.mark.anyio
async def test_structured_replies_parse_or_fail_with_the_text() -> None:
    class Person(msgspec.Struct):
        name: str
        age: int

    async for client, driver in _open({"turns": [{"reply_json": {"name": "Ada", "age": 36}}]}):
        response = await client.chat([{"role": "user", "content": "who?"}], output=Person)
        assert response.parsed == Person(name="Ada", age=36)
        assert driver.requests[-1].output_schema["required"] == ["name", "age"]
    async for client, _ in _open({"reply_json": {"age": 36}}):
        assert (await client.query("who?", output={"type": "object"})).parsed == {"age": 36}
    async for client, _ in _open({"reply": '{"name": "Ada"}'}):
        with pytest.raises(OutputValidationError) as caught:
            await client.query("who?", output=Person)
        assert caught.value.text == '{"name": "Ada"}'


@pytest.mark.anyio
async def test_images_are_accepted_unless_vision_is_off() -> None:
    message = ChatMessage(
        role="user",
        content=[TextPart(text="what is this"), ImagePart(data=b"\x89PNG", media_type="image/png")],
    )
    async for client, driver in _open({}):
        response = await client.chat([message])
        assert response.text == "what is this"
        sent = driver.requests[-1]
        assert sent.messages[0].has_images
    async for client, driver in _open({"without": ["vision"]}):
        with pytest.raises(UnsupportedOperationError, match="'vision'"):
            client.chat([message])
        assert driver.requests == []


@pytest.mark.anyio
async def test_batch_embeddings_give_one_vector_per_input() -> None:
    async for client, _ in _open({"embedding": [0.5, 0.25]}):
        batch = await client.embed(["a", "b", "c"])
        assert batch.vectors == [[0.5, 0.25], [1.5, 1.25], [2.5, 2.25]]
        assert batch.values == batch.vectors[0]
        single = await client.embed("a")
        assert single.vectors == [single.values] == [[0.5, 0.25]]
    async for client, _ in _open({"embedding": [0.5], "without": ["embed_batch"]}):
        with pytest.raises(UnsupportedOperationError, match="'embed_batch'"):
            client.embed(["a", "b"])


@pytest.mark.anyio
async def test_capabilities_can_be_turned_off() -> None:
    async for client, _ in _open({"without": ["tools", "reasoning", "structured_output"]}):
        messages = [{"role": "user", "content": "hi"}]
        with pytest.raises(UnsupportedOperationError, match="'tools'"):
            client.chat(messages, tools=TOOLS)
        with pytest.raises(UnsupportedOperationError, match="'reasoning'"):
            client.chat(messages, reasoning={"effort": "low"})
        with pytest.raises(UnsupportedOperationError, match="'structured_output'"):
            client.chat(messages, output={"type": "object"})


@pytest.mark.anyio
@pytest.mark.parametrize(
    "script",
    [
        {"turns": [{"tool_calls": [{"arguments": {}}]}]},
        {"turns": [{"reply": 3}]},
        {"turns": [{"surprise": True}]},
        {"without": ["teleport"]},
    ],
)
async def test_bad_scripts_are_configuration_errors(script: dict[str, Any]) -> None:
    async with SippClient() as client:
        with pytest.raises(ConfigurationError):
            await client.add("model", {"kind": "scripted", **script})


@pytest.mark.anyio
async def test_absurdly_nested_output_is_a_validation_error() -> None:
    class Person(msgspec.Struct):
        name: str

    deep = "[" * 5000 + "]" * 5000
    async for client, _ in _open({"tokens": [deep]}):
        for output in ({"type": "object"}, Person):
            with pytest.raises(OutputValidationError) as caught:
                await client.query("x", output=output)
            assert caught.value.text == deep
