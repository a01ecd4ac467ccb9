"""client.run_tools: the loop's turns, tool results, limits, streaming and cancellation."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

import anyio
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sipp
from sipp import (
    InvalidRequestError,
    RunCancelled,
    SippClient,
    Tool,
    UnsupportedOperationError,
)
from sipp.testing import ScriptedDriver, scripted_driver

USER = [{"role": "user", "content": "What should I wear in Oslo?"}]
WEATHER_THEN_ANSWER = [
    {
        "tool_calls": [
            {"name": "weather", "arguments": {"city": "Oslo"}},
            {"name": "add", "arguments": {"a": 2, "b": 3}},
        ]
    },
    {"reasoning": "Rain means a coat.", "reply": "Wear a raincoat."},
]

calls: list[tuple[str, int]] = []


@sipp.tool
def weather(city: str, unit: str = "C") -> str:
    """Current weather for a city."""
    calls.append(("weather", threading.get_ident()))
    return f"12 {unit}, rain in {city}"


async def add(a: int, b: int) -> dict[str, int]:
    calls.append(("add", threading.get_ident()))
    return {"sum": a + b}


async def _client(script: dict[str, Any]) -> AsyncIterator[tuple[SippClient, ScriptedDriver]]:
    async with SippClient() as client:
        await client.add("model", {"kind": "scripted", **script})
        yield client, scripted_driver.opened[-1]


@pytest.fixture
async def loop_client() -> AsyncIterator[tuple[SippClient, ScriptedDriver]]:
    async for pair in _client({"turns": WEATHER_THEN_ANSWER}):
        yield pair


@pytest.mark.anyio
async def test_the_loop_runs_functions_and_answers(loop_client: Any) -> None:
    client, driver = loop_client
    calls.clear()
    response = await client.run_tools(USER, tools=[weather, add])
    assert response.text == "Wear a raincoat."
    assert response.finish_reason == "stop"
    assert response.reasoning == "Rain means a coat."
    transcript = response.transcript
    assert [m.role for m in transcript] == ["assistant", "tool", "tool", "assistant"]
    assert [c.name for c in transcript[0].tool_calls] == ["weather", "add"]
    assert transcript[1].tool_call_id == transcript[0].tool_calls[0].id
    assert transcript[1].content == "12 C, rain in Oslo"
    assert transcript[2].content == '{"sum":5}'  # non-strings are JSON-encoded
    assert transcript[3].content == "Wear a raincoat."
    # Usage is summed over the two model calls.
    first, second = (r for r in driver.requests)
    assert response.usage.output_tokens == 0 + 3 + 4
    assert response.usage.reasoning_tokens == 4
    # The second call saw the whole conversation, tool results included.
    assert isinstance(second, sipp.ChatRequest)
    assert [m.role for m in second.messages] == ["user", "assistant", "tool", "tool"]
    assert len(first.messages) == 1
    # A sync function ran in a worker thread, an async one on the loop's thread.
    loop_thread = threading.get_ident()
    threads = dict(calls)
    assert threads["add"] == loop_thread
    assert threads["weather"] != loop_thread


@pytest.mark.anyio
async def test_failures_reach_the_model_as_error_results() -> None:
    def broken(x: int) -> str:
        raise ValueError("the sensor is offline")

    script = {
        "turns": [
            {
                "tool_calls": [
                    {"name": "broken", "arguments": {"x": 1}},
                    {"name": "missing", "arguments": {}},
                    {"name": "broken", "arguments": "{not json"},
                    {"name": "broken", "arguments": {"x": "many"}},
                    {"name": "broken", "arguments": {"y": 1}},
                ]
            },
            {"reply": "Sorry."},
        ]
    }
    async for client, _ in _client(script):
        response = await client.run_tools(USER, tools=[broken])
        results = [m.content for m in response.transcript if m.role == "tool"]
        assert results[0] == "error: ValueError: the sensor is offline"
        assert results[1] == "error: there is no tool named 'missing' (tools: broken)"
        assert results[2].startswith("error: invalid arguments for 'broken'")
        assert "Expected `int`" in results[3]
        assert "unexpected argument 'y'" in results[4]
        assert response.text == "Sorry."


@pytest.mark.anyio
async def test_max_turns_ends_with_the_last_tool_calls() -> None:
    script = {"turns": [{"tool_calls": [{"name": "weather", "arguments": {"city": "Rome"}}]}]}
    async for client, driver in _client(script):
        response = await client.run_tools(USER, tools=[weather], max_turns=3)
        assert response.finish_reason == "tool_calls"
        assert len(driver.requests) == 3
        assert [c.name for c in response.tool_calls] == ["weather"]
        # Tools of the last response are not run: the model would never see them.
        roles = [m.role for m in response.transcript]
        assert roles == ["assistant", "tool", "assistant", "tool", "assistant"]


@pytest.mark.anyio
async def test_a_forced_tool_choice_applies_to_the_first_turn_only(loop_client: Any) -> None:
    client, driver = loop_client
    await client.run_tools(USER, tools=[weather, add], tool_choice="weather")
    assert [r.tool_choice for r in driver.requests] == ["weather", "auto"]


@pytest.mark.anyio
async def test_streaming_carries_every_turn_in_order(loop_client: Any) -> None:
    client, _ = loop_client
    run = client.run_tools(USER, tools=[weather, add], emit_tokens=True)
    batches = [batch async for batch in run.tokens]
    response = await run
    assert all(batch.request_id == run.id for batch in batches)
    deltas = [delta for batch in batches for delta in batch.tool_calls]
    assert [d.name for d in deltas if d.name] == ["weather", "add"]
    assert "".join(b.reasoning for b in batches) == "Rain means a coat."
    assert "".join(b.text for b in batches) == "Wear a raincoat."
    starts = [b.sequence_start for b in batches]
    assert starts == sorted(starts)
    assert response.request_id == run.id


@pytest.mark.anyio
async def test_tool_call_indexes_continue_across_turns() -> None:
    script = {"turns": [{"tool_calls": [{"name": "weather", "arguments": {"city": "Oslo"}}]}]}
    async for client, _ in _client(script):
        run = client.run_tools(USER, tools=[weather], emit_tokens=True, max_turns=3)
        indexes = {d.index for batch in [b async for b in run.tokens] for d in batch.tool_calls}
        await run
        assert indexes == {0, 1, 2}


@pytest.mark.anyio
async def test_output_is_parsed_on_the_final_answer() -> None:
    class Outfit(msgspec.Struct):
        coat: bool
        layers: int

    script = {
        "turns": [
            {"tool_calls": [{"name": "weather", "arguments": {"city": "Oslo"}}]},
            {"reply_json": {"coat": True, "layers": 3}},
        ]
    }
    async for client, _ in _client(script):
        response = await client.run_tools(USER, tools=[weather], output=Outfit)
        assert response.parsed == Outfit(coat=True, layers=3)


@pytest.mark.anyio
async def test_cancel_while_an_async_function_runs() -> None:
    started = anyio.Event()
    stopped: list[str] = []

    async def slow_lookup(key: str) -> str:
        started.set()
        try:
            await anyio.sleep(30)
        except anyio.get_cancelled_exc_class():
            stopped.append(key)
            raise
        return key

    script = {"turns": [{"tool_calls": [{"name": "slow_lookup", "arguments": {"key": "k"}}]}]}
    async for client, _ in _client(script):
        run = client.run_tools(USER, tools=[slow_lookup])
        await started.wait()
        run.cancel("user_left")
        with pytest.raises(RunCancelled) as caught:
            await run
        assert caught.value.reason == "user_left"
        assert stopped == ["k"]
        partial = caught.value.partial
        assert partial is not None
        assert partial.finish_reason == "cancelled"
        assert [m.role for m in partial.transcript] == ["assistant"]
        assert partial.usage.output_tokens == 0
        assert run.status == "cancelled"


@pytest.mark.anyio
async def test_cancel_while_a_sync_function_runs_abandons_its_thread() -> None:
    entered = threading.Event()
    release = threading.Event()

    def blocking(key: str) -> str:
        entered.set()
        release.wait(10)
        return key

    script = {"turns": [{"tool_calls": [{"name": "blocking", "arguments": {"key": "k"}}]}]}
    try:
        async for client, _ in _client(script):
            run = client.run_tools(USER, tools=[blocking])
            await anyio.to_thread.run_sync(entered.wait, 5)
            with anyio.fail_after(2):  # does not wait for the thread
                run.cancel("enough")
                with pytest.raises(RunCancelled) as caught:
                    await run
            assert caught.value.reason == "enough"
    finally:
        release.set()


@pytest.mark.anyio
async def test_cancel_during_a_model_call_keeps_what_was_done() -> None:
    script = {
        "turns": [
            {"tool_calls": [{"name": "weather", "arguments": {"city": "Oslo"}}]},
            {"reply": "one two three four five six seven eight"},
        ],
        "token_delay": 0.05,
    }
    async for client, driver in _client(script):
        run = client.run_tools(USER, tools=[weather], emit_tokens=True)
        seen = ""
        async for batch in run.tokens:
            seen += batch.text
            if seen:
                run.cancel("stop_now")
        with pytest.raises(RunCancelled) as caught:
            await run
        partial = caught.value.partial
        assert partial is not None
        assert partial.text.startswith("one")
        assert [m.role for m in partial.transcript] == ["assistant", "tool"]
        await anyio.sleep(0.01)
        assert driver.active_calls == 0


@pytest.mark.anyio
async def test_closing_the_client_cancels_the_loop() -> None:
    started = anyio.Event()

    async def wait_forever() -> str:
        started.set()
        await anyio.sleep(30)
        return ""

    script = {"turns": [{"tool_calls": [{"name": "wait_forever"}]}]}
    async with SippClient() as client:
        await client.add("model", {"kind": "scripted", **script})
        run = client.run_tools(USER, tools=[wait_forever])
        await started.wait()
    assert run.status == "cancelled"
    assert run.cancel_reason == "client_closed"


@pytest.mark.anyio
async def test_bad_calls_are_refused_before_any_io() -> None:
    async for client, driver in _client({"turns": WEATHER_THEN_ANSWER}):
        with pytest.raises(InvalidRequestError, match="needs a Python function"):
            client.run_tools(USER, tools=[Tool(name="schema_only")])
        with pytest.raises(InvalidRequestError, match="max_turns"):
            client.run_tools(USER, tools=[weather], max_turns=0)
        with pytest.raises(InvalidRequestError, match="at least one tool"):
            client.run_tools(USER, tools=[])
        assert driver.requests == []
    async for client, driver in _client({"without": ["tools"]}):
        with pytest.raises(UnsupportedOperationError, match="'tools'"):
            client.run_tools(USER, tools=[weather])
        assert driver.requests == []


@pytest.mark.anyio
async def test_a_dropped_loop_is_cancelled_and_released() -> None:
    import gc

    from sipp.testing.conformance import settle

    started = anyio.Event()

    async def wait_forever() -> str:
        started.set()
        await anyio.sleep(30)
        return ""

    script = {"turns": [{"tool_calls": [{"name": "wait_forever"}]}]}
    async for client, _ in _client(script):
        tasks_before = len(anyio.get_running_tasks())
        run = client.run_tools(USER, tools=[wait_forever])
        with anyio.fail_after(5):
            await started.wait()
        del run  # nobody can read it any more: the loop and its function stop
        gc.collect()
        await settle(lambda before=tasks_before: len(anyio.get_running_tasks()) <= before)


@pytest.mark.anyio
async def test_cancel_from_another_thread_and_concurrent_loops(loop_client: Any) -> None:
    client, _ = loop_client
    runs = [client.run_tools(USER, tools=[weather, add]) for _ in range(3)]
    await anyio.to_thread.run_sync(runs[0].cancel, "from_thread")
    with pytest.raises(RunCancelled) as caught:
        await runs[0]
    assert caught.value.reason == "from_thread"
    for run in runs[1:]:
        assert (await run).text == "Wear a raincoat."


class Point(msgspec.Struct):
    x: int
    y: int


def _shapes(point: Point, tags: list[str], scale: float = 1.0, /) -> None:
    pass


def _typed(point: Point, tags: list[str], scale: float = 1.0) -> None:
    pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        st.text(max_size=60),
        json_values.map(lambda v: msgspec.json.encode(v).decode()),
        st.fixed_dictionaries(
            {"point": json_values, "tags": json_values},
            optional={"scale": json_values, "extra": json_values},
        ).map(lambda v: msgspec.json.encode(v).decode()),
        st.integers(1, 5000).map(lambda depth: "[" * depth + "]" * depth),
    )
)
def test_hostile_arguments_become_clear_errors(arguments: str) -> None:
    from sipp import OutputValidationError, ToolCall
    from sipp._tool_loop import _bind

    for function in (_typed, _shapes):
        tool = sipp.tool(function, name="shape")
        try:
            args, kwargs = _bind(tool, ToolCall(id="c", name="shape", arguments=arguments))
        except (OutputValidationError, TypeError) as exc:
            message = str(exc)
            assert message, "an error the model can read"
        else:
            values = [*args, *kwargs.values()]
            assert isinstance(values[0], Point)
            assert all(isinstance(tag, str) for tag in values[1])


@pytest.mark.anyio
async def test_a_failing_turn_fails_the_loop_with_the_transcript_so_far() -> None:
    from sipp import OutputValidationError

    class Outfit(msgspec.Struct):
        coat: bool

    script = {
        "turns": [
            {"tool_calls": [{"name": "weather", "arguments": {"city": "Oslo"}}]},
            {"reply": "Wear a coat."},  # not the JSON output= asks for
        ]
    }
    async for client, _ in _client(script):
        run = client.run_tools(USER, tools=[weather], output=Outfit)
        with pytest.raises(OutputValidationError) as caught:
            await run
        assert caught.value.text == "Wear a coat."
        partial = caught.value.partial
        assert partial is not None
        assert partial.finish_reason == "error"
        assert [m.role for m in partial.transcript] == ["assistant", "tool"]
        assert run.status == "failed"


@pytest.mark.anyio
async def test_a_hand_written_schema_with_a_kwargs_handler() -> None:
    seen: list[dict[str, Any]] = []

    def handler(**arguments):  # type: ignore[no-untyped-def]  # no hints: the schema is given
        seen.append(arguments)
        return "12 °C"

    tool = Tool(
        name="weather",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}},
        function=handler,
    )
    async for client, _ in _client({"turns": WEATHER_THEN_ANSWER}):
        response = await client.run_tools(USER, tools=[tool])
        assert seen == [{"city": "Oslo"}]
        assert response.transcript[1].content == "12 °C"
        # "add" was not offered: its call gets an error result.
        assert response.transcript[2].content.startswith("error: there is no tool named 'add'")
