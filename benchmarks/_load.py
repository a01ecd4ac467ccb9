"""A cheap HTTP/1.1 load generator: raw asyncio streams, keep-alive, one request at a time each.

The gateway benchmarks measure what a hop adds, so the client must cost
less than any hop: httpx spends about as much CPU per request as the
gateway's own upstream call, and on a 2-core machine that CPU is taken from
the server being measured. A :class:`Connection` sends pre-encoded request
bytes and reads just enough of the answer (status line, ``Content-Length``
or chunked framing) to know where it ends; the same client drives every
path, so whatever it costs is the same for all of them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Connection", "Target", "closed_loop", "sequential"]


class Target:
    """One path to measure: where it listens, the route, extra headers, the body's model name."""

    def __init__(
        self,
        name: str,
        port: int,
        route: str,
        *,
        headers: dict[str, str] | None = None,
        body: Callable[[bool, int], dict[str, Any]] | None = None,
    ) -> None:
        self.name, self.port, self.route = name, port, route
        self._headers = headers or {}
        self._body = body or _openai_body

    def request(self, stream: bool, tokens: int) -> bytes:
        """The whole request, encoded once per measurement."""
        body = json.dumps(self._body(stream, tokens), separators=(",", ":")).encode()
        head = [
            f"POST {self.route} HTTP/1.1",
            f"host: 127.0.0.1:{self.port}",
            "content-type: application/json",
            f"content-length: {len(body)}",
            *(f"{name}: {value}" for name, value in self._headers.items()),
        ]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _openai_body(stream: bool, tokens: int) -> dict[str, Any]:
    return {
        "model": "mock",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": tokens,
        "stream": stream,
    }


class Connection:
    """One keep-alive connection; :meth:`exchange` sends a request and returns its body."""

    def __init__(
        self, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._port, self._reader, self._writer = port, reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        return cls(port, reader, writer)

    async def exchange(self, request: bytes) -> bytes:
        self._writer.write(request)
        try:
            head = await self._reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                raise
            # The server closed the connection while it was idle (its keep-alive
            # timeout, e.g. while other clients finished the warm-up): as any
            # HTTP client does, send the request again on a new connection.
            self.close()
            self._reader, self._writer = await asyncio.open_connection(
                "127.0.0.1", self._port, limit=1 << 20
            )
            self._writer.write(request)
            head = await self._reader.readuntil(b"\r\n\r\n")
        reader = self._reader
        status = int(head[9:12])
        length, chunked = -1, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        if chunked:
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")  # no trailers are sent
                    break
                parts.append((await reader.readexactly(size + 2))[:-2])
            body = b"".join(parts)
        elif length >= 0:
            body = await reader.readexactly(length)
        else:
            raise RuntimeError("an answer without a length or chunked framing")
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
        return body

    def close(self) -> None:
        self._writer.close()


def _check(body: bytes, stream: bool, tokens: int) -> None:
    """Every answer is complete: the last token is there (streamed: ``[DONE]`` or ``done``)."""
    if f"t{tokens - 1} ".encode() not in body:
        raise RuntimeError(f"answer without its last token: {body[-300:]!r}")
    tail = body[-96:]
    if stream and b"[DONE]" not in tail and b"event: done" not in tail:
        raise RuntimeError(f"stream without its terminator: {body[-300:]!r}")


async def sequential(
    targets: list[Target], counts: dict[str, int], *, block: int = 25, tokens: int = 8
) -> dict[str, list[float]]:
    """Latencies (seconds) of non-streaming requests sent one at a time, per target.

    The targets take turns in blocks of ``block`` requests (each on its own
    keep-alive connection) until each has ``counts[name]``: a burst of load
    from elsewhere on the machine then lands on every path alike, not on
    whichever happened to be measured during it.
    """
    connections = {t.name: await Connection.open(t.port) for t in targets}
    requests = {t.name: t.request(False, tokens) for t in targets}
    samples: dict[str, list[float]] = {t.name: [] for t in targets}
    clock = time.perf_counter
    try:
        for name, connection in connections.items():
            for _ in range(10):  # warm the connection and the path's caches
                _check(await connection.exchange(requests[name]), False, tokens)
        while any(len(samples[n]) < counts[n] for n in samples):
            for name, connection in connections.items():
                request, taken = requests[name], samples[name]
                for _ in range(min(block, counts[name] - len(taken))):
                    start = clock()
                    body = await connection.exchange(request)
                    taken.append(clock() - start)
                    _check(body, False, tokens)
        return samples
    finally:
        for connection in connections.values():
            connection.close()


async def closed_loop(
    target: Target, clients: int, seconds: float, *, stream: bool, tokens: int
) -> tuple[int, float]:
    """``clients`` connections, each sending its next request as the last one ends.

    Every client starts requests until ``seconds`` have passed and finishes the
    one it is in (at least one each), so a slow path still completes whole
    answers. Returns ``(answers completed, seconds until the last one ended)``.
    """
    request = target.request(stream, tokens)
    connections = [await Connection.open(target.port) for _ in range(clients)]
    done = 0

    async def client(connection: Connection, deadline: float) -> None:
        nonlocal done
        while True:
            _check(await connection.exchange(request), stream, tokens)
            done += 1
            if time.perf_counter() >= deadline:
                return

    try:
        # A short warm-up on the same connections, then the measured window.
        warm = time.perf_counter() + min(0.3, seconds / 4)
        await asyncio.gather(*(client(c, warm) for c in connections))
        done = 0
        start = time.perf_counter()
        await asyncio.gather(*(client(c, start + seconds) for c in connections))
        return done, time.perf_counter() - start
    finally:
        for connection in connections:
            connection.close()
