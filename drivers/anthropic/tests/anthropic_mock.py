"""A scriptable mock of Anthropic's Messages API, served by uvicorn on loopback.

The request's ``model`` is the script (``;``-separated ``key=value``):
``tokens`` (default 3), ``delay``, ``first``, ``stall_after``, ``stop``
(stop_reason, default ``end_turn``), ``end`` (``stop`` default, ``truncated``,
``malformed``, ``error`` with ``type``), ``status``/``type``/``message``
(an error answer), ``retry_after``, ``fail_attempts``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from sipp.testing import ThreadedServer


@dataclass
class MockState:
    requests: list[dict[str, Any]] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)


def parse_script(model: str) -> dict[str, str]:
    script: dict[str, str] = {}
    for item in model.split(";"):
        key, _, value = item.partition("=")
        if key:
            script[key.strip()] = value.strip()
    return script


USAGE_START = {
    "input_tokens": 10,
    "cache_creation_input_tokens": 3,
    "cache_read_input_tokens": 5,
    "output_tokens": 1,
}


def make_app(state: MockState) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                done = message["type"] == "lifespan.shutdown"
                await send({"type": message["type"] + ".complete"})
                if done:
                    return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        body = json.loads(raw or b"{}")
        state.requests.append({"path": scope["path"], "headers": headers, "body": body})
        request_id = headers.get("x-request-id", "")
        attempt = state.attempts[request_id] = state.attempts.get(request_id, 0) + 1
        script = parse_script(str(body.get("model", "")))
        reply = [(b"request-id", b"req_up_" + request_id.encode())]
        if "first" in script:
            await asyncio.sleep(float(script["first"]))
        failing = "fail_attempts" not in script or attempt <= int(script["fail_attempts"])
        if "status" in script and failing:
            if "retry_after" in script:
                reply.append((b"retry-after", script["retry_after"].encode()))
            error = {
                "type": "error",
                "error": {
                    "type": script.get("type", "api_error"),
                    "message": script.get("message", "mock"),
                },
            }
            await send(
                {"type": "http.response.start", "status": int(script["status"]), "headers": reply}
            )
            await send({"type": "http.response.body", "body": json.dumps(error).encode()})
            return
        tokens = int(script.get("tokens", "3"))
        stop = script.get("stop", "end_turn")
        if not body.get("stream"):
            text = "".join(f"tok{i} " for i in range(tokens))
            answer = {
                "id": "msg_mock",
                "type": "message",
                "role": "assistant",
                "content": [{"type": "text", "text": text}],
                "stop_reason": stop,
                "usage": {**USAGE_START, "output_tokens": tokens},
            }
            await send({"type": "http.response.start", "status": 200, "headers": reply})
            await send({"type": "http.response.body", "body": json.dumps(answer).encode()})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), *reply],
            }
        )

        async def event(name: str, payload: Any) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            chunk = f"event: {name}\ndata: {data}\n\n".encode()
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

        start = {
            "id": "msg_mock",
            "type": "message",
            "role": "assistant",
            "content": [],
            "usage": USAGE_START,
        }
        await event("message_start", {"type": "message_start", "message": start})
        await event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        )
        await event("ping", {"type": "ping"})
        stall_after = int(script["stall_after"]) if "stall_after" in script else None
        delay = float(script.get("delay", "0"))
        for index in range(tokens):
            if stall_after is not None and index == stall_after:
                await asyncio.sleep(60)
            if index and delay:
                await asyncio.sleep(delay)
            delta = {"type": "text_delta", "text": f"tok{index} "}
            await event(
                "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
            )
        end = script.get("end", "stop")
        if end == "truncated":
            await send({"type": "http.response.body", "body": b""})
            return
        if end == "malformed":
            await event("content_block_delta", "{oops")
        if end == "error":
            error = {"type": script.get("type", "overloaded_error"), "message": "Overloaded"}
            await event("error", {"type": "error", "error": error})
        await event("future_event", {"type": "future_event", "whatever": 1})
        await event("content_block_stop", {"type": "content_block_stop", "index": 0})
        await event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop},
                "usage": {"output_tokens": tokens},
            },
        )
        await event("message_stop", {"type": "message_stop"})
        await send({"type": "http.response.body", "body": b""})

    return app


class ServerThread(ThreadedServer):
    """The mock on loopback, from a thread of its own (its own event loop)."""

    def __init__(self, app: Any) -> None:
        super().__init__(app, lifespan="auto")

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"
