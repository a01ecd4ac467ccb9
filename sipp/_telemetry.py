"""The core's telemetry hooks: free unless OpenTelemetry is in use.

The core calls :func:`start_run` once per run and :func:`inject_headers`
once per HTTP attempt; both are a dictionary lookup when nobody uses
OpenTelemetry. The decision, per run:

1. ``sipp.otel.configure(...)`` was called: use what it configured;
2. otherwise, when the program imported ``opentelemetry`` (it must have, to
   configure an SDK) and the global tracer or meter provider is a real one,
   build the observer once and keep it: OpenTelemetry's global providers can
   be set only once, so the answer never changes after that. While they are
   not set, the answer "no" is kept for a second (asking OpenTelemetry costs
   microseconds; a program that sets up its SDK later is seen within a second);
3. otherwise nothing: no import, no span object, no attribute dict.

Everything that imports ``opentelemetry`` lives in ``sipp._otel``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._run import RunState

__all__ = ["RunTelemetry", "configure", "inject_headers", "start_run"]


class RunTelemetry(Protocol):
    """One run's span and measurements; ``enter`` in the run's task, ``finish`` at its end."""

    def enter(self) -> object: ...

    def finish(self, state: RunState, entered: object) -> None: ...


class _Observer(Protocol):
    def start(self, state: RunState) -> RunTelemetry | None: ...

    def inject(self, headers: MutableMapping[str, str]) -> None: ...


#: The active observer, or None. Set by auto-detection (then kept) or by ``configure``.
_observer: _Observer | None = None
#: ``configure`` was called: auto-detection is off, ``_observer`` is authoritative.
_configured = False
#: Until then (monotonic seconds), a "not configured" answer stands without asking again.
_next_check = 0.0
_RECHECK_SECONDS = 1.0


def _detect() -> _Observer | None:
    global _observer, _next_check
    modules = sys.modules
    if "opentelemetry.trace" not in modules and "opentelemetry.metrics" not in modules:
        return None  # nobody set up OpenTelemetry: the common, free case
    now = time.monotonic()
    if now < _next_check:
        return None
    from ._otel import detect_global

    observer = detect_global()
    if observer is None:
        _next_check = now + _RECHECK_SECONDS
    else:
        _observer = observer
    return observer


def start_run(state: RunState) -> RunTelemetry | None:
    """Called by the core as a run starts, in the caller's context (the parent span's)."""
    observer = _observer
    if observer is None:
        if _configured:
            return None
        observer = _detect()
        if observer is None:
            return None
    return observer.start(state)


def inject_headers(headers: MutableMapping[str, str]) -> None:
    """Add the current trace context (W3C ``traceparent``) to an outgoing request's headers.

    HTTP drivers call it (``sipp.http.build_json_post`` does) while a run's
    span is current; without an active observer it does nothing.
    """
    observer = _observer
    if observer is not None:
        observer.inject(headers)


def configure(observer: _Observer | None, *, explicit: bool) -> None:
    global _observer, _configured, _next_check
    _observer = observer
    _configured = explicit
    _next_check = 0.0
