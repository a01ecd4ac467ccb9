"""A cheap load generator: a burst of N streamed chat completions opened together.

Each stream is one raw ``asyncio.Protocol`` connection (on uvloop when
installed) that writes a pre-encoded request and appends what arrives; the
only per-packet work is a check of the last bytes for the chunked body's
terminator. So 1,000 streams from one Python process cost far less CPU than
the servers they load (an httpx client per stream would be the bottleneck
on 2 cores). After the burst every stream is checked once, in full: status
200, the chunked body decoded, its ``delta.content`` tokens exactly
``t0 t1 ... t{n-1}`` in order, and ``data: [DONE]`` at the end.

While a burst runs, the resident memory of the watched processes is sampled
every :data:`SAMPLE_S` seconds (their peak is the "during" figure), and the
number of streams open at once (first byte received, terminator not yet) is
tracked, so a report can show that the streams really were open together.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

__all__ = ["Burst", "burst", "cpu_seconds", "rss_bytes"]

SAMPLE_S = 0.02
_END = b"\r\n0\r\n\r\n"  # the last chunk of a chunked body (after a chunk's CRLF)
_CONTENT = re.compile(rb'"content":\s*"([^"]*)"')
_TICKS = os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` (``VmRSS``)."""
    with open(f"/proc/{pid}/status", "rb") as status:
        for line in status:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass
class Burst:
    """What one burst saw: completeness, concurrency and the watched processes' peaks."""

    streams: int
    complete: int = 0
    failures: list[str] = field(default_factory=list)
    max_open: int = 0
    seconds: float = 0.0
    #: Peak resident memory of each watched pid during the burst.
    peak_rss: dict[int, int] = field(default_factory=dict)


class _Stream(asyncio.Protocol):
    def __init__(self, request: bytes, tracker: _Tracker) -> None:
        self._request = request
        self._tracker = tracker
        self._parts: list[bytes] = []
        self._tail = b""
        self._transport: asyncio.Transport | None = None
        self.ended: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self._transport = cast(asyncio.Transport, transport)
        self._transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        if not self._parts:
            self._tracker.opened()
        self._parts.append(data)
        self._tail = (self._tail + data)[-len(_END) :]
        if self._tail == _END:
            self._finish()

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish()

    def _finish(self) -> None:
        if self.ended.done():
            return
        if self._parts:
            self._tracker.closed()
        self.ended.set_result(b"".join(self._parts))
        if self._transport is not None:
            self._transport.close()


class _Tracker:
    def __init__(self) -> None:
        self.open = 0
        self.max_open = 0

    def opened(self) -> None:
        self.open += 1
        self.max_open = max(self.max_open, self.open)

    def closed(self) -> None:
        self.open -= 1


def request_bytes(host: str, path: str, model: str, tokens: int) -> bytes:
    """A streamed chat completion, encoded once for the whole burst."""
    body = json.dumps(
        {
            "model": model,
            "messages": [{"role": "user", "content": "go"}],
            "stream": True,
            "max_tokens": tokens,
        }
    ).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer {os.environ.get('GW_WEB_TOKEN', 'none')}\r\n"
        f"connection: close\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def check(answer: bytes, tokens: int) -> str | None:
    """``None`` when ``answer`` is a complete, in-order stream of ``tokens`` tokens."""
    head, _, rest = answer.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        return f"status {head[:40]!r}"
    body, offset = bytearray(), 0
    while True:  # dechunk
        line_end = rest.find(b"\r\n", offset)
        if line_end < 0:
            return "truncated chunked body"
        size = int(rest[offset:line_end].split(b";")[0], 16)
        if size == 0:
            break
        body += rest[line_end + 2 : line_end + 2 + size]
        offset = line_end + 2 + size + 2
    text = b"".join(_CONTENT.findall(body))
    expected = "".join(f"t{i} " for i in range(tokens)).encode()
    if text != expected:
        return f"tokens {text[:60]!r}"
    if not body.rstrip().endswith(b"data: [DONE]"):
        return "no [DONE]"
    return None


async def _sample(pids: Sequence[int], peaks: dict[int, int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        for pid in pids:
            peaks[pid] = max(peaks.get(pid, 0), rss_bytes(pid))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_S)


async def burst(
    port: int,
    *,
    streams: int,
    model: str,
    tokens: int,
    watch: Sequence[int] = (),
    path: str = "/v1/chat/completions",
) -> Burst:
    """Open ``streams`` streams at once to ``127.0.0.1:port``; wait for all; check each."""
    loop = asyncio.get_running_loop()
    request = request_bytes(f"127.0.0.1:{port}", path, model, tokens)
    tracker = _Tracker()
    result = Burst(streams)
    stop = asyncio.Event()
    sampler = asyncio.ensure_future(_sample(watch, result.peak_rss, stop))
    started = time.monotonic()

    async def one() -> bytes:
        try:
            _, protocol = await loop.create_connection(
                lambda: _Stream(request, tracker), "127.0.0.1", port
            )
        except OSError as error:
            return f"connect: {error}".encode()
        return await protocol.ended

    answers = await asyncio.gather(*(one() for _ in range(streams)))
    result.seconds = time.monotonic() - started
    stop.set()
    await sampler
    result.max_open = tracker.max_open
    for answer in answers:
        failure = check(answer, tokens)
        if failure is None:
            result.complete += 1
        else:
            result.failures.append(failure)
    return result
