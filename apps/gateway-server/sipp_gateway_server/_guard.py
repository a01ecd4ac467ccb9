"""Connection hygiene for the public listener: a cap, header deadlines, a quiet log.

A client that opens connections and sends nothing, or sends its headers a
byte at a time, or a body a byte at a time, holds a file descriptor for as
long as the server lets it. uvicorn has no header deadline at all (its
keep-alive timer only starts after a first response), so 1,100 such
connections once exhausted the process's descriptors and made ``/healthz``
(on the other listener, same process) time out. The limits here:

* ``max_connections``: past it a new connection is accepted and closed at
  once (accepting and closing frees the descriptor; leaving it in the
  kernel's backlog would not tell the client anything);
* ``header_timeout``: a connection must complete a request's headers that
  long after it opens, or after its previous response plus
  ``keepalive_timeout``; trickling bytes does not extend it;
* ``body_timeout`` is enforced by the request path around the body read
  (``_handler.py``), so it covers both servers the same way;
* refusals and timeouts are counted and logged at most once per
  :data:`LOG_EVERY` seconds (a flood must not become a flood of log lines:
  the attack run produced 146,000 "Too many open files" lines).

On uvicorn the cap and the header deadline live in :func:`uvicorn_protocol`,
a subclass of uvicorn's httptools protocol (h11's when httptools is not
installed). With httptools it also offers requests the
``sipp.on_disconnect`` scope extension, so noticing a client that left costs
a callback instead of a watcher task per request. On hypercorn its own idle timer
already runs from the moment a connection opens until a request's headers
are complete, so the header deadline is its ``keep_alive_timeout`` (set to
the smaller of the two, see ``_serve.py``), and the cap is the accept loop
of :mod:`._serve_trio`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Final

from sipp.gateway import DISCONNECT_EXTENSION

__all__ = ["LOG_EVERY", "ConnectionGuard", "uvicorn_protocol"]

logger = logging.getLogger("sipp.gateway")

#: Seconds between two log lines about refused or timed-out connections.
LOG_EVERY: Final = 10.0


class ConnectionGuard:
    """The public listener's connection count, its cap, and the rate-limited report."""

    def __init__(self, max_connections: int, *, log_every: float = LOG_EVERY) -> None:
        self.max_connections = max_connections
        self.open = 0
        self.refused = 0
        self.timed_out = 0
        self._log_every = log_every
        self._last_log = -log_every
        self._unlogged: dict[str, int] = {}

    def admit(self) -> bool:
        """Count a new connection; ``False`` (and noted) when the cap is reached."""
        if self.open >= self.max_connections:
            self.refused += 1
            self.note("refused (max_connections reached)")
            return False
        self.open += 1
        return True

    def release(self) -> None:
        self.open -= 1

    def timeout(self, what: str) -> None:
        self.timed_out += 1
        self.note(f"closed: {what}")

    def note(self, event: str) -> None:
        """Count ``event``; log every count since the last line, at most once per period."""
        self._unlogged[event] = self._unlogged.get(event, 0) + 1
        now = time.monotonic()
        if now - self._last_log < self._log_every:
            return
        self._last_log = now
        summary = ", ".join(f"{count} {name}" for name, count in sorted(self._unlogged.items()))
        self._unlogged.clear()
        logger.warning(
            "sipp gateway: public connections %s (%d open, cap %d; at most one line per %gs)",
            summary,
            self.open,
            self.max_connections,
            self._log_every,
        )


def uvicorn_protocol(guard: ConnectionGuard, header_timeout: float, keepalive: float) -> Any:
    """uvicorn's HTTP/1.1 protocol with the cap and the header deadline of ``guard``.

    httptools' parser when it is installed (uvicorn's own pick; the parsing of
    a request and the writing of its answer cost about half of h11's), else h11.
    """
    base: Any
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol as base

    class GuardedProtocol(base):  # type: ignore[misc]
        # Slots, not instance attributes: uvicorn's protocol already has 27, and a
        # 31st would push its __dict__ past CPython's shared-key limit (30) into a
        # table of its own, 1.3 KB more for every open connection.
        __slots__ = ("_admitted", "_armed_for", "_deadline", "_on_lost")

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._admitted = False
            self._deadline: Any = None
            self._armed_for: Any = None
            self._on_lost: Callable[[], None] | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            if not guard.admit():
                transport.close()
                return
            self._admitted = True
            self._arm(header_timeout)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._admitted:
                self._admitted = False
                guard.release()
            if self._deadline is not None:
                self._deadline.cancel()
            super().connection_lost(exc)
            on_lost, self._on_lost = self._on_lost, None
            if on_lost is not None:
                on_lost()

        if hasattr(base, "on_headers_complete"):  # httptools' parser callback

            def on_headers_complete(self) -> None:
                super().on_headers_complete()
                # The headers are in: the deadline would find ``cycle`` changed and do
                # nothing, so drop it now rather than hold a timer per open stream.
                if self._deadline is not None:
                    self._deadline.cancel()
                    self._deadline = None
                # Offered to the app instead of a task per request that waits on
                # ``receive`` for ``http.disconnect`` (see sipp.gateway._disconnect).
                self.scope["extensions"] = {DISCONNECT_EXTENSION: self._register_on_lost}

        def _register_on_lost(self, callback: Callable[[], None]) -> Callable[[], None]:
            self._on_lost = callback
            return self._withdraw_on_lost

        def _withdraw_on_lost(self) -> None:
            self._on_lost = None

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # The next request's headers: uvicorn closes an idle keep-alive
            # connection after ``keepalive``, but any byte cancels that timer.
            self._arm(keepalive + header_timeout)

        def _arm(self, delay: float) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            # ``cycle`` changes when a request's headers are complete (both
            # protocols): if it is still the one seen now when the timer
            # fires, none arrived.
            self._armed_for = self.cycle
            self._deadline = self.loop.call_later(delay, self._headers_late)

        def _headers_late(self) -> None:
            self._deadline = None
            if self.cycle is self._armed_for and not self.transport.is_closing():
                guard.timeout("no complete request headers in time")
                self.transport.close()

    return GuardedProtocol
