"""hypercorn on trio with the public listener's connection cap.

``hypercorn.trio.serve`` owns its accept loop and offers no connection cap,
so this is that loop with one addition: a connection past the
:class:`._guard.ConnectionGuard`'s cap is closed at once instead of handed to
hypercorn's per-connection server. Everything else is hypercorn's own
(``TCPServer``, its worker context and graceful shutdown): the loop mirrors
``hypercorn.trio.run.worker_serve`` for one plain-TCP socket, without the
ASGI lifespan (the gateway runs its own lifecycle, as with uvicorn).
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from ._guard import ConnectionGuard

__all__ = ["serve_hypercorn"]


async def serve_hypercorn(
    app: Any,
    config: Any,
    sock: socket.socket,
    guard: ConnectionGuard,
    shutdown_trigger: Callable[[], Awaitable[object]],
) -> None:
    """Serve ``app`` on ``sock`` until ``shutdown_trigger`` returns, then shut down gracefully."""
    import trio
    from hypercorn.trio.tcp_server import TCPServer
    from hypercorn.trio.worker_context import WorkerContext
    from hypercorn.typing import ConnectionState
    from hypercorn.utils import wrap_app

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
