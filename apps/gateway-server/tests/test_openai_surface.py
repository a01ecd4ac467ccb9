"""The real ``openai`` package as the client of the gateway's OpenAI-compatible surface.

Each test runs on asyncio against a gateway served by uvicorn and on trio
against one served by hypercorn. The SDK's retries are off, so a 429 or 5xx
reaches the test as the SDK's own exception class.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import httpx
import openai
import pytest
from gwtest import ADMIN_TOKEN, TOKEN, Gateway, sse_events

pytestmark = pytest.mark.anyio

WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    },
}


def client(gateway: Gateway, token: str = TOKEN) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=token, max_retries=0)


async def test_chat_plain(surface_gateway: Gateway) -> None:
    gateway = surface_gateway
    async with client(gateway) as oa:
        answer = await oa.chat.completions.create(
            model="rich", messages=[{"role": "user", "content": "hello there gateway"}]
        )
    assert answer.object == "chat.completion"
    assert answer.model == "rich"
    choice = answer.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "hello there gateway"
    assert choice.finish_reason == "stop"
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 3
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + 3


async def test_chat_streamed_with_usage(surface_gateway: Gateway) -> None:
    gateway = surface_gateway
    async with client(gateway) as oa:
        stream = await oa.chat.completions.create(
            model="words",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four five six seven eight"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 8
    assert all(c.usage is None for c in chunks[:-1])


async def test_stream_without_include_usage_has_no_usage_chunk(surface_gateway: Gateway) -> None:
    gateway = surface_gateway
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        reply = await http.post(
            "/v1/chat/completions",
            headers={"authorization": f"Bearer {TOKEN}"},
            json={"model": "words", "stream": True, "messages": [{"role": "user", "content": "x"}]},
        )
    events = sse_events(reply.text)
    assert events[-1] == ("message", "[DONE]")
    bodies = [json.loads(data) for _, data in events[:-1]]
    assert all("usage" not in body and body["choices"] for body in bodies)
    assert reply.headers["content-type"].startswith("text/event-stream")


async def test_tool_calls_whole_and_streamed(surface_gateway: Gateway) -> None:
    gateway = surface_gateway
    messages: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    async with client(gateway) as oa:
        answer = await oa.chat.completions.create(
            model="rich", messages=messages, tools=[WEATHER], tool_choice="required"
        )
        stream = await oa.chat.completions.create(
            model="rich",
            messages=messages,
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "weather"}},
            stream=True,
        )
        chunks = [chunk async for chunk in stream]
        call = answer.choices[0].message.tool_calls[0]  # type: ignore[index]
        followup = await oa.chat.completions.create(
            model="rich",
            tools=[WEATHER],
            messages=[
                *messages,
                answer.choices[0].message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
            ],
        )
    assert answer.choices[0].finish_reason == "tool_calls"
    assert call.type == "function" and call.function.name == "weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "days": 3}
    assert answer.choices[0].message.content is None
    # The streamed call: its first delta names it, then argument pieces alone.
    deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
    assert len(deltas) == 3
    assert deltas[0].id == call.id and deltas[0].function.name == "weather"  # type: ignore[union-attr]
    assert all(d.id is None and d.function.name is None for d in deltas[1:])  # type: ignore[union-attr]
    arguments = "".join(d.function.arguments for d in deltas)  # type: ignore[misc, union-attr]
    assert arguments == call.function.arguments
    assert {d.index for d in deltas} == {0}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    reasoning = "".join(
        getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices
    )
    assert reasoning == "choosing a tool"
    assert followup.choices[0].message.content == "tool said: sunny"


async def test_structured_output_and_reasoning_effort(surface_gateway: Gateway) -> None:
    gateway = surface_gateway
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    async with client(gateway) as oa:
        answer = await oa.chat.completions.create(
            model="rich",
            messages=[{"role": "user", "content": "who?"}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "person", "schema": schema, "strict": True},
            },
        )
        thought = await oa.chat.completions.create(
            model="rich", messages=[{"role": "user", "content": "ok"}], reasoning_effort="high"
        )
    assert json.loads(answer.choices[0].message.content or "") == {"name": "Paris", "age": 3}
    assert thought.model_extra is not None
    message = thought.choices[0].message
    assert message.model_extra == {"reasoning_content": "thinking high"}
    assert thought.usage is not None and thought.usage.completion_tokens_details is not None
    assert thought.usage.completion_tokens_details.reasoning_tokens == 2


async def test_image_parts_reach_the_target(surface_gateway: Gateway) -> None:
    gateway = surface_gateway
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(40))
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    async with client(gateway) as oa:
        answer = await oa.chat.completions.create(
            model="rich",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look"},
                        {"type": "image_url", "image_url": {"url": url}},
                        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                    ],
                }
            ],
        )
    assert answer.choices[0].message.content == f"look [images: 2 {len(png)},https://x.test/a.png]"


async def test_completions_plain_and_streamed(surface_gateway: Gateway) -> None:
    gateway = surface_gateway
    async with client(gateway) as oa:
        answer = await oa.completions.create(model="rich", prompt="the quick fox")
        stream = await oa.completions.create(model="words", prompt="x", stream=True)
        chunks = [chunk async for chunk in stream]
    assert answer.object == "text_completion"
    assert answer.choices[0].text == "the quick fox"
    assert answer.choices[0].finish_reason == "stop"
    assert "".join(c.choices[0].text for c in chunks) == "one two three four five six seven eight"
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_embeddings_float_and_base64(surface_gateway: Gateway) -> None:
    gateway = surface_gateway
    async with client(gateway) as oa:
        # openai-python asks for base64 by default and decodes it itself.
        default = await oa.embeddings.create(model="rich", input=["ab", "cde"])
        floats = await oa.embeddings.create(model="rich", input="abcd", encoding_format="float")
    assert [d.embedding for d in default.data] == [[2.0, 0.0, 0.5], [3.0, 1.0, 0.5]]
    assert [d.index for d in default.data] == [0, 1]
    assert floats.data[0].embedding == [4.0, 0.0, 0.5]
    assert floats.model == "rich" and floats.usage.prompt_tokens == 1
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        raw = await http.post(
            "/v1/embeddings",
            headers={"authorization": f"Bearer {TOKEN}"},
            json={"model": "rich", "input": "xy", "encoding_format": "base64"},
        )
    encoded = raw.json()["data"][0]["embedding"]
    assert struct.unpack("<3f", base64.b64decode(encoded)) == (2.0, 0.0, 0.5)


async def test_models_list(surface_gateway: Gateway) -> None:
    gateway = surface_gateway
    async with client(gateway) as oa:
        models = [m async for m in oa.models.list()]
    names = {m.id for m in models}
    assert "rich" in names and "smol" in names and "private" not in names
    assert all(m.object == "model" and m.owned_by == "sipp" and m.created > 0 for m in models)
    async with client(gateway) as oa:
        one = await oa.models.retrieve("rich")
        with pytest.raises(openai.NotFoundError):
            await oa.models.retrieve("private")  # exists, but not for this caller
        with pytest.raises(openai.NotFoundError):
            await oa.models.retrieve("nope")
    assert one.id == "rich" and one.object == "model"
    assert one.model_extra is not None and one.model_extra["capabilities"]["chat"] is True


async def test_errors_are_the_sdks_own_classes(surface_gateway: Gateway) -> None:
    gateway = surface_gateway
    messages: list[Any] = [{"role": "user", "content": "hi"}]
    async with client(gateway, "wrong-token") as oa:
        with pytest.raises(openai.AuthenticationError) as auth:
            await oa.chat.completions.create(model="rich", messages=messages)
    assert auth.value.status_code == 401
    assert auth.value.request_id and auth.value.request_id.startswith("req_")
    assert auth.value.code == "authentication"
    async with client(gateway) as oa:
        with pytest.raises(openai.RateLimitError) as limited:
            await oa.chat.completions.create(model="busy", messages=messages)
        with pytest.raises(openai.PermissionDeniedError):
            await oa.chat.completions.create(model="private", messages=messages)
        with pytest.raises(openai.BadRequestError) as bad:
            await oa.chat.completions.create(model="rich", messages=[{"role": "user"}])  # type: ignore[typeddict-item]
        with pytest.raises(openai.BadRequestError) as many:
            await oa.chat.completions.create(model="rich", messages=messages, n=2)
        with pytest.raises(openai.InternalServerError):
            await oa.chat.completions.create(model="broken", messages=messages)
    async with client(gateway, ADMIN_TOKEN) as oa:
        # A caller allowed every target learns the target does not exist (others get 403).
        with pytest.raises(openai.NotFoundError) as missing:
            await oa.chat.completions.create(
                model="nope", messages=messages, extra_headers={"x-request-id": "mine-1"}
            )
    assert limited.value.response.headers["retry-after"] == "7"
    assert limited.value.body == {  # type: ignore[comparison-overlap]
        "message": "scripted rate_limited",
        "type": "rate_limit_error",
        "param": None,
        "code": "rate_limited",
    }
    assert missing.value.request_id == "mine-1"
    assert "unknown target 'nope'" in missing.value.message
    assert bad.value.code == "invalid_request"
    assert many.value.param == "n"


async def test_failure_mid_stream_raises_in_the_sdk(surface_gateway: Gateway) -> None:
    gateway = surface_gateway
    async with client(gateway) as oa:
        stream = await oa.chat.completions.create(
            model="midway", messages=[{"role": "user", "content": "x"}], stream=True
        )
        seen = []
        with pytest.raises(openai.APIError) as failed:
            async for chunk in stream:
                seen.append(chunk.choices[0].delta.content or "")
    assert "".join(seen) == "one two "
    assert "scripted transport failure" in failed.value.message


async def test_local_model_chat(surface_gateway: Gateway) -> None:
    gateway = surface_gateway
    async with client(gateway) as oa:
        answer = await oa.chat.completions.create(
            model="smol",
            messages=[{"role": "user", "content": "Say hi"}],
            max_tokens=8,
            temperature=0,
        )
        stream = await oa.chat.completions.create(
            model="smol",
            messages=[{"role": "user", "content": "Say hi"}],
            max_tokens=8,
            temperature=0,
            stream=True,
        )
        streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert answer.choices[0].message.content
    assert streamed == answer.choices[0].message.content
    assert answer.usage is not None and 0 < answer.usage.completion_tokens <= 8


async def test_disconnect_cancels_the_run(surface_gateway: Gateway) -> None:
    gateway = surface_gateway
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        request = {
            "model": "slowrich",
            "stream": True,
            "messages": [{"role": "user", "content": "a b c d e f g h i j k l"}],
        }
        headers = {"authorization": f"Bearer {ADMIN_TOKEN}", "x-request-id": "leave-early-oa"}
        async with http.stream("POST", "/v1/chat/completions", json=request, headers=headers) as r:
            async for _ in r.aiter_raw():
                break
    logs = gateway.wait_log('"request_id":"leave-early-oa"')
    line = next(x for x in logs.splitlines() if '"leave-early-oa"' in x)
    entry = json.loads(line[line.index("{") :])
    assert entry["cancel_reason"] == "client_disconnected"
    assert entry["route"] == "openai.chat"
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"{gateway.management}/metrics")).text
    assert 'route="openai.chat"' in metrics and 'route="openai.embeddings"' in metrics
