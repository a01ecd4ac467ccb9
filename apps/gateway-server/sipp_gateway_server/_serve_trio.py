"""hypercorn on trio with the public listener's connection cap.

``hypercorn.trio.serve`` owns its accept loop and offers no connection cap,
so this is that loop with one addition: a connection past the
:class:`._guard.ConnectionGuard`'s cap is closed at once instead of handed to
hypercorn's per-connection server. Everything else is hypercorn's own
(``TCPServer``, its worker context and graceful shutdown): the loop mirrors
``hypercorn.trio.run.worker_serve`` for one plain-TCP socket, without the
ASGI lifespan (the gateway runs its own lifecycle, as with uvicorn).

One fix on top: hypercorn's idle timer (its keep-alive timeout, which is also
the gateway's header deadline there) is stopped when a request's headers
arrive and restarted when its response ends, and under load a timer can
outlive the stop and close a connection in the middle of a request (the
client sees the connection drop before any response: about one stream in
15,000 in ``bench_gateway_load``, and a dozen a minute with hypercorn slowed
down; none with the timer at 60 s). So when the timer fires, the connection
is closed only if no request is in progress (it waits for a request's
headers, or the peer already left); a busy connection's timer starts over.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import h11

from ._guard import ConnectionGuard

__all__ = ["serve_hypercorn"]

# h11 comes with both servers (uvicorn's h11 fallback, hypercorn's HTTP/1.1).
_ENDED = frozenset({h11.CLOSED, h11.MUST_CLOSE, h11.ERROR})
_IN_REQUEST = frozenset({h11.SEND_BODY, h11.DONE, h11.SEND_RESPONSE})


async def serve_hypercorn(
    app: Any,
    config: Any,
    sock: socket.socket,
    guard: ConnectionGuard,
    shutdown_trigger: Callable[[], Awaitable[object]],
) -> None:
    """Serve ``app`` on ``sock`` until ``shutdown_trigger`` returns, then shut down gracefully."""
    import trio
    from hypercorn.trio.worker_context import WorkerContext
    from hypercorn.typing import ConnectionState
    from hypercorn.utils import wrap_app

    TCPServer = _guarded_tcp_server()

    wrapped = wrap_app(app, config.wsgi_max_body_size, "asgi")
    context = WorkerContext(None)
    listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))

    async def handle(stream: trio.SocketStream) -> None:
        if not guard.admit():
            await trio.aclose_forcefully(stream)
            return
        try:
            # hypercorn annotates the stream as SSL only; it serves plain TCP the same way.
            plain: Any = stream
            await TCPServer(wrapped, config, context, ConnectionState({}), plain)
        finally:
            guard.release()

    async with trio.open_nursery() as connections:
        async with trio.open_nursery() as accepting:
            accepting.start_soon(
                partial(trio.serve_listeners, handle, [listener], handler_nursery=connections)
            )
            await shutdown_trigger()
            accepting.cancel_scope.cancel()
        # As hypercorn does: connections finish their request, then close.
        await context.terminated.set()
        connections.cancel_scope.deadline = trio.current_time() + config.graceful_timeout


def _guarded_tcp_server() -> Any:
    """hypercorn's ``TCPServer`` whose idle timer closes only idle connections (module doc)."""
    import trio
    from hypercorn.trio.tcp_server import TCPServer

    class GuardedTCPServer(TCPServer):
        async def _idle_timeout(self) -> None:
            while True:
                with trio.move_on_after(self.config.keep_alive_timeout):
                    await self.context.terminated.wait()
                if _idle(self):
                    break
                if self.context.terminated.is_set():
                    return  # shutting down: hypercorn closes it once the response ends
            with trio.CancelScope(shield=True):
                await self._initiate_server_close()

    return GuardedTCPServer


def _idle(server: Any) -> bool:
    """Whether the timer may close the connection: not in the middle of a request.

    In the middle means the request's headers are in (their side sends its
    body or is done) or the response is on its way (ours is being sent, or done
    and not yet recycled), and neither side has closed. Waiting for headers, a
    closed or broken connection, HTTP/2 or no protocol yet: hypercorn's own rule.
    """
    protocol = getattr(getattr(server, "protocol", None), "protocol", None)
    connection = getattr(protocol, "connection", None)
    if not isinstance(connection, h11.Connection):
        return True
    ours, theirs = connection.our_state, connection.their_state
    if ours in _ENDED or theirs in _ENDED:
        return True
    return ours not in _IN_REQUEST and theirs not in _IN_REQUEST
