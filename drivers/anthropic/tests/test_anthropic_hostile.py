"""Hostile input to the anthropic driver's readers and schema closing (hypothesis).

The readers are fed through ``httpx.Response`` objects built in memory (a unit
test of parsing; the loopback tests cover the real transport): whatever a
stream holds, reading it gives a result or a typed sipp error, never another
exception.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sipp_anthropic._body import strict_schema
from sipp_anthropic._echo import ThinkingMemory
from sipp_anthropic._read import read_message, read_stream
from sipp_anthropic._wire import ErrorDetail

from sipp import ProtocolError, SippError, Timeouts, upstream_error
from sipp.driver import TextResult
from sipp.http import EventStream

pytestmark = pytest.mark.anyio


class RecordingCall:
    """A ``sipp.driver.Call`` that records what the driver emits."""

    request_id = "req_test"
    stream = True
    timeouts = Timeouts()
    attempt = 0
    cancel_requested = False

    def __init__(self) -> None:
        self.emitted: list[tuple[Any, ...]] = []

    async def emit(self, text: str, frames: int = 1) -> None:
        self.emitted.append(("text", text))

    async def emit_reasoning(self, text: str, frames: int = 1) -> None:
        self.emitted.append(("reasoning", text))

    async def emit_tool_call(
        self, index: int, *, id: str | None = None, name: str | None = None, arguments: str = ""
    ) -> None:
        self.emitted.append(("tool", index, id, name, arguments))


def in_band(error: ErrorDetail | None, raw: str) -> SippError:
    return upstream_error("provider", "overloaded", "in-band error")


small = st.text(max_size=6)
maybe = st.none() | small | st.integers(-2, 3)
blocks = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "tool_use", "thinking", "redacted_thinking", "x"])},
    optional={
        "text": maybe,
        "id": maybe,
        "name": maybe,
        "input": st.just({}),
        "thinking": maybe,
        "signature": maybe,
        "data": maybe,
    },
)
deltas = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["text_delta", "input_json_delta", "thinking_delta", "signature_delta", "x"]
        )
    },
    optional={"text": maybe, "partial_json": maybe, "thinking": maybe, "signature": maybe},
)
events = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("content_block_start"), "content_block": blocks | st.none()},
        optional={"index": st.integers(-1, 3)},
    ),
    st.fixed_dictionaries(
        {"type": st.just("content_block_delta"), "delta": deltas | st.none()},
        optional={"index": st.integers(-1, 3) | small},
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["message_start", "message_delta", "message_stop", "ping"])},
        optional={"message": st.just({"id": "m"}), "delta": st.just({"stop_reason": "tool_use"})},
    ),
    st.just({"type": "error", "error": {"type": "overloaded_error"}}),
    st.just({"no_type": 1}),
).map(json.dumps) | st.text(max_size=10)


def stream_of(datas: list[str]) -> EventStream:
    body = "".join(f"event: e\ndata: {data}\n\n" for data in datas).encode()
    response = httpx.Response(200, stream=httpx.ByteStream(body))
    return EventStream(response, upstream="anthropic")


@settings(max_examples=100, deadline=None)
@given(st.lists(events, max_size=12))
async def test_any_stream_gives_a_result_or_a_sipp_error(datas: list[str]) -> None:
    call = RecordingCall()
    try:
        result = await read_stream(stream_of(datas), call, ThinkingMemory(), in_band)
    except SippError:
        return
    assert isinstance(result, TextResult)
    # Every tool-call piece belongs to a call announced before it, with its id and name.
    named: set[int] = set()
    for item in call.emitted:
        if item[0] == "tool":
            _, index, id_, name, _ = item
            if id_ is not None:
                assert name and index == len(named)
                named.add(index)
            assert index in named


@settings(max_examples=100, deadline=None)
@given(
    st.one_of(
        st.fixed_dictionaries(
            {"content": st.lists(blocks, max_size=4)},
            optional={"stop_reason": maybe, "id": maybe},
        ).map(json.dumps),
        st.text(max_size=20),
    )
)
async def test_any_whole_answer_gives_a_result_or_a_protocol_error(raw: str) -> None:
    try:
        result = await read_message(raw.encode(), RecordingCall(), ThinkingMemory())
    except ProtocolError:
        return
    assert isinstance(result, TextResult)


json_leaf = st.sampled_from([{"type": "string"}, {"type": "integer"}, {}, True])
schemas = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.fixed_dictionaries(
            {"type": st.just("object"), "properties": st.dictionaries(small, inner, max_size=3)}
        ),
        st.fixed_dictionaries({"type": st.just("array"), "items": inner}),
        st.fixed_dictionaries({"anyOf": st.lists(inner, max_size=3)}),
        st.fixed_dictionaries({"$defs": st.dictionaries(small, inner, max_size=2)}),
    ),
    max_leaves=8,
)


def objects(schema: Any) -> list[dict[str, Any]]:
    if isinstance(schema, list):
        return [o for item in schema for o in objects(item)]
    if not isinstance(schema, dict):
        return []
    found = [schema] if schema.get("type") == "object" else []
    for key, value in schema.items():
        if key in ("properties", "$defs"):
            found += [o for sub in value.values() for o in objects(sub)]
        elif key in ("items", "anyOf"):
            found += objects(value)
    return found


@settings(max_examples=150)
@given(schemas.filter(lambda s: isinstance(s, dict)))
def test_strict_schema_closes_every_object_and_leaves_the_input_alone(
    schema: dict[str, Any],
) -> None:
    before = copy.deepcopy(schema)
    closed = strict_schema(schema)
    assert schema == before
    assert all(o["additionalProperties"] is False for o in objects(closed))
    assert strict_schema(closed) == closed
    # Only additionalProperties was added: removing it gives the input back.
    assert _without_closing(closed) == _without_closing(schema)


def _without_closing(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_without_closing(s) for s in schema]
    if isinstance(schema, dict):
        return {
            key: _without_closing(value)
            for key, value in schema.items()
            if not (key == "additionalProperties" and value is False)
        }
    return schema
