"""Byte-level checks of the rich-chat extension's answers, frames and error mapping."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from rich_endpoint import RichFactory

import sipp
from sipp import (
    EmbeddingResponse,
    EndpointInfo,
    SippClient,
    TextResponse,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from sipp.gateway import (
    GatewayEventReader,
    GatewayReasoning,
    GatewayStreamViolation,
    GatewayToolCall,
    GatewayUsage,
    encode_json,
    gateway_embedding_response_body,
    gateway_error_response,
    gateway_text_response_body,
    gateway_text_stream_response,
    reasoning_frame,
    token_frame,
    tool_call_frame,
)
from sipp.gateway._stream import batch_frames
from sipp.http import SSEDecoder

INFO = EndpointInfo(kind="rich", name="x")


def test_extension_frames_are_exact() -> None:
    assert reasoning_frame("Hm…", 2) == (
        b'event: reasoning\ndata: {"text":"Hm\xe2\x80\xa6","sequence":2}\n\n'
    )
    first = ToolCallDelta(index=0, id="c1", name="f", arguments='{"a":')
    assert tool_call_frame(first) == (
        b'event: tool_call\ndata: {"index":0,"id":"c1","name":"f","arguments":"{\\"a\\":"}\n\n'
    )
    later = ToolCallDelta(index=0, arguments="1}")
    assert tool_call_frame(later) == b'event: tool_call\ndata: {"index":0,"arguments":"1}"}\n\n'


def _batch(text: str, reasoning: str = "", calls: tuple[ToolCallDelta, ...] = ()) -> Any:
    stats = sipp.BatchStats(frames_sent=1, bytes_sent=1, batches_sent=1)
    return sipp.TokenBatch(
        request_id="r",
        stream_id="s",
        sequence_start=4,
        text=text,
        frame_count=1,
        byte_count=1,
        stats=stats,
        reasoning=reasoning,
        tool_calls=calls,
    )


def test_a_plain_batch_is_one_token_frame_as_before() -> None:
    assert batch_frames(_batch("Hi")) == token_frame("Hi", 4)
    assert batch_frames(_batch("")) == token_frame("", 4)  # even empty, as the original does


def test_a_mixed_batch_is_reasoning_then_text_then_calls() -> None:
    call = ToolCallDelta(index=1, id="c", name="f", arguments="{}")
    assert batch_frames(_batch("ok", "hm", (call,))) == (
        reasoning_frame("hm", 4) + token_frame("ok", 4) + tool_call_frame(call)
    )
    assert batch_frames(_batch("", "hm")) == reasoning_frame("hm", 4)
    # Outside the extension only the text goes out.
    assert batch_frames(_batch("ok", "hm", (call,)), extension=False) == token_frame("ok", 4)
    assert batch_frames(_batch("", "hm"), extension=False) == b""


def test_a_plain_text_answer_keeps_its_bytes() -> None:
    response = TextResponse(
        endpoint=INFO,
        text="Hi",
        finish_reason="stop",
        usage=Usage(input_tokens=1, output_tokens=2, total_tokens=3),
    )
    assert encode_json(gateway_text_response_body("t", response)) == (
        b'{"id":"response","model":"t","text":"Hi","finish_reason":"stop",'
        b'"usage":{"input_tokens":1,"output_tokens":2,"total_tokens":3}}'
    )


def test_a_rich_text_answer_carries_reasoning_tool_calls_and_usage() -> None:
    response = TextResponse(
        endpoint=INFO,
        text="",
        finish_reason="tool_calls",
        id="r1",
        reasoning="thought",
        tool_calls=[ToolCall(id="c1", name="f", arguments='{"x":1}')],
        usage=Usage(
            output_tokens=4, reasoning_tokens=3, cache_read_tokens=10, cache_write_tokens=0
        ),
    )
    assert encode_json(gateway_text_response_body("t", response)) == (
        b'{"id":"r1","model":"t","text":"","reasoning":"thought",'
        b'"tool_calls":[{"id":"c1","name":"f","arguments":"{\\"x\\":1}"}],'
        b'"finish_reason":"tool_calls","usage":{"output_tokens":4,"reasoning_tokens":3,'
        b'"cache_read_tokens":10,"cache_write_tokens":0}}'
    )


@pytest.mark.parametrize(
    ("vectors", "batch", "key"),
    [
        pytest.param([[1.0]], None, "embedding", id="one-inferred"),
        pytest.param([[1.0], [2.0]], None, "embeddings", id="many-inferred"),
        pytest.param([[1.0]], True, "embeddings", id="one-element-array"),
        pytest.param([[1.0]], False, "embedding", id="string"),
    ],
)
def test_embedding_answers(vectors: list[list[float]], batch: bool | None, key: str) -> None:
    response = EmbeddingResponse(endpoint=INFO, values=vectors[0], vectors=vectors)
    body = gateway_embedding_response_body("t", response, batch=batch)
    assert body == {"id": "response", "model": "t", key: vectors if key == "embeddings" else [1.0]}


def _read(stream: bytes) -> list[Any]:
    reader = GatewayEventReader()
    return [reader.feed(event) for event in SSEDecoder().feed(stream)]


def test_the_reader_understands_the_extension_events() -> None:
    items = _read(
        b'event: reasoning\ndata: {"text":"hm","sequence":0}\n\n'
        b'event: tool_call\ndata: {"index":0,"id":"c","name":"f","arguments":"{"}\n\n'
        b'event: tool_call\ndata: {"index":0,"arguments":"}"}\n\n'
        b'event: usage\ndata: {"output_tokens":2,"reasoning_tokens":1}\n\n'
    )
    assert items == [
        GatewayReasoning(text="hm", sequence=0),
        GatewayToolCall(index=0, id="c", name="f", arguments="{"),
        GatewayToolCall(index=0, arguments="}"),
        GatewayUsage(output_tokens=2, reasoning_tokens=1),
    ]


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        pytest.param(b'event: tool_call\ndata: {"index":-1}\n\n', "negative index", id="negative"),
        pytest.param(
            b'event: tool_call\ndata: {"id":"c"}\n\n', "malformed 'tool_call'", id="no-idx"
        ),
        pytest.param(b'event: reasoning\ndata: {"text":1}\n\n', "malformed 'reasoning'", id="text"),
        pytest.param(
            b'event: done\ndata: {}\n\nevent: reasoning\ndata: {"text":"x"}\n\n',
            "after the stream's terminal event",
            id="after-done",
        ),
    ],
)
def test_extension_event_violations(stream: bytes, message: str) -> None:
    with pytest.raises(GatewayStreamViolation, match=message):
        _read(stream)


# -- the SSE response of a rich run, through ASGI ---------------------------------


class Recorder:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        await anyio.sleep_forever()
        raise AssertionError

    async def send(self, message: Any) -> None:
        self.messages.append(message)


@pytest.fixture
def rich() -> Any:
    factory = RichFactory()
    sipp.register_driver("rich", factory)
    yield factory
    sipp.unregister_driver("rich")


def _events(body: bytes) -> list[tuple[str, Any]]:
    return [(e.event, json.loads(e.data)) for e in SSEDecoder().feed(body)]


@pytest.mark.anyio
async def test_stream_writes_the_extension_events_in_model_order(rich: Any) -> None:
    async with SippClient() as client:
        await client.add("r", {"kind": "rich"})
        run = client.chat(
            [{"role": "user", "content": "Hi"}],
            endpoint="r",
            emit_tokens=True,
            tools=[sipp.Tool(name="lookup"), sipp.Tool(name="clock")],
        )
        recorder = Recorder()
        await gateway_text_stream_response(run)(
            {"type": "http", "headers": []}, recorder.receive, recorder.send
        )
    events = _events(b"".join(m.get("body", b"") for m in recorder.messages[1:]))
    names = [name for name, _ in events]
    order = [name for i, name in enumerate(names) if i == 0 or names[i - 1] != name]
    assert order == ["reasoning", "token", "tool_call", "usage", "done"]
    assert "".join(d["text"] for n, d in events if n == "reasoning") == "Let me think."
    assert "".join(d["text"] for n, d in events if n == "token") == "Calling tools."
    calls = [d for n, d in events if n == "tool_call"]
    assert calls[0] == {"index": 0, "id": "call_1", "name": "lookup", "arguments": '{"city":'}
    assert "".join(d["arguments"] for d in calls if d["index"] == 0) == '{"city":"Paris"}'
    assert events[-2:] == [
        (
            "usage",
            {
                "input_tokens": 7,
                "output_tokens": 9,
                "total_tokens": 16,
                "reasoning_tokens": 3,
                "cache_read_tokens": 5,
                "cache_write_tokens": 2,
            },
        ),
        ("done", {"finish_reason": "tool_calls"}),
    ]
    sequences = [d["sequence"] for n, d in events if n in ("reasoning", "token")]
    assert sequences == sorted(sequences)


@pytest.mark.anyio
async def test_a_request_without_extension_fields_gets_no_extension_events(rich: Any) -> None:
    # The original's readers fail on an unknown event: a client that asked for
    # nothing of the extension may be one of them, so it gets the text alone.
    async with SippClient() as client:
        await client.add("r", {"kind": "rich"})
        run = client.chat([{"role": "user", "content": "Hi"}], endpoint="r", emit_tokens=True)
        recorder = Recorder()
        await gateway_text_stream_response(run)(
            {"type": "http", "headers": []}, recorder.receive, recorder.send
        )
    events = _events(b"".join(m.get("body", b"") for m in recorder.messages[1:]))
    assert {name for name, _ in events} == {"token", "usage", "done"}
    assert "".join(d["text"] for n, d in events if n == "token") == "Calling tools."


# -- upstream failures under the profile's codes ----------------------------------


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        pytest.param(
            sipp.upstream_error(
                "provider", "overloaded", "The server had an error", status=500, code="server_error"
            ),
            500,
            "execution",
            id="openai-server-error-500",
        ),
        pytest.param(
            sipp.upstream_error("provider", "provider", "boom", status=502, code="bad_gateway"),
            502,
            "execution",
            id="unknown-kind-5xx",
        ),
        pytest.param(
            sipp.upstream_error(
                "provider", "overloaded", "busy", status=529, code="overloaded_error"
            ),
            529,
            "execution",
            id="anthropic-overloaded",
        ),
        pytest.param(
            sipp.upstream_error("provider", "provider", "odd", status=None, code="weird"),
            502,
            "execution",
            id="in-band-no-status",
        ),
        pytest.param(
            sipp.upstream_error(
                "provider", "rate_limited", "slow", status=429, code="rate_limit_exceeded"
            ),
            429,
            "rate_limited",
            id="rate-limited",
        ),
        pytest.param(
            sipp.upstream_error("provider", "timeout", "late", status=None, code="timeout_error"),
            504,
            "upstream_timeout",
            id="timeout-in-band",
        ),
        pytest.param(
            sipp.upstream_error("provider", "quota_exceeded", "pay", status=429, code="quota"),
            429,
            "rate_limited",
            id="429-is-rate-limited-whatever-the-kind",
        ),
        pytest.param(
            sipp.upstream_error("provider", "quota_exceeded", "pay", status=402, code="billing"),
            502,
            "execution",
            id="server-quota",
        ),
        pytest.param(
            sipp.upstream_error("provider", "model_not_found", "no", status=404, code="nf"),
            502,
            "execution",
            id="server-model-mapping",
        ),
        pytest.param(
            sipp.upstream_error("provider", "invalid_request", "bad", status=422, code="bad_arg"),
            422,
            "invalid_request",
            id="caller-request",
        ),
        pytest.param(
            sipp.upstream_error(
                "provider",
                "context_length_exceeded",
                "too long",
                status=400,
                code="context_length_exceeded",
            ),
            400,
            "context_length_exceeded",
            id="context-length",
        ),
        pytest.param(
            sipp.upstream_error("gateway", "overloaded", "full", status=503, code="execution"),
            503,
            "execution",
            id="gateway-upstream-503",
        ),
        pytest.param(
            sipp.upstream_error("gateway", "overloaded", "full", status=429, code="admission"),
            429,
            "admission",
            id="gateway-upstream-admission",
        ),
    ],
)
def test_upstream_failures_use_the_profile_codes(
    error: sipp.UpstreamError, status: int, code: str
) -> None:
    response = gateway_error_response(error)
    assert (response.status, response.body["error"]["code"]) == (status, code)
    assert response.body["error"]["message"] == error.message


def test_the_upstream_request_id_is_kept() -> None:
    error = sipp.upstream_error(
        "provider",
        "overloaded",
        "The server had an error while processing your request.",
        status=500,
        code="server_error",
        request_id="req_abc<script>",
    )
    response = gateway_error_response(error)
    assert response.status == 500
    assert response.body == {
        "error": {
            "code": "execution",
            "message": "The server had an error while processing your request.",
            "upstream_request_id": "req_abcscript",
        }
    }
