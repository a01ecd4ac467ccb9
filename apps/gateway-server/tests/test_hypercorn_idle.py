"""hypercorn's idle timer closes a connection only while it waits for a request (``_serve_trio``).

The timer is hypercorn's keep-alive timeout and the gateway's header
deadline at once; a stale one used to close connections in the middle of a
request under load. Here the real timer method runs against a real h11
connection in each state, with a short timeout.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import h11
import pytest
import trio
from sipp_gateway_server._serve_trio import _guarded_tcp_server, _idle

TIMEOUT = 0.05


class _Terminated:
    def __init__(self) -> None:
        self.event = trio.Event()

    async def wait(self) -> None:
        await self.event.wait()

    def is_set(self) -> bool:
        return self.event.is_set()


def _server(connection: h11.Connection | None) -> Any:
    """The parts of hypercorn's TCPServer the timer reads, around a real h11 connection."""
    closes: list[float] = []
    closed = trio.Event()
    server: Any = SimpleNamespace(
        config=SimpleNamespace(keep_alive_timeout=TIMEOUT),
        context=SimpleNamespace(terminated=_Terminated()),
        protocol=SimpleNamespace(protocol=SimpleNamespace(connection=connection)),
        closes=closes,
        closed=closed,
    )

    async def close() -> None:
        closes.append(trio.current_time())
        closed.set()

    server._initiate_server_close = close
    return server


def _busy() -> h11.Connection:
    """A server-side connection whose request's headers are in and whose body is not."""
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(b"POST /v1/query HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n")
    assert isinstance(connection.next_event(), h11.Request)
    return connection


def test_idle_reads_the_h11_states() -> None:
    assert _idle(_server(h11.Connection(h11.SERVER)))
    assert not _idle(_server(_busy()))
    # Unknown (HTTP/2, or no protocol yet): hypercorn's own rule, close.
    assert _idle(_server(None))
    # The peer left in the middle of a request: nothing to wait for.
    gone = _busy()
    gone.receive_data(b"")
    with pytest.raises(h11.RemoteProtocolError):
        gone.next_event()
    assert gone.their_state is h11.ERROR
    assert _idle(_server(gone))


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_an_idle_connection_is_closed_after_the_timeout(anyio_backend: str) -> None:
    server = _server(h11.Connection(h11.SERVER))
    started = trio.current_time()
    with trio.fail_after(5):
        await _guarded_tcp_server()._idle_timeout(server)
    assert len(server.closes) == 1
    assert server.closes[0] - started >= TIMEOUT * 0.9


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_a_busy_connection_outlives_a_stale_timer_and_closes_once_idle(
    anyio_backend: str,
) -> None:
    connection = _busy()
    server = _server(connection)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_guarded_tcp_server()._idle_timeout, server)
        await trio.sleep(TIMEOUT * 6)  # several timeouts, mid-request
        assert server.closes == []
        # The request ends and the connection is recycled: now it waits, so it goes.
        connection.receive_data(b"0123456789")
        assert isinstance(connection.next_event(), h11.Data)
        assert isinstance(connection.next_event(), h11.EndOfMessage)
        connection.send(h11.Response(status_code=200, headers=[("content-length", "0")]))
        connection.send(h11.EndOfMessage())
        connection.start_next_cycle()
        with trio.fail_after(5):
            await server.closed.wait()
    assert len(server.closes) == 1


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_shutdown_leaves_a_busy_connection_to_finish(anyio_backend: str) -> None:
    server = _server(_busy())
    server.context.terminated.event.set()
    with trio.fail_after(5):
        await _guarded_tcp_server()._idle_timeout(server)
    assert server.closes == []  # hypercorn closes it once its response ends
