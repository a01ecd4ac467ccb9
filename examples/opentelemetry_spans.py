"""OpenTelemetry: a GenAI span per run, under the caller's span, and the client metrics.

Sipp uses the SDK the program sets up; nothing to call on Sipp's side. Here
the SDK keeps spans and metrics in memory so the example can print them; in
production you would add an OTLP exporter instead. Needs ``sipp[otel]`` and
``opentelemetry-sdk``.
"""

from __future__ import annotations

import anyio
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sipp import SippClient

spans = InMemorySpanExporter()
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
trace.set_tracer_provider(tracer_provider)
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))


async def main() -> None:
    tracer = trace.get_tracer("example")
    async with SippClient() as client:
        await client.add("bot", {"kind": "scripted", "reply": "Traced answer."})
        with tracer.start_as_current_span("handle user request"):
            await client.chat([{"role": "user", "content": "Hi"}], max_tokens=16)


anyio.run(main)

for span in spans.get_finished_spans():
    parent = "under its caller" if span.parent else "root"
    print(span.name, f"({parent})")
    for key, value in sorted((span.attributes or {}).items()):
        if key.startswith("gen_ai.") and "time_to_first" not in key:
            print(f"  {key} = {value}")
data = reader.get_metrics_data()
assert data is not None
names = sorted(m.name for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics)
print("metrics:", ", ".join(names))
