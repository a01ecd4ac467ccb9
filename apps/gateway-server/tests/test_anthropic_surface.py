"""The real ``anthropic`` package as the client of the gateway's ``/v1/messages``.

On asyncio against uvicorn and on trio against hypercorn; the SDK sends the
gateway token as ``x-api-key`` (or ``Authorization: Bearer`` with
``auth_token=``), both checked against the same tokens.
"""

from __future__ import annotations

import base64
import json
import signal
from typing import Any

import anthropic
import anyio
import httpx
import pytest
from gwtest import ADMIN_TOKEN, TOKEN, Gateway, sse_events, start_gateway
from surfaces import LAUNCHER

pytestmark = pytest.mark.anyio

WEATHER = {
    "name": "weather",
    "description": "The weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
    },
}


def client(gateway: Gateway, **auth: Any) -> anthropic.AsyncAnthropic:
    auth = auth or {"api_key": TOKEN}
    return anthropic.AsyncAnthropic(base_url=gateway.url, max_retries=0, **auth)


async def test_message_plain_with_either_credential(surface_gateway: Gateway) -> None:
    gateway = surface_gateway
    for auth in ({"api_key": TOKEN}, {"auth_token": TOKEN, "api_key": None}):
        async with client(gateway, **auth) as claude:
            message = await claude.messages.create(
                model="rich",
                max_tokens=64,
                system="be brief",
                messages=[{"role": "user", "content": "hello there gateway"}],
            )
        assert message.type == "message" and message.role == "assistant"
        assert message.model == "rich"
        assert [b.type for b in message.content] == ["text"]
        assert message.content[0].text == "hello there gateway"  # type: ignore[union-attr]
        assert message.stop_reason == "end_turn"
        assert message.usage.output_tokens == 3


async def test_message_streamed(surface_gateway: Gateway) -> None:
    gateway = surface_gateway
    async with (
        client(gateway) as claude,
        claude.messages.stream(
            model="words", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(pieces) == "one two three four five six seven eight"
    assert final.content[0].text == "one two three four five six seven eight"  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 8


async def test_event_sequence_on_the_wire(surface_gateway: Gateway) -> None:
    gateway = surface_gateway
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        reply = await http.post(
            "/v1/messages",
            headers={"x-api-key": TOKEN, "anthropic-version": "2023-06-01"},
            json={
                "model": "rich",
                "max_tokens": 64,
                "stream": True,
                "tools": [WEATHER],
                "messages": [{"role": "user", "content": "weather?"}],
            },
        )
    names = [name for name, _ in sse_events(reply.text)]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",  # thinking
        "content_block_delta",
        "content_block_stop",
        "content_block_start",  # tool_use
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    bodies = [json.loads(data) for _, data in sse_events(reply.text)]
    assert all(body["type"] == name for name, body in zip(names, bodies, strict=True))
    assert bodies[5]["content_block"]["type"] == "tool_use" and bodies[5]["index"] == 1
    assert bodies[10]["delta"]["stop_reason"] == "tool_use"


async def test_tool_use_whole_streamed_and_answered(surface_gateway: Gateway) -> None:
    gateway = surface_gateway
    messages: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    async with client(gateway) as claude:
        message = await claude.messages.create(
            model="rich",
            max_tokens=64,
            messages=messages,
            tools=[WEATHER],  # type: ignore[list-item]
            tool_choice={"type": "tool", "name": "weather"},
        )
        async with claude.messages.stream(
            model="rich",
            max_tokens=64,
            messages=messages,
            tools=[WEATHER],  # type: ignore[list-item]
        ) as stream:
            streamed = await stream.get_final_message()
        use = next(b for b in message.content if b.type == "tool_use")
        followup = await claude.messages.create(
            model="rich",
            max_tokens=64,
            tools=[WEATHER],  # type: ignore[list-item]
            messages=[
                *messages,
                {"role": "assistant", "content": message.content},  # type: ignore[typeddict-item]
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}],
                },
            ],
        )
    assert message.stop_reason == "tool_use"
    assert [b.type for b in message.content] == ["thinking", "tool_use"]
    assert message.content[0].thinking == "choosing a tool"  # type: ignore[union-attr]
    assert use.name == "weather" and use.input == {"city": "Paris", "days": 3}
    # The SDK rebuilt the input from the streamed input_json_delta pieces.
    streamed_use = next(b for b in streamed.content if b.type == "tool_use")
    assert streamed_use.input == {"city": "Paris", "days": 3}
    assert streamed_use.id == use.id
    assert followup.content[0].text == "tool said: sunny"  # type: ignore[union-attr]


async def test_thinking_and_images(surface_gateway: Gateway) -> None:
    gateway = surface_gateway
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(30))
    async with client(gateway) as claude:
        message = await claude.messages.create(
            model="rich",
            max_tokens=2048,
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "see"},
                        {
                            "type": "image",
                            "source": {
                                "type": "base64",
                                "media_type": "image/png",
                                "data": base64.b64encode(png).decode(),
                            },
                        },
                    ],
                }
            ],
        )
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "thinking 1024"  # type: ignore[union-attr]
    assert message.content[1].text == f"see [images: 1 {len(png)}]"  # type: ignore[union-attr]


async def test_errors_are_the_sdks_own_classes(surface_gateway: Gateway) -> None:
    gateway = surface_gateway
    messages: list[Any] = [{"role": "user", "content": "hi"}]
    async with client(gateway, api_key="wrong") as claude:
        with pytest.raises(anthropic.AuthenticationError) as auth:
            await claude.messages.create(model="rich", max_tokens=8, messages=messages)
    assert auth.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "invalid token"},
    }
    assert auth.value.request_id and auth.value.request_id.startswith("req_")
    async with client(gateway) as claude:
        with pytest.raises(anthropic.RateLimitError) as limited:
            await claude.messages.create(model="busy", max_tokens=8, messages=messages)
        with pytest.raises(anthropic.PermissionDeniedError):
            await claude.messages.create(model="private", max_tokens=8, messages=messages)
        with pytest.raises(anthropic.BadRequestError) as bad:
            await claude.messages.create(model="rich", max_tokens=0, messages=messages)
        with pytest.raises(anthropic.InternalServerError):
            await claude.messages.create(model="broken", max_tokens=8, messages=messages)
        with pytest.raises(anthropic.APIStatusError) as midway:
            async with claude.messages.stream(
                model="midway", max_tokens=8, messages=messages
            ) as stream:
                async for _ in stream:
                    pass
    async with client(gateway, api_key=ADMIN_TOKEN) as claude:
        with pytest.raises(anthropic.NotFoundError):
            await claude.messages.create(model="nope", max_tokens=8, messages=messages)
    assert limited.value.response.headers["retry-after"] == "7"
    assert "max_tokens" in bad.value.message
    assert "scripted transport failure" in midway.value.message


async def test_local_model_message(surface_gateway: Gateway) -> None:
    gateway = surface_gateway
    async with client(gateway) as claude:
        message = await claude.messages.create(
            model="smol",
            max_tokens=8,
            messages=[{"role": "user", "content": "Say hi"}],
        )
    assert message.content[0].text  # type: ignore[union-attr]
    assert 0 < message.usage.output_tokens <= 8


async def test_disconnect_cancels_a_json_run(surface_gateway: Gateway) -> None:
    gateway = surface_gateway
    body = {
        "model": "slowrich",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "a b c d e f g h i j k l"}],
    }
    headers = {"x-api-key": TOKEN, "x-request-id": f"leave-json-{gateway.url[-5:]}"}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=0.5) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post("/v1/messages", json=body, headers=headers)
    rid = headers["x-request-id"]
    logs = gateway.wait_log(f'"request_id":"{rid}"')
    line = next(x for x in logs.splitlines() if f'"{rid}"' in x)
    entry = json.loads(line[line.index("{") :])
    assert entry["cancel_reason"] == "client_disconnected"
    assert entry["route"] == "anthropic.messages"
    assert entry["latency_ms"] < 2000  # cancelled, not run to its end (2.4 s)


async def test_shutdown_ends_both_apis_streams_with_their_error_event(backend: str) -> None:
    config = (
        '[server]\ndrain_timeout = 0.5\n\n[[targets]]\nname = "slowrich"\nkind = "rich"\n'
        'token_delay = 0.2\n\n[[tokens]]\ncaller = "web-app"\ntoken_env = "GW_WEB_TOKEN"\n'
    )
    gateway = start_gateway(config, backend, launcher=LAUNCHER)
    long = [{"role": "user", "content": " ".join(["w"] * 100)}]
    bodies: dict[str, str] = {}
    try:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=20) as http:

            async def read(path: str, body: dict[str, Any], started: anyio.Event) -> None:
                headers = {"x-api-key": TOKEN, "authorization": f"Bearer {TOKEN}"}
                async with http.stream("POST", path, json=body, headers=headers) as response:
                    text = ""
                    async for chunk in response.aiter_text():
                        text += chunk
                        started.set()
                bodies[path] = text

            started = [anyio.Event(), anyio.Event()]
            async with anyio.create_task_group() as group:
                group.start_soon(
                    read,
                    "/v1/messages",
                    {"model": "slowrich", "max_tokens": 200, "stream": True, "messages": long},
                    started[0],
                )
                group.start_soon(
                    read,
                    "/v1/chat/completions",
                    {"model": "slowrich", "stream": True, "messages": long},
                    started[1],
                )
                for event in started:
                    await event.wait()
                gateway.process.send_signal(signal.SIGTERM)
    finally:
        gateway.stop()
    anthropic_events = sse_events(bodies["/v1/messages"])
    assert anthropic_events[-1][0] == "error"
    assert json.loads(anthropic_events[-1][1]) == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "the gateway is shutting down"},
    }
    openai_last = json.loads(sse_events(bodies["/v1/chat/completions"])[-1][1])
    assert openai_last["error"]["code"] == "server_shutdown"
