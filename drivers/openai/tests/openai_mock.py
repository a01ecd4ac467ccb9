"""A scriptable OpenAI-compatible mock server, run for real on loopback by the tests.

The request's ``model`` is the script: ``;``-separated ``key=value`` items, e.g.
``"tokens=3;delay=0.01;end=truncated"``. Keys:

* ``tokens`` (default 3): how many text chunks ("tok0 ", "tok1 ", ...);
* ``first``: seconds to wait before the response starts; ``delay``: between chunks;
* ``stall_after``: after that many chunks, stall for 60 s;
* ``finish``: the finish_reason (default ``stop``); ``usage=0`` omits usage;
* ``end``: ``done`` (default), ``nodone`` (EOF after the finish chunk),
  ``truncated`` (EOF without finish), ``cut`` (EOF inside an event),
  ``malformed`` (a chunk that is not JSON), ``error`` (an in-band error chunk
  after the text, with ``code``), ``reset`` (the connection breaks mid-stream);
* ``status``, ``code``, ``type``, ``message``: answer with this error status/body;
* ``retry_after``, ``retry_after_ms``: hint headers on an error answer;
* ``fail_attempts``: only the first N attempts (per ``x-request-id``) fail;
* ``reply``: replay one of the real chat shapes in ``openai_replays`` (streamed
  chunk by chunk, or merged into one message); ``reply=raw`` streams the
  strings in ``MockState.raw`` as they are;
* ``embed=matrix``: per-token embedding matrices (llama-cpp-python's server).

Embedding a list of inputs answers one vector per input, listed in reverse
order with their ``index`` (as a server may), each ``[len(text), index, 1.0]``.

Every request is recorded in ``MockState.requests`` (headers and JSON body).
"""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass, field
from typing import Any

from openai_replays import REPLAYS, auto_replay, whole_message

from sipp.testing import ThreadedServer

Scope = dict[str, Any]


@dataclass
class MockState:
    requests: list[dict[str, Any]] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    open_streams: int = 0
    #: What ``reply=raw`` sends: each string one SSE ``data:`` line, then the body ends.
    raw: list[str] = field(default_factory=list)


def parse_script(model: str) -> dict[str, str]:
    script: dict[str, str] = {}
    for item in model.split(";"):
        key, _, value = item.partition("=")
        if key:
            script[key.strip()] = value.strip()
    return script


async def _read_body(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def _send_json(
    send: Any, status: int, payload: Any, headers: list[tuple[bytes, bytes]]
) -> None:
    data = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": data})


def _chunk(path: str, index: int, text: str | None, finish: str | None) -> dict[str, Any]:
    if path.endswith("/chat/completions"):
        delta = {"content": text} if text is not None else {}
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
        obj = "chat.completion.chunk"
    else:
        choice = {"index": 0, "text": text or "", "finish_reason": finish}
        obj = "text_completion"
    return {"id": "cmpl-mock", "object": obj, "model": "mock", "choices": [choice]}


def make_app(state: MockState) -> Any:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        body = json.loads(await _read_body(receive) or b"{}")
        state.requests.append({"path": scope["path"], "headers": headers, "body": body})
        request_id = headers.get("x-request-id", "")
        attempt = state.attempts.get(request_id, 0) + 1
        state.attempts[request_id] = attempt
        script = parse_script(str(body.get("model", "")))
        reply_headers = [(b"x-request-id", b"upstream-" + request_id.encode())]
        if "first" in script:
            await asyncio.sleep(float(script["first"]))
        failing = "fail_attempts" not in script or attempt <= int(script["fail_attempts"])
        if "status" in script and failing:
            for name in ("retry_after", "retry_after_ms"):
                if name in script:
                    reply_headers.append((name.replace("_", "-").encode(), script[name].encode()))
            error: dict[str, Any] = {
                "message": script.get("message", "mock failure"),
                "type": script.get("type", "mock_error"),
                "code": script.get("code") or None,
            }
            await _send_json(send, int(script["status"]), {"error": error}, reply_headers)
            return
        path = scope["path"]
        tokens = int(script.get("tokens", "3"))
        finish = script.get("finish", "stop")
        usage = {"prompt_tokens": 7, "completion_tokens": tokens, "total_tokens": 7 + tokens}
        if path.endswith("/embeddings"):
            await _send_json(send, 200, _embeddings(body, script), reply_headers)
            return
        if script.get("reply") == "raw":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/event-stream"), *reply_headers],
                }
            )
            events = "".join(f"data: {data}\n\n" for data in state.raw)
            await send({"type": "http.response.body", "body": events.encode()})
            return
        if "reply" in script:
            await _replay(send, body, REPLAYS[script["reply"]], reply_headers)
            return
        if "auto" in script and not path.endswith("/embeddings"):
            await _replay(send, body, auto_replay(body), reply_headers)
            return
        if not body.get("stream") and script.get("end") == "malformed":
            await send({"type": "http.response.start", "status": 200, "headers": reply_headers})
            await send({"type": "http.response.body", "body": b'{"id": "x", "choices": [{"te'})
            return
        if not body.get("stream"):
            text = "".join(f"tok{i} " for i in range(tokens))
            if path.endswith("/chat/completions"):
                choice: dict[str, Any] = {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish,
                }
            else:
                choice = {"index": 0, "text": text, "finish_reason": finish}
            payload = {"id": "cmpl-mock", "choices": [choice], "usage": usage}
            await _send_json(send, 200, payload, reply_headers)
            return
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.create_task(watch())
        try:
            await _stream(
                send, state, script, path, body, reply_headers, tokens, finish, usage, gone
            )
        finally:
            watcher.cancel()

    return app


async def _stream(
    send: Any,
    state: MockState,
    script: dict[str, str],
    path: str,
    body: dict[str, Any],
    reply_headers: list[tuple[bytes, bytes]],
    tokens: int,
    finish: str,
    usage: dict[str, int],
    gone: asyncio.Event,
) -> None:
    delay = float(script.get("delay", "0"))
    end = script.get("end", "done")
    stall_after = int(script["stall_after"]) if "stall_after" in script else None

    async def event(payload: Any) -> None:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        await send(
            {"type": "http.response.body", "body": f"data: {data}\n\n".encode(), "more_body": True}
        )

    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream"), *reply_headers],
        }
    )
    state.open_streams += 1
    try:
        await send({"type": "http.response.body", "body": b": keep-alive\n\n", "more_body": True})
        for index in range(tokens):
            if gone.is_set():
                return
            if stall_after is not None and index == stall_after:
                await asyncio.sleep(60)
            if index and delay:
                await asyncio.sleep(delay)
            await event(_chunk(path, index, f"tok{index} ", None))
        if end == "truncated":
            await send({"type": "http.response.body", "body": b""})
            return
        if end == "cut":
            await send({"type": "http.response.body", "body": b'data: {"id": "x", "ch'})
            return
        if end == "malformed":
            await event("{not json")
        if end == "reset":
            raise RuntimeError("mock connection reset")
        if end == "error":
            code = script.get("code", "server_error")
            await event({"error": {"message": "mock in-band failure", "type": code, "code": code}})
        await event(_chunk(path, tokens, None, finish))
        if script.get("usage", "1") == "1" and (body.get("stream_options") or {}).get(
            "include_usage"
        ):
            await event({"id": "cmpl-mock", "choices": [], "usage": usage})
        if end != "nodone":
            await event("[DONE]")
        await send({"type": "http.response.body", "body": b""})
    finally:
        state.open_streams -= 1


def _embeddings(body: dict[str, Any], script: dict[str, str]) -> dict[str, Any]:
    usage = {"prompt_tokens": 4, "total_tokens": 4}
    inputs = body["input"]
    if isinstance(inputs, str):
        vector: Any = [0.5, -0.25, 1.0]
        if script.get("embed") == "matrix":
            vector = [[0.0, 1.0, 2.0], [1.0, 1.0, 4.0]]
        data = [{"object": "embedding", "index": 0, "embedding": vector}]
        return {"object": "list", "data": data, "usage": usage}
    data = []
    for index, text in enumerate(inputs):
        vector = [float(len(text)), float(index), 1.0]
        if script.get("embed") == "matrix":
            vector = [vector, [v + 2 for v in vector]]
        data.append({"object": "embedding", "index": index, "embedding": vector})
    return {"object": "list", "data": data[::-1], "usage": usage}


async def _replay(
    send: Any, body: dict[str, Any], replay: Any, headers: list[tuple[bytes, bytes]]
) -> None:
    deltas, finish, usage = replay
    base = {"id": "chatcmpl-replay", "created": 1, "model": "mock", "system_fingerprint": "fp_1"}
    if not body.get("stream"):
        choice = {"index": 0, "message": whole_message(deltas), "finish_reason": finish}
        payload = base | {"object": "chat.completion", "choices": [choice], "usage": usage}
        await _send_json(send, 200, payload, headers)
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream"), *headers],
        }
    )
    chunks = [
        base
        | {
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}],
        }
        for delta in deltas
    ]
    last = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}
    chunks.append(base | {"object": "chat.completion.chunk", "choices": [last]})
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append(base | {"object": "chat.completion.chunk", "choices": [], "usage": usage})
    for chunk in chunks:
        data = f"data: {json.dumps(chunk)}\n\n".encode()
        await send({"type": "http.response.body", "body": data, "more_body": True})
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread(ThreadedServer):
    """The mock on loopback, from a thread of its own (its own event loop)."""

    def __init__(self, app: Any) -> None:
        super().__init__(app, lifespan="on")

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"
