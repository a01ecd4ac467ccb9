"""A raw OpenAI-compatible mock upstream that is never the bottleneck.

``python benchmarks/_upstream.py PORT [--pace-ms MS]``

The gateway benchmarks measure what a hop adds, so the upstream must answer
far faster than any hop can forward: this one is an ``asyncio.Protocol``
(on uvloop when installed) that parses just enough HTTP/1.1 to read a
``Content-Length`` body and answers from pre-encoded pieces. It does well
over 20,000 small requests/s on one core here; the ASGI mock of the gateway
tests (``apps/gateway-server/tests/mock_openai.py``) saturates at about 225
under uvicorn's default stack.

Routes, answers shaped like OpenAI's:

* ``GET /v1/models``;
* ``POST /v1/chat/completions`` and ``/v1/completions``: ``max_tokens``
  tokens (default 16) named ``t0 t1 ...`` (so readers can check order and
  completeness), as one JSON body or, with ``"stream": true``, as SSE chunks
  followed by a usage chunk and ``data: [DONE]``.

``--pace-ms`` (or a model named ``paced-<ms>``) sleeps between streamed
tokens, which keeps streams open for the memory and many-streams runs.
Keep-alive is honoured; ``Connection: close`` closes after the answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any, cast

_MAX_HEAD = 64 * 1024

_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
    b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _json_answer(payload: dict[str, Any], close: bool) -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    connection = b"connection: close\r\n" if close else b""
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n%s\r\n%s" % (len(body), connection, body)
    )


_MODELS = {"object": "list", "data": [{"id": "mock", "object": "model", "owned_by": "mock"}]}


class _Answers:
    """Pre-encoded answers per token count: the mock's per-request work is a dict lookup."""

    def __init__(self) -> None:
        self._json: dict[tuple[bool, int], dict[str, Any]] = {}
        self._encoded: dict[tuple[bool, int, bool], bytes] = {}
        self._events: dict[tuple[bool, int], list[bytes]] = {}

    def json(self, chat: bool, count: int) -> dict[str, Any]:
        key = (chat, count)
        answer = self._json.get(key)
        if answer is None:
            text = "".join(f"t{i} " for i in range(count))
            choice: dict[str, Any] = (
                {"index": 0, "message": {"role": "assistant", "content": text}}
                if chat
                else {"index": 0, "text": text}
            )
            choice["finish_reason"] = "stop"
            answer = {
                "id": "cmpl-mock",
                "object": "chat.completion" if chat else "text_completion",
                "created": 0,
                "model": "mock",
                "choices": [choice],
                "usage": _usage(count),
            }
            self._json[key] = answer
        return answer

    def encoded(self, chat: bool, count: int, close: bool) -> bytes:
        key = (chat, count, close)
        answer = self._encoded.get(key)
        if answer is None:
            answer = self._encoded[key] = _json_answer(self.json(chat, count), close)
        return answer

    def events(self, chat: bool, count: int) -> list[bytes]:
        """One chunk-encoded SSE event per token; the last also carries usage and [DONE]."""
        key = (chat, count)
        events = self._events.get(key)
        if events is None:
            events = []
            kind = "chat.completion.chunk" if chat else "text_completion"
            for index in range(count):
                token = f"t{index} "
                finish = "stop" if index == count - 1 else None
                choice: dict[str, Any] = (
                    {"index": 0, "delta": {"content": token}, "finish_reason": finish}
                    if chat
                    else {"index": 0, "text": token, "finish_reason": finish}
                )
                event = {"id": "cmpl-mock", "object": kind, "model": "mock", "choices": [choice]}
                events.append(_chunk(b"data: " + json.dumps(event).encode() + b"\n\n"))
            usage = {
                "id": "cmpl-mock",
                "object": kind,
                "model": "mock",
                "choices": [],
                "usage": _usage(count),
            }
            tail = b"data: " + json.dumps(usage).encode() + b"\n\ndata: [DONE]\n\n"
            events.append(_chunk(tail) + b"0\r\n\r\n")
            self._events[key] = events
        return events


def _usage(count: int) -> dict[str, int]:
    return {"prompt_tokens": 5, "completion_tokens": count, "total_tokens": 5 + count}


class _Connection(asyncio.Protocol):
    def __init__(self, answers: _Answers, pace: float) -> None:
        self._answers = answers
        self._pace = pace
        self._buffer = b""
        self._transport: asyncio.Transport | None = None
        self._busy = False  # a paced stream is being written; later requests wait
        self._streaming: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport: no isinstance check.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._streaming is not None:
            self._streaming.cancel()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._busy:
            self._drain_requests()

    def _drain_requests(self) -> None:
        while self._transport is not None and not self._busy:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > _MAX_HEAD:
                    self._transport.close()
                return
            head = self._buffer[:end].decode("latin-1")
            lines = head.split("\r\n")
            method, path = lines[0].split(" ", 2)[:2]
            length, close = 0, False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection":
                    close = value.strip().lower() == "close"
            if len(self._buffer) < end + 4 + length:
                return
            body = self._buffer[end + 4 : end + 4 + length]
            self._buffer = self._buffer[end + 4 + length :]
            self._answer(method, path, body, close)

    def _answer(self, method: str, path: str, body: bytes, close: bool) -> None:
        transport = self._transport
        assert transport is not None
        if method == "GET" and path.endswith("/models"):
            transport.write(_json_answer(_MODELS, close))
        elif method == "POST" and path.endswith("completions"):
            request = json.loads(body or b"{}")
            chat = path.endswith("/chat/completions")
            count = int(request.get("max_tokens") or 16)
            if not request.get("stream"):
                transport.write(self._answers.encoded(chat, count, close))
            else:
                pace = self._pace
                model = str(request.get("model", ""))
                if model.startswith("paced-"):
                    pace = float(model.removeprefix("paced-")) / 1000
                events = self._answers.events(chat, count)
                if pace <= 0:
                    transport.write(_SSE_HEAD + b"".join(events))
                else:
                    self._busy = True
                    self._streaming = asyncio.ensure_future(self._paced(events, pace, close))
                    return
        else:
            transport.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
        if close:
            transport.close()

    async def _paced(self, events: list[bytes], pace: float, close: bool) -> None:
        transport = self._transport
        assert transport is not None
        transport.write(_SSE_HEAD)
        for event in events:
            await asyncio.sleep(pace)
            if self._transport is None:
                return
            transport.write(event)
        self._busy, self._streaming = False, None
        if close:
            transport.close()
        else:
            self._drain_requests()


async def serve(port: int, pace: float) -> None:
    loop = asyncio.get_running_loop()
    answers = _Answers()
    server = await loop.create_server(
        lambda: _Connection(answers, pace), "127.0.0.1", port, backlog=4096
    )
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--pace-ms", type=float, default=0.0)
    args = parser.parse_args()
    try:
        import uvloop  # type: ignore[import-not-found,unused-ignore]

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    runner(serve(args.port, args.pace_ms / 1000))


if __name__ == "__main__":
    main()
