"""Real streamed shapes replayed by the mock: tool-call deltas, reasoning, legacy calls.

Each shape runs streamed (chunk by chunk) and whole (one message), and both
must give the same response; streamed, the token batches must add up to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from openai_mock import ServerThread

import sipp
from sipp import SippClient, TokenBatch, ToolCall, ToolCallDelta

pytestmark = pytest.mark.anyio

HI = [{"role": "user", "content": "Hi"}]
both = pytest.mark.parametrize(
    "stream", [pytest.param(True, id="stream"), pytest.param(False, id="whole")]
)


@pytest.fixture
async def client() -> AsyncIterator[SippClient]:
    async with SippClient() as client:
        yield client


async def replay(
    client: SippClient, server: ServerThread, name: str, stream: bool, **options: Any
) -> tuple[sipp.TextResponse, list[TokenBatch]]:
    ep = await client.add(
        "m",
        {
            "kind": "provider",
            "provider": "openai_compatible",
            "model": f"reply={name}",
            "base_url": server.base_url,
            "retries": 0,
        },
    )
    run = client.chat(HI, endpoint=ep, emit_tokens=stream, **options)
    batches = [batch async for batch in run.tokens]
    response = await run
    assert "".join(b.text for b in batches) == response.text
    reasoning = "".join(b.reasoning for b in batches)
    assert reasoning == (response.reasoning or "")
    assert merged(batches) == response.tool_calls
    return response, batches


def merged(batches: list[TokenBatch]) -> list[ToolCall]:
    """The batches' tool-call deltas joined by index, as a reader would."""
    calls: dict[int, dict[str, str]] = {}
    for batch in batches:
        for delta in batch.tool_calls:
            call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            if delta.id:
                assert not call["id"], "a call's id comes once"
                call["id"] = delta.id
            if delta.name:
                assert not call["name"], "a call's name comes once"
                call["name"] = delta.name
            call["arguments"] += delta.arguments
    return [
        ToolCall(id=c["id"] or f"call_{i}", name=c["name"], arguments=c["arguments"] or "{}")
        for i, c in calls.items()
    ]


@both
async def test_parallel_tool_calls_split_across_chunks(
    client: SippClient, mock_server: ServerThread, stream: bool
) -> None:
    response, batches = await replay(client, mock_server, "tools", stream)
    assert response.finish_reason == "tool_calls"
    assert response.text == ""
    assert response.tool_calls == [
        ToolCall(id="call_oslo", name="weather", arguments='{"city": "Oslo"}'),
        ToolCall(id="call_time", name="local_time", arguments='{"zone": "Europe/Oslo"}'),
    ]
    assert response.tool_calls[0].parsed_arguments == {"city": "Oslo"}
    assert response.message.tool_calls == response.tool_calls
    assert response.usage.cache_read_tokens == 64
    assert response.usage.reasoning_tokens == 0
    assert response.usage.input_tokens == 80
    if stream:
        deltas = [d for b in batches for d in b.tool_calls]
        # Every piece of every call arrived (coalescing may have merged a few).
        assert sum(len(d.arguments) for d in deltas) == len('{"city": "Oslo"}') + len(
            '{"zone": "Europe/Oslo"}'
        )
        assert deltas[0] == ToolCallDelta(
            index=0, id="call_oslo", name="weather", arguments=deltas[0].arguments
        )


@both
async def test_text_then_tool_call_keeps_the_order(
    client: SippClient, mock_server: ServerThread, stream: bool
) -> None:
    response, batches = await replay(client, mock_server, "text_then_tool", stream)
    assert response.text == "Let me check."
    assert response.tool_calls == [
        ToolCall(id="call_1", name="weather", arguments='{"city": "Bergen"}')
    ]
    assert response.finish_reason == "tool_calls"
    first_text = next(i for i, b in enumerate(batches) if b.text)
    first_call = next(i for i, b in enumerate(batches) if b.tool_calls)
    assert first_text <= first_call


@both
async def test_reasoning_content_streams_apart_from_the_answer(
    client: SippClient, mock_server: ServerThread, stream: bool
) -> None:
    response, _ = await replay(client, mock_server, "reasoning", stream)
    assert response.reasoning == "The user greets me."
    assert response.text == "Hello there!"
    assert response.finish_reason == "stop"
    assert response.tool_calls == []
    assert response.usage == sipp.Usage(
        input_tokens=80,
        output_tokens=40,
        total_tokens=120,
        reasoning_tokens=30,
        cache_read_tokens=16,
    )


@both
async def test_reasoning_under_its_other_name(
    client: SippClient, mock_server: ServerThread, stream: bool
) -> None:
    response, _ = await replay(client, mock_server, "reasoning_field", stream)
    assert (response.reasoning, response.text) == ("Think.", "Done.")


@both
async def test_llama_cpp_python_tool_calls_are_not_doubled(
    client: SippClient, mock_server: ServerThread, stream: bool
) -> None:
    # Every piece repeats id and name and also comes as the legacy function_call.
    response, _ = await replay(client, mock_server, "llamacpp_tools", stream)
    assert response.tool_calls == [
        ToolCall(id="call__0_weather_cmpl-1", name="weather", arguments='{"city": "Tromsø"}')
    ]
    assert response.finish_reason == "tool_calls"


@both
async def test_legacy_function_call(
    client: SippClient, mock_server: ServerThread, stream: bool
) -> None:
    response, _ = await replay(client, mock_server, "legacy", stream)
    assert response.tool_calls == [
        ToolCall(id="call_0", name="weather", arguments='{"city": "Oslo"}')
    ]
    assert response.finish_reason == "tool_calls"


@both
async def test_tool_calls_with_finish_stop_still_say_tool_calls(
    client: SippClient, mock_server: ServerThread, stream: bool
) -> None:
    response, _ = await replay(client, mock_server, "stop_with_tools", stream)
    assert response.finish_reason == "tool_calls"
    assert [call.name for call in response.tool_calls] == ["weather"]


@both
async def test_pieces_without_index_take_their_position(
    client: SippClient, mock_server: ServerThread, stream: bool
) -> None:
    response, _ = await replay(client, mock_server, "no_index", stream)
    assert response.tool_calls == [
        ToolCall(id="a", name="f", arguments="{}"),
        ToolCall(id="b", name="g", arguments="[]"),
    ]


class Person(msgspec.Struct):
    name: str
    age: int


@both
async def test_structured_output_split_across_chunks(
    client: SippClient, mock_server: ServerThread, stream: bool
) -> None:
    response, batches = await replay(client, mock_server, "json", stream, output=Person)
    assert response.parsed == Person(name="Ada", age=36)
    assert response.text == '{"name": "Ada", "age": 36}'
    if stream:
        assert len(batches) >= 1


@both
async def test_tool_calls_are_not_parsed_as_output(
    client: SippClient, mock_server: ServerThread, stream: bool
) -> None:
    # A model that calls a tool instead of answering: no OutputValidationError, no parsed.
    response, _ = await replay(client, mock_server, "tools", stream, output=Person)
    assert response.finish_reason == "tool_calls"
    assert response.parsed is None
