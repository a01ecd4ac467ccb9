"""Hostile and randomly split streams, through a real loopback exchange (hypothesis).

* Any sequence of chunks, however malformed, ends the run completed or failed
  with a ``SippError``; nothing else escapes the driver.
* Tool calls whose arguments are cut at random points and grouped into chunks
  at random come out whole, in order, with each id and name once.
* Any JSON schema, however odd, gets a ``response_format`` without crashing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai_mock import MockState, ServerThread
from sipp_openai._schema import response_format

import sipp
from sipp import SippClient, ToolCall

pytestmark = pytest.mark.anyio

HI = [{"role": "user", "content": "Hi"}]
SETTINGS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=4), st.floats(-1, 1)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)
functions = st.one_of(
    scalars,
    st.fixed_dictionaries(
        {},
        optional={
            "name": scalars,
            "arguments": st.one_of(scalars, st.dictionaries(st.text(max_size=3), scalars)),
        },
    ),
)
pieces = st.fixed_dictionaries(
    {}, optional={"index": scalars, "id": scalars, "type": scalars, "function": functions}
)
deltas = st.fixed_dictionaries(
    {},
    optional={
        "content": scalars,
        "reasoning_content": scalars,
        "reasoning": scalars,
        "tool_calls": st.one_of(scalars, st.lists(pieces, max_size=3)),
        "function_call": functions,
    },
)
finishes = st.one_of(st.none(), st.sampled_from(["stop", "length", "tool_calls", "function_call"]))
choices = st.fixed_dictionaries(
    {"delta": st.one_of(deltas, scalars)}, optional={"finish_reason": finishes}
)
chunks = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"choices": st.one_of(st.lists(choices, max_size=2), scalars)},
        optional={
            "usage": st.one_of(
                json_values,
                st.dictionaries(
                    st.sampled_from(["prompt_tokens", "completion_tokens_details"]), json_values
                ),
            )
        },
    ),
)


class Feed:
    """The mock and what it will stream next, with a short repr for hypothesis reports."""

    def __init__(self, server: ServerThread, state: MockState) -> None:
        self.server = server
        self.state = state

    def __repr__(self) -> str:
        return "Feed()"

    async def add(self, client: SippClient) -> None:
        await client.add(
            "m",
            {
                "kind": "provider",
                "provider": "openai_compatible",
                "model": "reply=raw",
                "base_url": self.server.base_url,
                "retries": 0,
            },
        )


@pytest.fixture
def feed(mock_server: ServerThread, mock_state: MockState) -> Feed:
    return Feed(mock_server, mock_state)


@SETTINGS
@given(stream=st.lists(chunks, max_size=6), done=st.booleans())
async def test_hostile_chunks_fail_cleanly(feed: Feed, stream: list[Any], done: bool) -> None:
    feed.state.raw = [json.dumps(chunk) for chunk in stream] + (["[DONE]"] if done else [])
    async with SippClient() as client:
        await feed.add(client)
        run = client.chat(HI, endpoint="m", emit_tokens=True)
        try:
            texts = [batch.text async for batch in run.tokens]
            response = await run
        except sipp.SippError:
            return
        assert response.text == "".join(texts)
        assert response.finish_reason in ("stop", "length", "tool_calls")


@st.composite
def split_calls(draw: st.DrawFn) -> tuple[list[ToolCall], list[str]]:
    """Tool calls, and the SSE chunks that stream them in random pieces."""
    values = draw(st.lists(st.text(max_size=12), min_size=1, max_size=3))
    calls = [
        ToolCall(id=f"id{i}", name=f"fn{i}", arguments=json.dumps({"v": v}, ensure_ascii=False))
        for i, v in enumerate(values)
    ]
    wire: list[dict[str, Any]] = []
    for index, call in enumerate(calls):
        text = call.arguments
        cuts = sorted(draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=4)))
        parts = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        first = {"index": index, "id": call.id, "type": "function"}
        wire.append(first | {"function": {"name": call.name, "arguments": ""}})
        wire += [{"index": index, "function": {"arguments": part}} for part in parts if part]
    # Group consecutive pieces into chunks of random sizes, as a server may.
    sizes = draw(st.lists(st.integers(1, 3), min_size=len(wire), max_size=len(wire)))
    events, at = [], 0
    for size in sizes:
        if at >= len(wire):
            break
        delta = {"tool_calls": wire[at : at + size]}
        events.append(json.dumps({"id": "c", "choices": [{"index": 0, "delta": delta}]}))
        at += size
    finish = {"index": 0, "delta": {}, "finish_reason": "tool_calls"}
    events += [json.dumps({"id": "c", "choices": [finish]}), "[DONE]"]
    return calls, events


@SETTINGS
@given(case=split_calls())
async def test_randomly_split_tool_calls_come_out_whole(
    feed: Feed, case: tuple[list[ToolCall], list[str]]
) -> None:
    calls, feed.state.raw = case
    async with SippClient() as client:
        await feed.add(client)
        run = client.chat(HI, endpoint="m", emit_tokens=True)
        names = [d.name for batch in [b async for b in run.tokens] for d in batch.tool_calls]
        response = await run
    assert response.tool_calls == calls
    assert response.finish_reason == "tool_calls"
    assert [name for name in names if name] == [call.name for call in calls]


@settings(max_examples=100, deadline=None)
@given(
    schema=st.dictionaries(
        st.sampled_from(
            [
                "type",
                "properties",
                "required",
                "items",
                "additionalProperties",
                "$defs",
                "anyOf",
                "title",
            ]
        ),
        json_values,
    )
)
def test_any_schema_gets_a_response_format(schema: dict[str, Any]) -> None:
    for form in ("json_schema", "json_object"):
        out = response_format(schema, form)  # type: ignore[arg-type]
        json.dumps(out)
        if form == "json_schema":
            assert out["json_schema"]["strict"] in (True, False)
            name = out["json_schema"]["name"]
            assert 1 <= len(name) <= 64
