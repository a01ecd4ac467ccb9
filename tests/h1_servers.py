"""Loopback servers for the lean transport's tests: a raw socket server and hypercorn.

``RawServer`` answers each request with bytes a test chooses (odd framings,
broken responses, closes at chosen moments) from plain threads, so it
behaves the same whichever backend the test client runs on. It counts the
connections it accepted, which is how the tests see keep-alive reuse.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

#: What a RawServer does with one request: the bytes to send (``None``: close
#: without answering) and whether to close after them.
Respond = Callable[[bytes, int], "tuple[bytes | None, bool]"]


def read_request(conn: socket.socket, buffer: bytearray) -> bytes | None:
    """One request (head and ``Content-Length`` or chunked body) off ``conn``."""
    while b"\r\n\r\n" not in buffer:
        data = conn.recv(65536)
        if not data:
            return None
        buffer += data
    end = buffer.index(b"\r\n\r\n") + 4
    head = bytes(buffer[:end])
    del buffer[:end]
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
        elif name.strip().lower() == b"transfer-encoding":
            chunked = True
    if chunked:
        while b"0\r\n\r\n" not in buffer:
            data = conn.recv(65536)
            if not data:
                return None
            buffer += data
        end = buffer.index(b"0\r\n\r\n") + 5
        body = bytes(buffer[:end])
        del buffer[:end]
        return head + body
    while len(buffer) < length:
        data = conn.recv(65536)
        if not data:
            return None
        buffer += data
    body = bytes(buffer[:length])
    del buffer[:length]
    return head + body


class RawServer:
    """``with RawServer(respond) as server:`` listens at ``server.url``."""

    def __init__(self, respond: Respond, *, tls: ssl.SSLContext | None = None) -> None:
        self._respond = respond
        self._tls = tls
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(1024)
        self.port: int = self._listener.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.connections = 0
        self.requests: list[bytes] = []
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):  # shutdown wakes the thread blocked in accept()
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for conn in self._open:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
        self._thread.join(5)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self._tls is not None:
                conn = self._tls.wrap_socket(conn, server_side=True)
            buffer = bytearray()
            index = 0
            while True:
                request = read_request(conn, buffer)
                if request is None:
                    return
                self.requests.append(request)
                answer, close = self._respond(request, index)
                index += 1
                if answer is None:
                    return
                conn.sendall(answer)
                if close:
                    return
        except (OSError, ssl.SSLError):
            return
        finally:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()


def always(answer: bytes, *, close: bool = False) -> Respond:
    """Answer every request with ``answer``."""
    return lambda request, index: (answer, close)


class HypercornServer:
    """``with HypercornServer(app) as server:`` serves an ASGI app with hypercorn (h11)."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"fd://{self._sock.fileno()}"]
        config.loglevel = "ERROR"

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._started.set()
            await serve(self._app, config, shutdown_trigger=self._stop.wait)  # type: ignore[arg-type]

        asyncio.run(main())

    def __enter__(self) -> HypercornServer:
        self._thread.start()
        self._started.wait(10)
        for _ in range(200):  # until it answers
            try:
                socket.create_connection(self._sock.getsockname(), timeout=1).close()
                break
            except OSError:
                threading.Event().wait(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)
        with contextlib.suppress(OSError):  # hypercorn closed the descriptor it was given
            self._sock.close()
