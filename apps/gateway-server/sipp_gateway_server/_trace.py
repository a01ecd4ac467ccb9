"""Continuing a caller's trace: the W3C trace context of a request becomes the runs' parent.

Only when OpenTelemetry is set up in this process (something imported
``opentelemetry.trace``, as an SDK or an auto-instrumentation does): then the
request's ``traceparent``/``tracestate`` are made the current context while
the request is handled, so the run's span (``sipp[otel]``) is a child of the
caller's span and the upstream request carries the same trace on. Otherwise
it costs one dictionary lookup (:func:`tracing`), and OpenTelemetry is never
imported.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

__all__ = ["continued_trace", "tracing"]

_TRACE_HEADERS = (b"traceparent", b"tracestate")


def tracing() -> bool:
    """Whether OpenTelemetry is loaded (else a request skips :func:`continued_trace`:
    entering a generator-based context manager costs more than the lookup)."""
    return "opentelemetry.trace" in sys.modules


@contextmanager
def continued_trace(scope: Mapping[str, Any]) -> Iterator[None]:
    """Within this block, the request's trace context (if any) is the current one."""
    if "opentelemetry.trace" not in sys.modules:
        yield
        return
    carrier = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope.get("headers", ())
        if name in _TRACE_HEADERS
    }
    if not carrier:
        yield
        return
    from opentelemetry import context, propagate

    token = context.attach(propagate.extract(carrier))
    try:
        yield
    finally:
        context.detach(token)
