"""A scriptable mock of Anthropic's Messages API, served by uvicorn on loopback.

The request's ``model`` is the script (``;``-separated ``key=value``):
``tokens`` (default 3), ``delay``, ``first``, ``stall_after``, ``stop``
(stop_reason, default ``end_turn``), ``end`` (``stop`` default, ``truncated``,
``malformed``, ``error`` with ``type``), ``status``/``type``/``message``
(an error answer), ``retry_after``, ``fail_attempts``.

``scenario=NAME`` replays one of :data:`SCENARIOS` instead of ``tokens``: the
content blocks in Anthropic's real streamed shapes (``thinking_delta`` then
``signature_delta``, ``tool_use`` opened with ``input: {}`` and its arguments
in ``input_json_delta`` pieces that split JSON anywhere) or, not streaming,
as whole blocks. ``cut=N`` applies ``end`` after the N-th delta, mid-block.
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
        if "scenario" in script:
            name = script["scenario"]
            blocks = auto_blocks(body) if name == "auto" else SCENARIOS[name]
            if not body.get("stream"):
                answer = whole_answer(blocks, script)
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
            await stream_scenario(send, blocks, script)
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


#: Content blocks: ("text", pieces), ("thinking", pieces, signature),
#: ("redacted", data), ("tool_use", id, name, argument pieces).
SCENARIOS: dict[str, list[tuple[Any, ...]]] = {
    # Parallel calls after some text; the JSON is split mid-key and mid-string.
    "tools": [
        ("text", ["Checking ", "both."]),
        ("tool_use", "toolu_01", "weather", ["", '{"ci', 'ty": "Os', 'lo"}']),
        ("tool_use", "toolu_02", "clock", ['{"zone": ', '"CET"}']),
    ],
    "think": [
        ("thinking", ["The user ", "greets me."], "sig-think-A"),
        ("text", ["Hello", " there."]),
    ],
    "think_tools": [
        ("thinking", ["I need ", "the weather."], "sig-think-B"),
        ("redacted", "ENCRYPTED-B"),
        ("tool_use", "toolu_09", "weather", ['{"city": ', '"Oslo"}']),
    ],
    "json": [("text", ['{"name": "Ada", ', '"age": 36}'])],
    "bad_json": [("text", ['{"name": ', '"Ada"}'])],
    # A call without arguments: Anthropic sends one empty input_json_delta.
    "no_args": [("tool_use", "toolu_05", "ping", [""])],
}


def auto_blocks(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    """``scenario=auto``: answer the way a model following the request would.

    Thinks when ``thinking`` is on; calls the forced tool (or, with
    ``auto``, the first tool unless the last turn brought tool results);
    answers JSON matching ``output_config``'s schema; else plain text.
    """
    blocks: list[tuple[Any, ...]] = []
    if body.get("thinking"):
        blocks.append(("thinking", ["Let me think ", "about it."], "sig-auto"))
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {"type": "auto"}
    last = body["messages"][-1]["content"]
    answered = isinstance(last, list) and any(b.get("type") == "tool_result" for b in last)
    if tools and (choice["type"] in ("any", "tool") or (choice["type"] == "auto" and not answered)):
        tool = next((t for t in tools if t["name"] == choice.get("name")), tools[0])
        arguments = json.dumps(instance_of(tool.get("input_schema", {})))
        pieces = [arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]]
        blocks.append(("tool_use", "toolu_auto_1", tool["name"], pieces))
    elif "output_config" in body:
        text = json.dumps(instance_of(body["output_config"]["format"]["schema"]))
        blocks.append(("text", [text[:5], text[5:]]))
    else:
        blocks.append(("text", ["tok0 ", "tok1 ", "tok2 "]))
    return blocks


def instance_of(schema: Any) -> Any:
    """A small value matching a JSON schema of the kinds sipp generates."""
    if not isinstance(schema, dict):
        return None
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return instance_of(schema[key][0])
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {name: instance_of(sub) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [instance_of(schema.get("items", {}))]
    return {"string": "Oslo", "integer": 4, "number": 4.5, "boolean": True}.get(kind)


def _stop_of(blocks: list[tuple[Any, ...]], script: dict[str, str]) -> str:
    default = "tool_use" if any(b[0] == "tool_use" for b in blocks) else "end_turn"
    return script.get("stop", default)


def whole_answer(blocks: list[tuple[Any, ...]], script: dict[str, str]) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for block in blocks:
        if block[0] == "text":
            content.append({"type": "text", "text": "".join(block[1])})
        elif block[0] == "thinking":
            content.append(
                {"type": "thinking", "thinking": "".join(block[1]), "signature": block[2]}
            )
        elif block[0] == "redacted":
            content.append({"type": "redacted_thinking", "data": block[1]})
        else:
            _, id_, name, pieces = block
            content.append(
                {
                    "type": "tool_use",
                    "id": id_,
                    "name": name,
                    "input": json.loads("".join(pieces) or "{}"),
                }
            )
    return {
        "id": "msg_mock",
        "type": "message",
        "role": "assistant",
        "content": content,
        "stop_reason": _stop_of(blocks, script),
        "stop_sequence": None,
        "usage": {**USAGE_START, "output_tokens": 42},
    }


async def stream_scenario(send: Any, blocks: list[tuple[Any, ...]], script: dict[str, str]) -> None:
    async def event(name: str, payload: Any) -> None:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        chunk = f"event: {name}\ndata: {data}\n\n".encode()
        await send({"type": "http.response.body", "body": chunk, "more_body": True})

    cut = int(script["cut"]) if "cut" in script else None
    deltas = 0

    async def delta(index: int, payload: dict[str, Any]) -> bool:
        """Send one delta; True once the stream must end here (``cut``)."""
        nonlocal deltas
        await event(
            "content_block_delta", {"type": "content_block_delta", "index": index, "delta": payload}
        )
        deltas += 1
        return cut is not None and deltas >= cut

    start = {
        "id": "msg_mock",
        "type": "message",
        "role": "assistant",
        "model": "claude-mock",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": USAGE_START,
    }
    await event("message_start", {"type": "message_start", "message": start})
    cut_now = False
    for index, block in enumerate(blocks):
        kind = block[0]
        if kind == "text":
            opened: dict[str, Any] = {"type": "text", "text": ""}
        elif kind == "thinking":
            opened = {"type": "thinking", "thinking": "", "signature": ""}
        elif kind == "redacted":
            opened = {"type": "redacted_thinking", "data": block[1]}
        else:
            opened = {"type": "tool_use", "id": block[1], "name": block[2], "input": {}}
        await event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": opened},
        )
        if kind == "text":
            for piece in block[1]:
                if cut_now := await delta(index, {"type": "text_delta", "text": piece}):
                    break
        elif kind == "thinking":
            for piece in block[1]:
                if cut_now := await delta(index, {"type": "thinking_delta", "thinking": piece}):
                    break
            else:
                cut_now = await delta(index, {"type": "signature_delta", "signature": block[2]})
        elif kind == "tool_use":
            for piece in block[3]:
                payload = {"type": "input_json_delta", "partial_json": piece}
                if cut_now := await delta(index, payload):
                    break
        if cut_now:
            break
        await event("content_block_stop", {"type": "content_block_stop", "index": index})
        await event("ping", {"type": "ping"})
    end = script.get("end", "stop")
    if end == "truncated":
        await send({"type": "http.response.body", "body": b""})
        return
    if end == "malformed":
        await event("content_block_delta", "{oops")
    if end == "error":
        error = {"type": script.get("type", "overloaded_error"), "message": "Overloaded"}
        await event("error", {"type": "error", "error": error})
        await send({"type": "http.response.body", "body": b""})
        return
    await event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": _stop_of(blocks, script), "stop_sequence": None},
            "usage": {"output_tokens": 42},
        },
    )
    await event("message_stop", {"type": "message_stop"})
    await send({"type": "http.response.body", "body": b""})


class ServerThread(ThreadedServer):
    """The mock on loopback, from a thread of its own (its own event loop)."""

    def __init__(self, app: Any) -> None:
        super().__init__(app, lifespan="auto")

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"
