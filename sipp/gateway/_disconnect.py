"""Noticing that the client left while its answer is still being made.

ASGI reports a client that went away only through ``receive()``, so the
portable way to notice it mid-answer is a second task that waits on
``receive`` while the first writes. That task (with its anyio handle, event,
cancel scope and frames) is a few kilobytes and a task switch per request,
which is a large share of what a gateway holds per open stream.

A server can offer a cheaper way: a callable under the ASGI scope extension
:data:`DISCONNECT_EXTENSION` that takes a zero-argument callback, calls it
from the event loop when the connection is lost, and returns a function that
withdraws it. The standalone gateway's uvicorn protocol offers it; on any
other server :func:`run_unless_disconnected` falls back to the watcher task.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import anyio

from ._asgi_types import Receive, Scope

__all__ = ["DISCONNECT_EXTENSION", "run_unless_disconnected", "watch_disconnect"]

#: The scope extension: ``register(callback) -> withdraw``.
DISCONNECT_EXTENSION: Final = "sipp.on_disconnect"

T = TypeVar("T")


async def run_unless_disconnected(
    scope: Scope,
    receive: Receive,
    body: Callable[[], Awaitable[T]],
    on_disconnect: Callable[[], None],
) -> T:
    """Await ``body()``; call ``on_disconnect`` if the client leaves first.

    ``on_disconnect`` must make ``body`` end soon (cancel the run it waits
    on); it is called at most once. Exceptions from ``body`` propagate as
    they are, never in an exception group.
    """
    withdraw = watch_disconnect(scope, on_disconnect)
    if withdraw is not None:
        try:
            return await body()
        finally:
            withdraw()
    return await _with_watcher(receive, body, on_disconnect)


def watch_disconnect(scope: Scope, on_disconnect: Callable[[], None]) -> Callable[[], None] | None:
    """Have the server call ``on_disconnect`` when the client leaves; returns the withdrawal.

    ``None`` when the server does not offer :data:`DISCONNECT_EXTENSION` (then
    only a watcher task, :func:`run_unless_disconnected`, can notice). For
    callers that await their answer themselves: one coroutine frame less per
    open stream than :func:`run_unless_disconnected`.
    """
    extensions = scope.get("extensions") or {}
    register = extensions.get(DISCONNECT_EXTENSION)
    if register is None:
        return None
    withdraw: Callable[[], None] = register(on_disconnect)
    return withdraw


async def _with_watcher(
    receive: Receive, body: Callable[[], Awaitable[T]], on_disconnect: Callable[[], None]
) -> T:
    failure: list[Exception] = []
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    on_disconnect()
                    return

        group.start_soon(watch)
        try:
            result = await body()
        except Exception as error:  # raised below, unwrapped (not in an ExceptionGroup)
            failure.append(error)
        group.cancel_scope.cancel()
    if failure:
        raise failure[0]
    return result
