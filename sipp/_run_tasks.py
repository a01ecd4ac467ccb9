"""Where runs execute: one task per run, as cheap as the event loop allows.

On asyncio a run gets a native task (``loop.create_task``). anyio's
``start_soon`` costs about 3.8 KB per task there (a ``TaskHandle`` with its
own cancel scope and ``Event``, task-state bookkeeping, a wrapper coroutine)
against about 1.1 KB for the task alone, and a gateway holds one run per
open stream. Nothing is lost by it: a run catches its own failures, is
cancelled through its own cancel scope (``RunState.cancel``), and anyio's
cancel scopes work in native tasks. What the task group gave on top is
waiting for the tasks at close, which :meth:`RunTasks.wait_closed` does.

Elsewhere (trio) runs go to the client's task group, where a task is cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    import anyio.abc

__all__ = ["RunTasks", "running_asyncio_loop"]

RunBody = Callable[[], Coroutine[Any, Any, None]]


class RunTasks:
    """Starts run coroutines; the client's task group stays the owner of everything else."""

    __slots__ = ("_group", "_loop", "_tasks")

    def __init__(self, group: anyio.abc.TaskGroup) -> None:
        self._group = group
        self._loop = running_asyncio_loop()
        #: The native tasks still running: the loop itself keeps only weak references.
        self._tasks: set[Any] = set()

    def start(self, coroutine: RunBody, done: Callable[[], None], name: str) -> None:
        """Run ``coroutine()`` in a task of its own; ``done()`` once it has ended, however."""
        loop = self._loop
        if loop is None:
            self._group.start_soon(_then, coroutine, done, name=name)
            return
        task = loop.create_task(coroutine(), name=name)
        self._tasks.add(task)
        task.add_done_callback(_Finished(self._tasks, done))

    async def wait_closed(self) -> None:
        """Wait until every native task has ended (the caller cancelled their runs first)."""
        if not self._tasks:
            return
        import asyncio

        # Shielded, as a task group's exit is: the runs were cancelled and end
        # promptly; leaving them running would outlive the client.
        with anyio.CancelScope(shield=True):
            while self._tasks:
                await asyncio.wait(list(self._tasks))


def running_asyncio_loop() -> Any:
    """The running asyncio loop, or None on another backend (call on the loop)."""
    import asyncio  # here, not at import: ``import sipp`` stays light

    import anyio.lowlevel

    # asyncio's token is its running loop; trio's is a TrioToken.
    native = anyio.lowlevel.current_token().native_token
    return native if isinstance(native, asyncio.AbstractEventLoop) else None


class _Finished:
    """A task's done callback: forget it, then tell the client (a callable, no closure cell)."""

    __slots__ = ("_done", "_tasks")

    def __init__(self, tasks: set[Any], done: Callable[[], None]) -> None:
        self._tasks = tasks
        self._done = done

    def __call__(self, task: Any) -> None:
        self._tasks.discard(task)
        self._done()
        if not task.cancelled():
            # A run catches its own failures; anything that escapes is a bug and
            # must not vanish unseen: raised here, the loop's exception handler
            # reports it. (KeyboardInterrupt and SystemExit already left the loop.)
            error = task.exception()
            if isinstance(error, Exception):
                raise error


async def _then(coroutine: RunBody, done: Callable[[], None]) -> None:
    try:
        await coroutine()
    finally:
        done()
