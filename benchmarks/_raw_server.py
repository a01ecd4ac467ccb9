"""A raw asyncio HTTP/1.1 server for the benchmarks' mock upstreams.

It reads each request on a keep-alive connection (head, then a body of
``Content-Length`` bytes) and hands the path and body to a responder that
writes the whole answer; it parses nothing else, so the mock costs the
clients under test as little CPU as it can.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable

#: ``respond(path, body, writer)`` writes one answer (the server drains after it).
Respond = Callable[[bytes, bytes, asyncio.StreamWriter], Awaitable[None]]


async def _connection(
    respond: Respond, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length) if length else b""
            await respond(head.split(b" ", 2)[1], body, writer)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def serve(respond: Respond, port: int, *, backlog: int = 1024) -> None:
    """Serve on ``127.0.0.1:port`` until the process is stopped (run it in a child process)."""

    async def main() -> None:
        server = await asyncio.start_server(
            functools.partial(_connection, respond), "127.0.0.1", port, backlog=backlog
        )
        async with server:
            await server.serve_forever()

    asyncio.run(main())
