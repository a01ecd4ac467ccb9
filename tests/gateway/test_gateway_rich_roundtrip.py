"""Every rich-chat field and event, both ways: gateway driver → route helpers → endpoint.

The routes are the plain-ASGI app (``rich_endpoint.asgi_app``) and the
Starlette example (``examples/gateway_provider_route.py``), served by uvicorn
on asyncio and hypercorn on trio. Behind them sits the ``rich`` test endpoint,
which records what it was asked and answers with reasoning, text and two tool
calls in pieces.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich_endpoint import USAGE, RichDriver, RichFactory, asgi_app

import sipp
from sipp import (
    ChatMessage,
    ChatRequest,
    EmbedRequest,
    ImagePart,
    QueryRequest,
    ReasoningOptions,
    SippClient,
    TextPart,
    Tool,
    ToolCall,
)

sys.path.insert(0, str(Path(__file__).parents[2] / "examples"))
from gateway_provider_route import create_app

pytestmark = pytest.mark.anyio

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city"],
}
MESSAGES = [
    ChatMessage(role="system", content="Be brief."),
    ChatMessage(
        role="user",
        content=[
            TextPart(text="Weather where this is? "),
            ImagePart(data=b"\x89PNG\r\n\x1a\n\x00\xff", media_type="image/png"),
            ImagePart(url="https://example.com/b.jpg"),
        ],
    ),
    ChatMessage(
        role="assistant",
        content="",
        tool_calls=[ToolCall(id="c0", name="locate", arguments='{"image":1}')],
    ),
    ChatMessage(role="tool", content="Paris", tool_call_id="c0"),
]
TOOLS = [
    Tool(name="lookup", description="Weather for a city.", parameters=SCHEMA),
    Tool(name="clock"),
]
EXPECTED_CALLS = [
    ToolCall(id="call_1", name="lookup", arguments='{"city":"Paris"}'),
    ToolCall(id="call_2", name="clock", arguments="{}"),
]


@pytest.fixture
def rich() -> Any:
    factory = RichFactory()
    sipp.register_driver("rich", factory)
    yield factory
    sipp.unregister_driver("rich")


@pytest.fixture(params=["asgi", "starlette"])
def route(request: pytest.FixtureRequest, serve: Any, rich: RichFactory) -> Any:
    """``async with route(descriptor) as (url, endpoint_driver)``, for each adapter."""

    @asynccontextmanager
    async def run(descriptor: dict[str, Any]) -> AsyncIterator[tuple[str, RichDriver]]:
        if request.param == "starlette":
            async with serve(create_app(descriptor, target="t")) as url:
                yield url, rich.opened[-1]
            return
        async with SippClient() as server_client:
            await server_client.add("rich", descriptor)
            async with serve(asgi_app(server_client)) as url:
                yield url, rich.opened[-1]

    return run


def gateway(url: str) -> dict[str, Any]:
    return {"kind": "gateway", "target": "t", "base_url": url, "retries": 0}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_chat_with_every_extension_field(route: Any, stream: bool) -> None:
    async with route({"kind": "rich"}) as (url, endpoint), SippClient() as client:
        await client.add("gw", gateway(url))
        run = client.chat(
            MESSAGES,
            endpoint="gw",
            tools=TOOLS,
            tool_choice="auto",
            reasoning={"effort": "medium", "budget_tokens": 256},
            endpoint_options={"user": "u-1", "metadata": {"trace": [1, 2]}},
            max_tokens=64,
            emit_tokens=stream,
        )
        batches = [batch async for batch in run.tokens] if stream else []
        response = await run
    # What the caller gets back ...
    assert response.reasoning == "Let me think."
    assert response.text == "Calling tools."
    assert response.tool_calls == EXPECTED_CALLS
    assert response.finish_reason == "tool_calls"
    assert response.usage == USAGE
    assert response.message.tool_calls == EXPECTED_CALLS
    if stream:
        assert "".join(b.reasoning for b in batches) == "Let me think."
        assert "".join(b.text for b in batches) == "Calling tools."
        kinds = [
            kind
            for b in batches
            for kind, present in (("r", b.reasoning), ("t", b.text), ("c", b.tool_calls))
            if present
        ]
        assert kinds == sorted(kinds, key="rtc".index)  # model order survived the wire
    else:
        assert response.id == "resp_rich"
    # ... and what reached the endpoint behind the route: the same request.
    (received,) = endpoint.requests
    assert isinstance(received, ChatRequest)
    assert received.messages == MESSAGES
    assert received.tools == TOOLS
    assert received.tool_choice == "auto"
    assert received.reasoning == ReasoningOptions(effort="medium", budget_tokens=256)
    assert received.options == {"user": "u-1", "metadata": {"trace": [1, 2]}}
    assert received.max_tokens == 64


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_structured_output_round_trip(route: Any, stream: bool) -> None:
    reply = '{"city":"Paris","days":3}'
    async with (
        route({"kind": "rich", "json_reply": reply}) as (url, endpoint),
        SippClient() as client,
    ):
        await client.add("gw", gateway(url))
        response = await client.query(
            "Plan a trip.", endpoint="gw", output=SCHEMA, emit_tokens=stream
        )
    assert response.parsed == {"city": "Paris", "days": 3}
    assert response.reasoning is None and response.tool_calls == []
    (received,) = endpoint.requests
    assert isinstance(received, QueryRequest)
    assert received.output_schema == SCHEMA


async def test_batch_embeddings_round_trip(route: Any) -> None:
    async with route({"kind": "rich"}) as (url, endpoint), SippClient() as client:
        await client.add("gw", gateway(url))
        many = await client.embed(["a", "bb", "ccc"], endpoint="gw")
        one = await client.embed(["dddd"], endpoint="gw")
        single = await client.embed("eeeee", endpoint="gw")
        async with httpx.AsyncClient() as http:
            raw_one = await http.post(url + "/v1/embed", json={"model": "t", "input": ["x"]})
            raw_single = await http.post(url + "/v1/embed", json={"model": "t", "input": "x"})
    assert many.vectors == [[1.0, 0.0], [2.0, 1.0], [3.0, 2.0]]
    assert one.vectors == [[4.0, 0.0]]
    assert single.values == [5.0, 0.0]
    assert [r.input for r in endpoint.requests[:3]] == [["a", "bb", "ccc"], ["dddd"], "eeeee"]
    assert all(isinstance(r, EmbedRequest) for r in endpoint.requests)
    assert json.loads(raw_one.content)["embeddings"] == [[1.0, 0.0]]
    assert json.loads(raw_single.content)["embedding"] == [1.0, 0.0]


async def test_the_route_refuses_a_bad_extension_field_clearly(route: Any) -> None:
    async with route({"kind": "rich"}) as (url, _), httpx.AsyncClient() as http:
        answer = await http.post(
            url + "/v1/chat",
            json={
                "model": "t",
                "messages": [{"role": "user", "content": "x"}],
                "tool_choice": "lookup",
            },
        )
    assert answer.status_code == 400
    assert answer.json() == {
        "error": {
            "code": "invalid_request",
            "message": "tool_choice must be auto, none, required, or the name of a tool in tools",
        }
    }
