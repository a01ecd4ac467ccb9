"""A fast OpenAI-compatible mock upstream: ``python mock_openai.py PORT``.

``POST /v1/chat/completions`` and ``/v1/completions`` answer ``max_tokens``
tokens (default 16) named ``t0 t1 ...`` so a reader can check order and
completeness; ``stream: true`` sends them as SSE chunks, as fast as it can.
Used by the gateway tests and by ``benchmarks/bench_gateway.py`` (also as
the upstream of LiteLLM's proxy there).
"""

from __future__ import annotations

import json
import sys
from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path = scope["path"]
    if scope["method"] == "GET" and path.endswith("/models"):
        await _json(send, {"object": "list", "data": [{"id": "mock", "object": "model"}]})
        return
    request = json.loads(body or b"{}")
    count = int(request.get("max_tokens") or 16)
    chat = path.endswith("/chat/completions")
    if request.get("model") == "endless" and request.get("stream"):
        await _endless(send, receive, chat)
        return
    tokens = [f"t{i} " for i in range(count)]
    usage = {"prompt_tokens": 5, "completion_tokens": count, "total_tokens": 5 + count}
    if not request.get("stream"):
        if chat:
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(tokens)},
                "finish_reason": "stop",
            }
        else:
            choice = {"index": 0, "text": "".join(tokens), "finish_reason": "stop"}
        await _json(
            send,
            {
                "id": "cmpl-mock",
                "object": "x",
                "model": "mock",
                "choices": [choice],
                "usage": usage,
            },
        )
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream")],
        }
    )
    for index, token in enumerate(tokens):
        delta: dict[str, Any] = {"content": token} if chat else {}
        choice = {"index": 0, "delta": delta, "finish_reason": None}
        if not chat:
            choice = {"index": 0, "text": token, "finish_reason": None}
        last = index == count - 1
        if last:
            choice["finish_reason"] = "stop"
        chunk = {"id": "cmpl-mock", "object": "chunk", "model": "mock", "choices": [choice]}
        await send(
            {
                "type": "http.response.body",
                "body": b"data: " + json.dumps(chunk).encode() + b"\n\n",
                "more_body": True,
            }
        )
    final = {"id": "cmpl-mock", "object": "chunk", "model": "mock", "choices": [], "usage": usage}
    await send(
        {
            "type": "http.response.body",
            "body": b"data: " + json.dumps(final).encode() + b"\n\ndata: [DONE]\n\n",
        }
    )


async def _endless(send: Any, receive: Any, chat: bool) -> None:
    """A broken upstream: ignores ``max_tokens`` and streams until the client leaves."""
    import anyio

    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream")],
        }
    )

    async def tokens() -> None:
        index = 0
        while True:
            token = f"t{index} "
            choice: dict[str, Any] = (
                {"index": 0, "delta": {"content": token}, "finish_reason": None}
                if chat
                else {"index": 0, "text": token, "finish_reason": None}
            )
            chunk = {"id": "cmpl-mock", "object": "chunk", "model": "endless", "choices": [choice]}
            data = b"data: " + json.dumps(chunk).encode() + b"\n\n"
            await send({"type": "http.response.body", "body": data, "more_body": True})
            index += 1
            await anyio.sleep(0.01)

    async with anyio.create_task_group() as group:
        group.start_soon(tokens)
        while (await receive())["type"] != "http.disconnect":
            pass
        group.cancel_scope.cancel()


async def _json(send: Any, value: Any) -> None:
    data = json.dumps(value).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": data})


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
