"""OpenTelemetry for runs: one span per run and the GenAI client metrics.

Follows the GenAI semantic conventions (client spans and metrics). Only
``opentelemetry-api`` is imported; the program brings its own SDK. The span
is started where the run is created, so its parent is whatever span was
current in the caller, and it is made current inside the run's task, so the
HTTP request of every attempt carries its ``traceparent``.

Prompt and completion text are recorded (``gen_ai.input.messages``,
``gen_ai.output.messages``) only when content capture is switched on.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

if TYPE_CHECKING:
    from ._run import RunState

__all__ = ["Observer", "capture_from_env", "detect_global"]

_OPERATION = {"query": "text_completion", "chat": "chat", "embed": "embeddings"}
_PROVIDER_OF_KIND = {"local": "llama_cpp", "gateway": "sipp_gateway"}
_DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                     40.96, 81.92]  # fmt: skip
_TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304]
CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


def capture_from_env() -> bool:
    return os.environ.get(CONTENT_ENV, "").strip().lower() in ("1", "true", "yes")


def _is_real_tracer_provider(provider: object) -> bool:
    return not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def _is_real_meter_provider(provider: object) -> bool:
    # The API's proxy (used until an SDK is set) has no public name; NoOp is public.
    return not isinstance(provider, metrics.NoOpMeterProvider) and (
        type(provider).__name__ != "_ProxyMeterProvider"
    )


def detect_global() -> Observer | None:
    """An observer over the global providers, or ``None`` while neither is a real SDK."""
    tracer_provider = trace.get_tracer_provider()
    meter_provider = metrics.get_meter_provider()
    traces = _is_real_tracer_provider(tracer_provider)
    measures = _is_real_meter_provider(meter_provider)
    if not traces and not measures:
        return None
    return Observer(
        tracer_provider if traces else None,
        meter_provider if measures else None,
        capture_content=capture_from_env(),
    )


def _version() -> str:
    from . import __version__

    return __version__


class Observer:
    """Tracer, meter and instruments, built once per configuration."""

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None,
        meter_provider: metrics.MeterProvider | None,
        *,
        capture_content: bool,
    ) -> None:
        version = _version()
        self.tracer = tracer_provider.get_tracer("sipp", version) if tracer_provider else None
        self.capture_content = capture_content
        self.duration: metrics.Histogram | None = None
        self.tokens: metrics.Histogram | None = None
        self.first_chunk: metrics.Histogram | None = None
        if meter_provider is not None:
            meter = meter_provider.get_meter("sipp", version)
            self.duration = meter.create_histogram(
                "gen_ai.client.operation.duration",
                unit="s",
                description="GenAI operation duration",
                explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
            )
            self.tokens = meter.create_histogram(
                "gen_ai.client.token.usage",
                unit="{token}",
                description="Number of input and output tokens used",
                explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
            )
            self.first_chunk = meter.create_histogram(
                "gen_ai.client.operation.time_to_first_chunk",
                unit="s",
                description="Time to receive the first chunk of a streamed response",
                explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
            )

    def start(self, state: RunState) -> _RunTelemetry:
        return _RunTelemetry(self, state)

    def inject(self, headers: MutableMapping[str, str]) -> None:
        if self.tracer is not None:
            propagate.inject(headers)


def _describe(state: RunState) -> tuple[str, str, str | None]:
    """(operation, provider, model) in the conventions' terms."""
    descriptor: Any = state.endpoint.descriptor
    kind = state.endpoint.info.kind
    provider = getattr(descriptor, "provider", None) or _PROVIDER_OF_KIND.get(kind, kind)
    model = getattr(descriptor, "model", None) or getattr(descriptor, "target", None)
    if model is None and isinstance(getattr(descriptor, "source", None), str):
        model = os.path.basename(descriptor.source)
    return _OPERATION[state.operation], str(provider), model


class _RunTelemetry:
    __slots__ = ("_attributes", "_observer", "_span", "_started")

    def __init__(self, observer: Observer, state: RunState) -> None:
        self._observer = observer
        self._started = time.perf_counter()
        operation, provider, model = _describe(state)
        base: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": provider,
        }
        if model:
            base["gen_ai.request.model"] = model
        self._attributes = base  # also the metrics' attributes: low cardinality only
        self._span: trace.Span | None = None
        if observer.tracer is None:
            return
        attributes = {**base, "sipp.endpoint.name": state.endpoint.info.name,
                      "sipp.request_id": state.id}  # fmt: skip
        request: Any = state.request
        for name, key in (
            ("max_tokens", "gen_ai.request.max_tokens"),
            ("temperature", "gen_ai.request.temperature"),
            ("top_p", "gen_ai.request.top_p"),
            ("seed", "gen_ai.request.seed"),
            ("stop", "gen_ai.request.stop_sequences"),
        ):
            value = getattr(request, name, None)
            if value is not None:
                attributes[key] = value
        if state.operation != "embed":
            attributes["sipp.request.stream"] = state.stream
        if observer.capture_content:
            attributes["gen_ai.input.messages"] = _input_messages(state)
        self._span = observer.tracer.start_span(
            f"{operation} {model}" if model else operation,
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )

    def enter(self) -> object:
        if self._span is None:
            return None
        return otel_context.attach(trace.set_span_in_context(self._span))

    def finish(self, state: RunState, entered: object) -> None:
        if entered is not None:
            otel_context.detach(entered)  # type: ignore[arg-type]
        observer = self._observer
        duration = time.perf_counter() - self._started
        response: Any = state.response
        error = state.error if state.status == "failed" else None
        # The core's own clock of the first emitted token (perf_counter), read at the end.
        first_token: float | None = state._first_token_at
        ttft = None if first_token is None else first_token - self._started
        usage = getattr(response, "usage", None) or getattr(
            getattr(error, "partial", None), "usage", None
        )
        metric_attributes = self._attributes
        if error is not None:
            metric_attributes = {**metric_attributes, "error.type": type(error).__name__}
        if observer.duration is not None:
            observer.duration.record(duration, metric_attributes)
        if usage is not None and observer.tokens is not None:
            for kind, count in (("input", usage.input_tokens), ("output", usage.output_tokens)):
                if count is not None:
                    observer.tokens.record(count, {**metric_attributes, "gen_ai.token.type": kind})
        if ttft is not None and state.stream and observer.first_chunk is not None:
            observer.first_chunk.record(ttft, metric_attributes)
        span = self._span
        if span is None:
            return
        self._end_span(span, state, response, error, usage, ttft)

    def _end_span(
        self,
        span: trace.Span,
        state: RunState,
        response: Any,
        error: BaseException | None,
        usage: Any,
        ttft: float | None,
    ) -> None:
        finish_reason = getattr(response, "finish_reason", None)
        if state.status == "cancelled":
            finish_reason = "cancelled"
            span.set_attribute("sipp.cancel_reason", state.cancel_reason or "")
        elif error is not None:
            finish_reason = "error"
        if finish_reason is not None and state.operation != "embed":
            span.set_attribute("gen_ai.response.finish_reasons", [finish_reason])
        response_id = getattr(response, "id", None)
        if response_id:
            span.set_attribute("gen_ai.response.id", response_id)
        if usage is not None:
            if usage.input_tokens is not None:
                span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
            if usage.output_tokens is not None:
                span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
        if ttft is not None:
            span.set_attribute("gen_ai.response.time_to_first_chunk", ttft)
        if self._observer.capture_content and state.operation != "embed":
            text = getattr(response, "text", None)
            if text is None:
                text = getattr(getattr(error, "partial", None), "text", None)
            if text is not None:
                span.set_attribute(
                    "gen_ai.output.messages", _output_messages(text, finish_reason or "stop")
                )
        if error is not None:
            span.set_attribute("error.type", type(error).__name__)
            kind = getattr(error, "kind", None)
            if isinstance(kind, str):
                span.set_attribute("sipp.error.kind", kind)
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, str(error)))
        span.end()


def _text_part(content: object) -> dict[str, Any]:
    if isinstance(content, str):
        return {"type": "text", "content": content}
    # Richer message content (parts, tool calls) as plain JSON-ready data.
    import msgspec

    return {"type": "structured", "content": msgspec.to_builtins(content)}


def _input_messages(state: RunState) -> str:
    request: Any = state.request
    if state.operation == "chat":
        messages = [
            {"role": message.role, "parts": [_text_part(message.content)]}
            for message in request.messages
        ]
    elif state.operation == "query":
        messages = [{"role": "user", "parts": [_text_part(request.prompt)]}]
    else:
        messages = [{"role": "user", "parts": [_text_part(request.input)]}]
    return json.dumps(messages, ensure_ascii=False)


def _output_messages(text: str, finish_reason: str) -> str:
    message = {"role": "assistant", "parts": [_text_part(text)], "finish_reason": finish_reason}
    return json.dumps([message], ensure_ascii=False)
