"""The gateway driver and the rich-chat extension, plus the interop fixes, on real sockets.

Canned answers come from a real server (uvicorn on asyncio, hypercorn on
trio); the "events after done" checks use a raw TCP server that controls the
packet boundaries itself.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from anyio.abc import SocketStream
from canned import Canned

import sipp
from sipp import ChatMessage, ImagePart, SippClient, TextPart, Tool, ToolCall

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n"
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}
SSE = {"content-type": "text/event-stream"}


def gateway(url: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "gateway", "target": "t", "base_url": url, **extra}


async def test_a_plain_chat_body_keeps_its_bytes(serve: Any) -> None:
    app = Canned(body=b'{"text":"ok"}')
    async with serve(app) as url, SippClient() as client:
        await client.add("gw", gateway(url))
        await client.chat([{"role": "user", "content": "Hey"}], endpoint="gw", max_tokens=3)
    assert app.requests[0][2] == (
        b'{"model":"t","messages":[{"role":"user","content":"Hey"}],"max_tokens":3}'
    )


async def test_every_extension_field_is_sent(serve: Any) -> None:
    app = Canned(body=b'{"text":"ok"}')
    messages = [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(
            role="user",
            content=[
                TextPart(text="Look: "),
                ImagePart(data=PNG, media_type="image/png"),
                ImagePart(url="https://example.com/a.jpg"),
            ],
        ),
        ChatMessage(
            role="assistant",
            content="",
            tool_calls=[ToolCall(id="c1", name="lookup", arguments='{"city":"Paris"}')],
        ),
        ChatMessage(role="tool", content="sunny", tool_call_id="c1"),
    ]
    tool = Tool(name="lookup", description="Weather.", parameters=SCHEMA, function=len)
    async with serve(app) as url, SippClient() as client:
        await client.add("gw", gateway(url))
        with pytest.raises(sipp.OutputValidationError):  # "ok" is no JSON object: checked
            await client.chat(
                messages,
                endpoint="gw",
                tools=[tool],
                tool_choice="required",
                output=SCHEMA,
                reasoning={"effort": "low", "budget_tokens": 64},
                endpoint_options={"user": "u1"},
            )
    body = json.loads(app.requests[-1][2])
    assert body == {
        "model": "t",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look: "},
                    {
                        "type": "image",
                        "data": base64.b64encode(PNG).decode(),
                        "media_type": "image/png",
                    },
                    {"type": "image", "url": "https://example.com/a.jpg"},
                ],
            },
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"id": "c1", "name": "lookup", "arguments": '{"city":"Paris"}'}],
            },
            {"role": "tool", "content": "sunny", "tool_call_id": "c1"},
        ],
        "tools": [{"name": "lookup", "description": "Weather.", "parameters": SCHEMA}],
        "tool_choice": "required",
        "output_schema": SCHEMA,
        "reasoning": {"effort": "low", "budget_tokens": 64},
        "user": "u1",
    }


async def test_embed_array_input_and_embeddings(serve: Any) -> None:
    app = Canned(body=b'{"id":"e1","embeddings":[[1.0,2.0],[3.0,4.0]],"usage":{"input_tokens":2}}')
    async with serve(app) as url, SippClient() as client:
        await client.add("gw", gateway(url))
        response = await client.embed(["a", "b"], endpoint="gw", options={"dims": 2})
    assert app.requests[0][2] == b'{"model":"t","input":["a","b"],"dims":2}'
    assert response.vectors == [[1.0, 2.0], [3.0, 4.0]]
    assert (response.values, response.id, response.usage.input_tokens) == ([1.0, 2.0], "e1", 2)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        pytest.param(b'{"id":"e"}', "without embedding", id="neither"),
        pytest.param(b'{"embeddings":[[1.0]]}', "1 vector(s) for 2 input(s)", id="count"),
        pytest.param(b'{"embeddings":[["x"]]}', "malformed embedding answer", id="type"),
    ],
)
async def test_bad_embedding_answers_are_protocol_errors(
    serve: Any, answer: bytes, message: str
) -> None:
    async with serve(Canned(body=answer)) as url, SippClient() as client:
        await client.add("gw", gateway(url))
        with pytest.raises(sipp.ProtocolError, match=re.escape(message)):
            await client.embed(["a", "b"], endpoint="gw")


RICH_JSON = (
    b'{"id":"r1","model":"t","text":"Calling.","reasoning":"hm","tool_calls":['
    b'{"id":"c1","name":"lookup","arguments":"{\\"city\\":\\"Paris\\"}"},'
    b'{"id":"c2","name":"clock","arguments":"{}"}],"finish_reason":"tool_calls",'
    b'"usage":{"output_tokens":4,"reasoning_tokens":2,"cache_read_tokens":9,"cache_write_tokens":1}}'
)
RICH_SSE = (
    b'event: reasoning\ndata: {"text":"h","sequence":0}\n\n'
    b'event: reasoning\ndata: {"text":"m","sequence":1}\n\n'
    b'event: token\ndata: {"text":"Calling.","sequence":2}\n\n'
    b'event: tool_call\ndata: {"index":0,"id":"c1","name":"lookup","arguments":"{\\"city\\":"}\n\n'
    b'event: tool_call\ndata: {"index":1,"id":"c2","name":"clock","arguments":"{}"}\n\n'
    b'event: tool_call\ndata: {"index":0,"arguments":"\\"Paris\\"}"}\n\n'
    b'event: usage\ndata: {"output_tokens":4,"reasoning_tokens":2,"cache_read_tokens":9,'
    b'"cache_write_tokens":1}\n\n'
    b'event: done\ndata: {"finish_reason":"tool_calls"}\n\n'
)


@pytest.mark.parametrize(
    ("answer", "headers"),
    [pytest.param(RICH_JSON, {}, id="json"), pytest.param(RICH_SSE, SSE, id="sse")],
)
async def test_reasoning_and_tool_calls_are_read_back(
    serve: Any, answer: bytes, headers: dict[str, str]
) -> None:
    async with serve(Canned(body=answer, headers=headers)) as url, SippClient() as client:
        await client.add("gw", gateway(url))
        run = client.chat(
            [{"role": "user", "content": "Weather?"}],
            endpoint="gw",
            tools=[Tool(name="lookup"), Tool(name="clock")],
            emit_tokens=True,
        )
        batches = [batch async for batch in run.tokens]
        response = await run
    assert response.text == "Calling."
    assert response.reasoning == "hm"
    assert response.tool_calls == [
        ToolCall(id="c1", name="lookup", arguments='{"city":"Paris"}'),
        ToolCall(id="c2", name="clock", arguments="{}"),
    ]
    assert response.finish_reason == "tool_calls"
    usage = response.usage
    assert (usage.reasoning_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (2, 9, 1)
    assert "".join(batch.reasoning for batch in batches) == "hm"
    assert any(batch.tool_calls for batch in batches)


async def test_options_are_a_free_form_dict_that_may_not_set_typed_fields(serve: Any) -> None:
    async with serve(Canned(body=b'{"text":"ok"}')) as url, SippClient() as client:
        await client.add("gw", gateway(url))
        with pytest.raises(sipp.InvalidRequestError, match="typed field 'tools'"):
            await client.query("Hi", endpoint="gw", endpoint_options={"tools": []})
        with pytest.raises(sipp.InvalidRequestError, match="typed field 'output_schema'"):
            await client.query("Hi", endpoint="gw", options={"output_schema": {}})


# -- events after done: an error, whatever the packet boundaries ------------------

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
TOKEN = b'event: token\ndata: {"text":"a","sequence":0}\n\n'
DONE = b'event: done\ndata: {"finish_reason":"stop"}\n\n'
LATE = b'event: token\ndata: {"text":"b","sequence":1}\n\n'
END = b"0\r\n\r\n"

Respond = Callable[[SocketStream], Awaitable[None]]


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@asynccontextmanager
async def raw_server(respond: Respond) -> AsyncIterator[tuple[str, list[int]]]:
    """HTTP/1.1 by hand on loopback: ``respond`` writes each answer, packet by packet."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    connections: list[int] = []

    async def handle(stream: SocketStream) -> None:
        connections.append(1)
        buffer = b""
        async with stream:
            while True:
                try:
                    while b"\r\n\r\n" not in buffer:
                        buffer += await stream.receive()
                    head, _, buffer = buffer.partition(b"\r\n\r\n")
                    found = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
                    length = int(found.group(1)) if found else 0
                    while len(buffer) < length:
                        buffer += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return
                buffer = buffer[length:]
                await respond(stream)

    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, handle)
        try:
            yield f"http://127.0.0.1:{port}", connections
        finally:
            group.cancel_scope.cancel()


async def late_token_in_a_later_read(stream: SocketStream) -> None:
    await stream.send(HEAD + chunk(TOKEN + DONE))
    await anyio.sleep(0.2)
    await stream.send(chunk(LATE) + END)


async def late_token_in_the_same_write(stream: SocketStream) -> None:
    await stream.send(HEAD + chunk(TOKEN + DONE + LATE) + END)


async def late_token_split_across_reads(stream: SocketStream) -> None:
    await stream.send(HEAD + chunk(TOKEN) + chunk(DONE[:9]))
    await anyio.sleep(0.1)
    await stream.send(chunk(DONE[9:] + LATE[:12]))
    await anyio.sleep(0.1)
    await stream.send(chunk(LATE[12:]) + END)


@pytest.mark.parametrize(
    "respond",
    [late_token_in_a_later_read, late_token_in_the_same_write, late_token_split_across_reads],
)
async def test_a_token_after_done_is_a_protocol_error(respond: Respond) -> None:
    async with raw_server(respond) as (url, _), SippClient() as client:
        await client.add("gw", gateway(url, allow_insecure_http=True, retries=0))
        with pytest.raises(sipp.ProtocolError, match="after the stream's terminal event"):
            await client.query("Hi", endpoint="gw", emit_tokens=True)


async def done_then_end(stream: SocketStream) -> None:
    await stream.send(HEAD + chunk(TOKEN + DONE))
    await anyio.sleep(0.05)
    await stream.send(chunk(b"data: [DONE]\n\n: bye\n\n") + END)


async def test_a_clean_end_after_done_returns_the_connection_to_the_pool() -> None:
    async with raw_server(done_then_end) as (url, connections), SippClient() as client:
        await client.add("gw", gateway(url, allow_insecure_http=True))
        for _ in range(3):
            assert (await client.query("Hi", endpoint="gw", emit_tokens=True)).text == "a"
    assert len(connections) == 1


async def done_then_silence(stream: SocketStream) -> None:
    await stream.send(HEAD + chunk(TOKEN + DONE))
    await anyio.sleep(30)


async def test_the_read_after_done_is_bounded_in_time() -> None:
    async with raw_server(done_then_silence) as (url, connections), SippClient() as client:
        await client.add("gw", gateway(url, allow_insecure_http=True))
        started = time.monotonic()
        assert (await client.query("Hi", endpoint="gw", emit_tokens=True)).text == "a"
        elapsed = time.monotonic() - started
        await client.query("Hi", endpoint="gw", emit_tokens=True)
    assert 0.9 < elapsed < 5  # DRAIN_MAX_SECONDS (1 s), far below the 30 s silence
    assert len(connections) == 2


# -- which failures are retried ---------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "kind", "attempts"),
    [
        pytest.param(500, b'{"error":{"code":"server_error","message":"x"}}', None, 1,
                     id="500-unknown-code"),
        pytest.param(500, b'{"error":{"code":"execution","message":"x"}}', None, 1,
                     id="500-execution"),
        pytest.param(502, b"<html>bad gateway</html>", None, 1, id="502-proxy-page"),
        pytest.param(501, b'{"error":{"code":"weird","message":"x"}}', None, 1, id="501"),
        pytest.param(503, b'{"error":{"code":"execution","message":"x"}}', sipp.OverloadedError,
                     3, id="503"),
        pytest.param(529, b'{"error":{"code":"something","message":"x"}}', sipp.OverloadedError,
                     3, id="529"),
        pytest.param(504, b'{"error":{"code":"upstream_timeout","message":"x"}}',
                     sipp.UpstreamTimeoutError, 3, id="504"),
    ],
)  # fmt: skip
async def test_only_try_again_answers_are_retried(
    serve: Any, status: int, body: bytes, kind: type | None, attempts: int
) -> None:
    app = Canned(status=status, body=body, headers={"retry-after": "0"})
    async with serve(app) as url, SippClient() as client:
        await client.add("gw", gateway(url, retries=2))
        with pytest.raises(sipp.GatewayError) as caught:
            await client.query("Hi", endpoint="gw")
    assert len(app.requests) == attempts
    error = caught.value
    assert error.retryable is (attempts > 1)
    if kind is None:
        assert error.kind == "provider"
        assert not isinstance(error, sipp.OverloadedError)
    else:
        assert isinstance(error, kind)
