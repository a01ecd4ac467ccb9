"""The gateway driver sends the run span's W3C trace context to the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_gateway_driver import TEXT, Canned

import sipp.otel
from sipp import SippClient

pytestmark = pytest.mark.anyio


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    sipp.otel.configure(tracer_provider=provider)
    yield exporter
    sipp.otel.reset()


async def test_traceparent_reaches_the_gateway(serve: Any, spans: InMemorySpanExporter) -> None:
    app = Canned(body=TEXT)
    async with serve(app) as url, SippClient() as client:
        await client.add("gw", {"kind": "gateway", "target": "public", "base_url": url})
        await client.query("Hi", endpoint="gw")
    (span,) = spans.get_finished_spans()
    assert span.name == "text_completion public"
    assert dict(span.attributes or {})["gen_ai.provider.name"] == "sipp_gateway"
    context = span.get_span_context()
    (_, headers, _) = app.requests[0]
    assert (
        headers["traceparent"]
        == f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    )


async def test_no_traceparent_without_telemetry(serve: Any) -> None:
    app = Canned(body=TEXT)
    async with serve(app) as url, SippClient() as client:
        await client.add("gw", {"kind": "gateway", "target": "public", "base_url": url})
        await client.query("Hi", endpoint="gw")
    (_, headers, _) = app.requests[0]
    assert "traceparent" not in headers
