"""The OpenAI driver sends the run span's W3C trace context upstream; one trace end to end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openai_mock import MockState, ServerThread
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import sipp.otel
from sipp import SippClient

pytestmark = pytest.mark.anyio


@pytest.fixture
def provider() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    sipp.otel.configure(tracer_provider=provider)
    yield provider, exporter
    sipp.otel.reset()


async def test_traceparent_reaches_the_upstream_under_the_callers_trace(
    mock_server: ServerThread,
    mock_state: MockState,
    provider: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    tracer_provider, exporter = provider
    tracer = tracer_provider.get_tracer("app")
    async with SippClient() as client:
        await client.add(
            "m",
            {
                "kind": "provider",
                "provider": "openai_compatible",
                "model": "tokens=3",
                "base_url": mock_server.base_url,
                "retries": 0,
            },
        )
        with tracer.start_as_current_span("handle request") as parent:
            run = client.chat([{"role": "user", "content": "hi"}], emit_tokens=True)
            async for _ in run.tokens:
                pass
            await run
    span = next(s for s in exporter.get_finished_spans() if s.name == "chat tokens=3")
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.provider.name"] == "openai_compatible"
    assert attributes["gen_ai.request.model"] == "tokens=3"
    assert attributes["gen_ai.usage.output_tokens"] == 3
    context = span.get_span_context()
    assert context.trace_id == parent.get_span_context().trace_id
    request = next(r for r in mock_state.requests if r["headers"].get("x-request-id") == run.id)
    assert request["headers"]["traceparent"] == (
        f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    )
