"""The imaginary echo-cloud API, as a raw ASGI app for ``sipp.testing.ThreadedServer``.

It answers ``POST /generate`` the way ``examples/echo-cloud`` expects
(``echo_cloud/_wire.py``), a streamed event at a time:

* a ``tool`` message last: ``The tool said: <its content>``;
* tools offered (and ``tool_choice`` not ``none``): a call of the forced tool
  (or the first), each required string argument set to the last message,
  its JSON arguments in three pieces;
* otherwise the last message echoed back a word per event, at most
  ``max_tokens`` words;
* with ``think``: first a thinking text, apart from the answer.

``rate_limited = n`` answers the next ``n`` requests with a 429 instead.
Every request is kept in ``requests`` (headers and decoded body).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

# Not shaped like a known key: only the driver's own Redactor can mask it.
API_KEY = "echo-secret-0123456789abcdef"
REGION = "eu-echo-1"


class EchoCloudMock:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.rate_limited = 0

    def reset(self) -> None:
        self.requests.clear()
        self.rate_limited = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        body = json.loads(raw)
        self.requests.append({"path": scope["path"], "headers": headers, "body": body})
        upstream_id = f"ec-{len(self.requests)}"
        if self.rate_limited > 0:
            self.rate_limited -= 1
            # The message echoes the key, as careless upstreams do: the driver must redact it.
            error = {"error": {"code": "rate_limit_exceeded", "message": f"key {API_KEY} is busy"}}
            await _answer(send, 429, json.dumps(error).encode(), upstream_id, retry_after="0")
            return
        await _start(send, upstream_id)
        for event in _events(body, upstream_id):
            chunk = f"data: {json.dumps(event)}\n\n".encode()
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            # A pause between events, so a reader can cancel mid-stream.
            await asyncio.sleep(0.002)
        await send({"type": "http.response.body", "body": b""})


def _events(body: dict[str, Any], upstream_id: str) -> list[dict[str, Any]]:
    last = body["messages"][-1]
    events: list[dict[str, Any]] = []
    tools = body.get("tools") or []
    if last["role"] == "tool":
        words = f"The tool said: {last['content']}".split()
    elif tools and body.get("tool_choice") != "none":
        tool = next((t for t in tools if t["name"] == body.get("tool_choice")), tools[0])
        arguments = json.dumps(_arguments(tool, last["content"]))
        third = len(arguments) // 3
        pieces = [arguments[:third], arguments[third : 2 * third], arguments[2 * third :]]
        events.append({"type": "tool_call", "index": 0, "id": "call_1", "name": tool["name"]})
        events += [{"type": "tool_call", "index": 0, "arguments": piece} for piece in pieces]
        return [*events, _done(upstream_id, "tool_calls", 1)]
    else:
        words = last["content"].split()
    finish = "stop"
    if body.get("max_tokens") is not None and len(words) > body["max_tokens"]:
        words, finish = words[: body["max_tokens"]], "length"
    if body.get("think"):
        events.append({"type": "thinking", "text": f"Echoing {len(words)} "})
        events.append({"type": "thinking", "text": "words."})
    events += [{"type": "text", "text": w if i == 0 else f" {w}"} for i, w in enumerate(words)]
    return [*events, _done(upstream_id, finish, len(words))]


def _arguments(tool: dict[str, Any], text: str) -> dict[str, str]:
    properties = tool["parameters"].get("properties", {})
    required = tool["parameters"].get("required", [])
    return {name: text for name in required if properties.get(name, {}).get("type") == "string"}


def _done(upstream_id: str, finish: str, output_tokens: int) -> dict[str, Any]:
    return {
        "type": "done",
        "finish": finish,
        "id": upstream_id,
        "input_tokens": 7,
        "output_tokens": output_tokens,
        "region": REGION,
        "queue_ms": 3,
    }


async def _start(send: Any, upstream_id: str) -> None:
    headers = [(b"content-type", b"text/event-stream"), (b"x-request-id", upstream_id.encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})


async def _answer(send: Any, status: int, body: bytes, upstream_id: str, retry_after: str) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"x-request-id", upstream_id.encode()),
        (b"retry-after", retry_after.encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
