"""Rich chat on the real test model: tools, structured output, reasoning, images, batch embeddings.

The test model (SmolLM2-135M) is tiny; the grammars are what make its calls
and JSON well-formed, so every assertion here on shape holds for any output
the model could choose. What it chose is printed (``pytest -s``) for the
record in docs/local-driver.md.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import msgspec
import pytest

from sipp import (
    ChatMessage,
    ConfigurationError,
    ImagePart,
    InvalidRequestError,
    RunCancelled,
    SippClient,
    TextPart,
    Tool,
    UnsupportedOperationError,
)

pytestmark = pytest.mark.anyio


def weather(city: str) -> str:
    return f"{city}: 12 degrees C, light rain"


def add(a: int, b: int) -> int:
    return a + b


TOOLS = [
    Tool(
        name="weather",
        description="The current weather in a city.",
        parameters={
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 20}},
            "required": ["city"],
        },
        function=weather,
    ),
    Tool(
        name="add",
        description="Add two whole numbers.",
        parameters={
            "type": "object",
            "properties": {
                "a": {"type": "integer", "minimum": -1000, "maximum": 1000},
                "b": {"type": "integer", "minimum": -1000, "maximum": 1000},
            },
            "required": ["a", "b"],
        },
        function=add,
    ),
]
FUNCTIONS = {tool.name: tool.function for tool in TOOLS}


async def test_a_tool_loop_completes_with_two_python_functions(
    descriptor: dict[str, Any],
) -> None:
    # Driven by hand until the core's run_tools lands: chat with tools, run the
    # calls, append the assistant turn and the results, chat again.
    messages: list[ChatMessage] = [
        ChatMessage(role="user", content="What is the weather in Paris, and what is 2 + 3?")
    ]
    ran: list[str] = []
    async with SippClient() as client:
        model = await client.add("m", descriptor)
        for turn in range(4):
            response = await client.chat(
                messages,
                endpoint=model,
                tools=TOOLS,
                tool_choice="required" if turn == 0 else "auto",
                max_tokens=48,
                temperature=0,
                local={"parallel_tool_calls": False},
            )
            print(f"turn {turn}: {response.finish_reason} {response.tool_calls} {response.text!r}")
            assert "<tool_call>" not in response.text
            if response.finish_reason != "tool_calls":
                break
            messages.append(response.message)
            for call in response.tool_calls:
                result = FUNCTIONS[call.name](**call.parsed_arguments)
                ran.append(call.name)
                messages.append(ChatMessage(role="tool", tool_call_id=call.id, content=str(result)))
    assert ran, "the first turn must call a function (tool_choice='required')"
    assert response.finish_reason == "stop" and response.text.strip()
    assert not response.tool_calls
    ids = [call.id for m in messages for call in m.tool_calls or ()]
    assert len(set(ids)) == len(ids) and all(i.startswith("call_") for i in ids)


async def test_tool_calls_stream_as_deltas_that_add_up(descriptor: dict[str, Any]) -> None:
    async with SippClient() as client:
        model = await client.add("m", descriptor)
        run = client.chat(
            [{"role": "user", "content": "Add 20 and 22."}],
            endpoint=model,
            tools=TOOLS,
            tool_choice="add",
            max_tokens=60,
            temperature=0,
            emit_tokens=True,
            local={"parallel_tool_calls": False},
        )
        batches = [batch async for batch in run.tokens]
        response = await run
    assert response.finish_reason == "tool_calls"
    assert response.text == "" and all(batch.text == "" for batch in batches)
    deltas = [delta for batch in batches for delta in batch.tool_calls]
    assert len(deltas) > 2, "the arguments stream in pieces"
    first = response.tool_calls[0]
    assert (deltas[0].id, deltas[0].name) == (first.id, "add") == ("call_1", "add")
    args = first.parsed_arguments
    assert set(args) == {"a", "b"} and all(isinstance(v, int) for v in args.values())
    joined = "".join(d.arguments for d in deltas if d.index == 0)
    assert joined == first.arguments


async def test_a_tool_call_decodes_in_the_same_batches_as_plain_text(
    descriptor: dict[str, Any],
) -> None:
    async with SippClient() as client:
        model = await client.add("m", {**descriptor, "n_parallel": 2})
        results: dict[str, Any] = {}

        async def tool_call() -> None:
            results["call"] = await client.chat(
                [{"role": "user", "content": "Weather in Rome?"}],
                endpoint=model,
                tools=TOOLS,
                tool_choice="weather",
                max_tokens=32,
                temperature=0,
                local={"parallel_tool_calls": False},
            )

        async def plain() -> None:
            results["plain"] = await client.query(
                "Once upon a time", endpoint=model, max_tokens=12, temperature=0
            )

        async with anyio.create_task_group() as group:
            group.start_soon(tool_call)
            group.start_soon(plain)
        alone = await client.query("Once upon a time", endpoint=model, max_tokens=12, temperature=0)
    assert results["call"].tool_calls[0].parsed_arguments["city"]
    assert results["plain"].text == alone.text
    # Both were in flight together: the plain one did not wait for a free slot.
    assert results["plain"].timings.queue_wait < 0.5


async def test_tool_choice_none_answers_in_text(descriptor: dict[str, Any]) -> None:
    async with SippClient() as client:
        model = await client.add("m", descriptor)
        response = await client.chat(
            [{"role": "user", "content": "Say hello."}],
            endpoint=model,
            tools=TOOLS,
            tool_choice="none",
            max_tokens=12,
            temperature=0,
        )
    assert response.tool_calls == [] and response.text


async def test_tools_and_a_local_grammar_are_refused(descriptor: dict[str, Any]) -> None:
    async with SippClient() as client:
        model = await client.add("m", descriptor)
        with pytest.raises(InvalidRequestError, match="cannot be combined") as caught:
            await client.chat(
                [{"role": "user", "content": "Hi"}],
                endpoint=model,
                tools=TOOLS,
                local={"grammar": 'root ::= "x"'},
            )
    assert caught.value.field == "local.grammar"


async def test_cancel_during_a_tool_call_decode(descriptor: dict[str, Any]) -> None:
    note = Tool(
        name="note",
        parameters={
            "type": "object",
            "properties": {"text": {"type": "string", "minLength": 400}},
            "required": ["text"],
        },
    )
    async with SippClient() as client:
        model = await client.add("m", {**descriptor, "n_parallel": 1})
        run = client.chat(
            [{"role": "user", "content": "Write a long note."}],
            endpoint=model,
            tools=[note],
            tool_choice="required",
            max_tokens=400,
            temperature=0,
            emit_tokens=True,
        )
        async for batch in run.tokens:
            if batch.tool_calls:
                run.cancel()
        with pytest.raises(RunCancelled) as caught:
            await run
        partial = caught.value.partial
        assert partial is not None and partial.tool_calls
        assert partial.tool_calls[0].name == "note"
        next_one = await client.query("Hello", endpoint=model, max_tokens=2)
    # Freed within a turn (a turn is ~0.1 s on a busy 2-CPU machine), not after 400 tokens.
    assert next_one.timings.queue_wait is not None and next_one.timings.queue_wait < 0.5


class Member(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(max_length=16)]
    age: Annotated[int, msgspec.Meta(ge=0, le=120)]


class Team(msgspec.Struct):
    team: Annotated[str, msgspec.Meta(max_length=16)]
    members: Annotated[list[Member], msgspec.Meta(min_length=1, max_length=3)]


async def test_structured_output_of_a_nested_schema_parses(descriptor: dict[str, Any]) -> None:
    async with SippClient() as client:
        model = await client.add("m", descriptor)
        response = await client.chat(
            [{"role": "user", "content": "Describe a small team of two people as JSON."}],
            endpoint=model,
            output=Team,
            max_tokens=160,
            temperature=0,
        )
    print(f"structured output: {response.text}")
    assert isinstance(response.parsed, Team)
    assert response.parsed.members and all(isinstance(m, Member) for m in response.parsed.members)
    assert msgspec.json.decode(response.text, type=Team) == response.parsed


THINK_GRAMMAR = r"""
root ::= "<think>" thought "</think>" "\n" answer
thought ::= [a-zA-Z0-9 ,.]{1,60}
answer ::= [a-zA-Z0-9 ,.]{1,40}
"""


async def test_reasoning_is_streamed_apart_from_the_answer(descriptor: dict[str, Any]) -> None:
    async with SippClient() as client:
        model = await client.add("m", descriptor)
        run = client.chat(
            [{"role": "user", "content": "What is 2+2? Think first."}],
            endpoint=model,
            max_tokens=60,
            temperature=0,
            emit_tokens=True,
            local={"grammar": THINK_GRAMMAR},
        )
        batches = [batch async for batch in run.tokens]
        response = await run
    print(f"reasoning: {response.reasoning!r} answer: {response.text!r}")
    assert response.reasoning and response.text
    for part in (response.reasoning, response.text):
        assert "<think>" not in part and "</think>" not in part
    assert "".join(batch.reasoning for batch in batches) == response.reasoning
    assert "".join(batch.text for batch in batches) == response.text
    # Every reasoning batch comes before every answer batch.
    kinds = [("r" if b.reasoning else "") + ("t" if b.text else "") for b in batches]
    assert "".join(kinds).rstrip("t").find("t") == -1


# ChatML whose generation prompt opens the thinking block, as thinking models' templates do.
THINKING_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}{{ '\\n' }}{{ m.content }}<|im_end|>"
    "{{ '\\n' }}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant"
    "{{ '\\n' }}<think>{{ '\\n' }}{% endif %}"
)


async def test_a_reasoning_budget_closes_the_block(descriptor: dict[str, Any]) -> None:
    chat = [{"role": "user", "content": "Tell me about the sea."}]
    async with SippClient() as client:
        model = await client.add("m", {**descriptor, "chat_template": THINKING_TEMPLATE})
        unlimited = await client.chat(chat, endpoint=model, max_tokens=24, temperature=0)
        budget = await client.chat(
            chat,
            endpoint=model,
            max_tokens=24,
            temperature=0,
            reasoning={"budget_tokens": 6},
        )
    print(f"unlimited: {unlimited.reasoning!r} / {unlimited.text!r}")
    print(f"budget 6: {budget.reasoning!r} / {budget.text!r}")
    # The prompt opened the block and this model never closes it: all reasoning.
    assert unlimited.reasoning and unlimited.text == ""
    assert budget.reasoning and len(budget.reasoning) < len(unlimited.reasoning)
    assert unlimited.reasoning.startswith(budget.reasoning)
    assert budget.text and "</think>" not in budget.text + budget.reasoning


async def test_reasoning_tags_can_be_switched_off(descriptor: dict[str, Any]) -> None:
    async with SippClient() as client:
        model = await client.add("m", {**descriptor, "reasoning_tags": None})
        assert not model.capabilities.reasoning
        response = await client.chat(
            [{"role": "user", "content": "Hi"}],
            endpoint=model,
            max_tokens=30,
            temperature=0,
            local={"grammar": THINK_GRAMMAR},
        )
    assert response.reasoning is None and response.text.startswith("<think>")


async def test_images_are_refused_without_a_projector(descriptor: dict[str, Any]) -> None:
    async with SippClient() as client:
        model = await client.add("m", descriptor)
        assert not model.capabilities.vision
        message = ChatMessage(
            role="user",
            content=[TextPart(text="What is this?"), ImagePart(url="https://example.com/a.png")],
        )
        with pytest.raises(UnsupportedOperationError, match="vision"):
            client.chat([message], endpoint=model)


async def test_a_projector_is_refused_clearly_until_images_are_supported(
    descriptor: dict[str, Any],
) -> None:
    async with SippClient() as client:
        with pytest.raises(ConfigurationError, match="mmproj is not supported"):
            await client.add("m", {**descriptor, "mmproj": "mmproj.gguf"})


# One batch thread: an embedding decode with two threads on a busy 2-CPU machine
# takes seconds (llama.cpp's threads wait for each other at every layer).
SMALL_EMBED = {"n_threads_batch": 1}


async def test_batch_embeddings_equal_one_by_one(descriptor: dict[str, Any]) -> None:
    texts = [
        "The cat sat on the mat.",
        "A quick brown fox.",
        "Lighthouses guide ships at night along the rocky coast.",
        "2 + 2 = 4",
        "Bonjour",
        "The last one, in a second decode.",
    ]
    async with SippClient() as client:
        model = await client.add(
            "m",
            {**descriptor, "embeddings": True, "n_seq_embed": 4, "n_ctx": 128, "n_parallel": 1}
            | SMALL_EMBED,
        )
        assert model.capabilities.embed_batch
        batch = await client.embed(texts, endpoint=model)
        alone = [await client.embed(text, endpoint=model) for text in texts]
    assert len(batch.vectors) == len(texts)
    for together, single in zip(batch.vectors, alone, strict=True):
        assert together == pytest.approx(single.values, abs=2e-4)
    assert batch.usage.input_tokens == sum(s.usage.input_tokens or 0 for s in alone)


async def test_an_empty_input_in_a_batch_names_its_index(descriptor: dict[str, Any]) -> None:
    async with SippClient() as client:
        model = await client.add(
            "m", {**descriptor, "embeddings": True, "n_ctx": 128, "n_parallel": 1} | SMALL_EMBED
        )
        with pytest.raises(InvalidRequestError) as caught:
            await client.embed(["fine", ""], endpoint=model)
        assert caught.value.field == "input[1]"
        after = await client.embed(["still", "works"], endpoint=model)
    assert len(after.vectors) == 2
