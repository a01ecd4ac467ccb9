"""OpenTelemetry for Sipp runs (the ``sipp[otel]`` extra: ``opentelemetry-api`` only).

Nothing to call in the common case: once the program sets up an
OpenTelemetry SDK (global tracer and/or meter provider), every run gets a
GenAI client span and the GenAI client metrics, and HTTP drivers send the
W3C ``traceparent`` of the run's span upstream. Without an SDK, or without
``opentelemetry`` imported at all, Sipp does no telemetry work whatsoever.

What a run records (GenAI semantic conventions):

* span ``{operation} {model}`` (kind CLIENT), operation ``chat``,
  ``text_completion`` or ``embeddings``: ``gen_ai.operation.name``,
  ``gen_ai.provider.name``, ``gen_ai.request.model``, ``gen_ai.request.*``
  (max_tokens, temperature, top_p, seed, stop_sequences),
  ``gen_ai.response.finish_reasons``, ``gen_ai.response.id``,
  ``gen_ai.usage.input_tokens`` / ``output_tokens``,
  ``gen_ai.response.time_to_first_chunk``, ``error.type`` on failure,
  ``sipp.cancel_reason`` after a cancel;
* metrics ``gen_ai.client.operation.duration``, ``gen_ai.client.token.usage``
  and (streamed runs) ``gen_ai.client.operation.time_to_first_chunk``.

Prompt and completion text (``gen_ai.input.messages``,
``gen_ai.output.messages``) are recorded only when enabled, by
``configure(capture_content=True)`` or the environment variable
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _telemetry

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["configure", "reset"]


def configure(
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    capture_content: bool | None = None,
    enabled: bool = True,
) -> None:
    """Choose the providers (default: the global ones) and whether content is recorded.

    ``enabled=False`` switches Sipp's telemetry off even with an SDK set up.
    ``capture_content=None`` follows ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``.
    Affects runs started afterwards.
    """
    if not enabled:
        _telemetry.configure(None, explicit=True)
        return
    from opentelemetry import metrics, trace

    from ._otel import Observer, capture_from_env

    observer = Observer(
        tracer_provider or trace.get_tracer_provider(),
        meter_provider or metrics.get_meter_provider(),
        capture_content=capture_from_env() if capture_content is None else capture_content,
    )
    _telemetry.configure(observer, explicit=True)


def reset() -> None:
    """Forget ``configure``: back to detecting the global SDK by itself."""
    _telemetry.configure(None, explicit=False)
