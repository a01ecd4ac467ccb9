"""OpenAI-compatible upstreams a test steers: answer, fail, stall, 429 or break mid-stream.

Each :class:`Upstream` serves ``/v1/chat/completions`` and ``/v1/completions``
on its own loopback port (uvicorn in a thread, ``sipp.testing.ThreadedServer``)
and answers every request with its current :attr:`Upstream.mode`, which the
test changes between requests:

* ``"ok"``: ``tokens`` tokens named after the upstream (``a0 a1 ...``), streamed
  as SSE when asked, after ``first_delay`` seconds;
* ``"error"``: 500 with an OpenAI error body;
* ``"busy"``: 429 with ``Retry-After: retry_after``;
* ``"stall"``: nothing for ``stall`` seconds (a deployment that hangs);
* ``"break"``: two streamed tokens, then the connection is cut.

``hits`` counts requests per mode; ``running`` / ``peak`` the requests in flight.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import ExitStack
from typing import Any, Literal

import anyio

from sipp.testing import ThreadedServer

Mode = Literal["ok", "error", "busy", "stall", "break"]


class Upstream:
    def __init__(self, name: str, *, tokens: int = 4) -> None:
        self.name = name
        self.mode: Mode = "ok"
        self.tokens = tokens
        self.first_delay = 0.0
        self.retry_after = 1
        self.stall = 30.0
        self.hits: dict[str, int] = {}
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await self.app(scope, receive, send)  # a function: uvicorn takes methods for ASGI2

        self._server = ThreadedServer(app, lifespan="off")
        self.url = f"{self._server.url}/v1"

    def __enter__(self) -> Upstream:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(None, None, None)

    @property
    def requests(self) -> int:
        return sum(self.hits.values())

    def reset(self) -> None:
        with self._lock:
            self.hits.clear()
            self.peak = self.running

    def deployment(self, **extra: Any) -> str:
        """The ``[[targets.deployments]]`` table for this upstream (TOML)."""
        lines = [
            "[[targets.deployments]]",
            f'name = "{self.name}"',
            'kind = "provider"',
            'provider = "openai_compatible"',
            'model = "mock"',
            f'base_url = "{self.url}"',
            "allow_insecure_http = true",
            "retries = 0",
        ]
        lines += [f"{key} = {json.dumps(value)}" for key, value in extra.items()]
        return "\n".join(lines) + "\n"

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        mode = self.mode
        with self._lock:
            self.hits[mode] = self.hits.get(mode, 0) + 1
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            await self._answer(mode, scope, json.loads(body or b"{}"), send)
        finally:
            with self._lock:
                self.running -= 1

    async def _answer(self, mode: Mode, scope: dict[str, Any], request: Any, send: Any) -> None:
        if mode == "error":
            await _json(send, 500, {"error": {"message": "upstream broke", "type": "server"}})
            return
        if mode == "busy":
            headers = [(b"retry-after", str(self.retry_after).encode())]
            await _json(send, 429, {"error": {"message": "slow down", "type": "rate"}}, headers)
            return
        if mode == "stall":
            await anyio.sleep(self.stall)
            return
        await anyio.sleep(self.first_delay)
        chat = scope["path"].endswith("/chat/completions")
        words = [f"{self.name}{i} " for i in range(self.tokens)]
        if not request.get("stream"):
            text = "".join(words)
            choice: dict[str, Any] = (
                {"index": 0, "message": {"role": "assistant", "content": text}}
                if chat
                else {"index": 0, "text": text}
            )
            choice["finish_reason"] = "stop"
            usage = {"prompt_tokens": 3, "completion_tokens": len(words), "total_tokens": 3}
            await _json(send, 200, {"id": "c", "choices": [choice], "usage": usage})
            return
        start = {"type": "http.response.start", "status": 200}
        await send({**start, "headers": [(b"content-type", b"text/event-stream")]})
        for index, word in enumerate(words):
            if mode == "break" and index == 2:
                raise ConnectionResetError("upstream cut the stream")  # uvicorn drops it
            piece = {"content": word} if chat else None
            choice = {"index": 0, "delta": piece} if chat else {"index": 0, "text": word}
            chunk = json.dumps({"id": "c", "choices": [{**choice, "finish_reason": None}]})
            await send({"type": "http.response.body", "body": f"data: {chunk}\n\n".encode(),
                        "more_body": True})  # fmt: skip
            if mode == "break":
                await anyio.sleep(0.05)  # let the first tokens reach the client
        last = json.dumps({"id": "c", "choices": [{"index": 0, "delta": {}, "text": "",
                                                   "finish_reason": "stop"}]})  # fmt: skip
        await send(
            {"type": "http.response.body", "body": f"data: {last}\n\ndata: [DONE]\n\n".encode()}
        )


async def _json(
    send: Any, status: int, value: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    data = json.dumps(value).encode()
    head = [(b"content-type", b"application/json"), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": data})


class Upstreams(ExitStack):
    """``with Upstreams("a", "b") as (a, b):`` — several upstreams, closed together."""

    def __init__(self, *names: str, tokens: int = 4) -> None:
        super().__init__()
        self._names = names
        self._tokens = tokens

    def __enter__(self) -> tuple[Upstream, ...]:  # type: ignore[override]
        super().__enter__()
        return tuple(self.enter_context(Upstream(n, tokens=self._tokens)) for n in self._names)


def wait_until(check: Any, limit: float = 5.0) -> None:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)
