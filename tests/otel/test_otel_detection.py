"""Zero cost without OpenTelemetry, and the global SDK found without any call to Sipp."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


RUN = """
import anyio, sys
from sipp import SippClient

async def main():
    async with SippClient() as client:
        await client.add("s", {"kind": "scripted", "reply": "a b"})
        run = client.query("x")
        print("telemetry", run._state.telemetry)
        await run

anyio.run(main)
"""


def test_without_opentelemetry_imported_nothing_is_loaded_or_built() -> None:
    out = _python(RUN + "print('otel loaded', 'opentelemetry' in sys.modules)")
    assert out.splitlines() == ["telemetry None", "otel loaded False"]


def test_with_the_api_imported_but_no_sdk_nothing_is_built() -> None:
    out = _python("import opentelemetry.trace, opentelemetry.metrics\n" + RUN)
    assert out == "telemetry None"


def test_a_global_sdk_is_found_without_configuring_sipp() -> None:
    out = _python(
        textwrap.dedent(
            """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        """
        )
        + RUN
        + "print([s.name for s in exporter.get_finished_spans()])"
    )
    lines = out.splitlines()
    assert lines[0].startswith("telemetry <sipp._otel._RunTelemetry")
    assert lines[1] == "['text_completion']"


def test_the_blocking_client_records_spans_too() -> None:
    out = _python(
        """
        import sipp.otel
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from sipp import SyncClient
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        sipp.otel.configure(tracer_provider=provider)
        tracer = provider.get_tracer("app")
        with SyncClient() as client, tracer.start_as_current_span("script") as parent:
            client.add("s", {"kind": "scripted"})
            client.query("hello").response()
        run = next(s for s in exporter.get_finished_spans() if s.name == "text_completion")
        print(run.parent.span_id == parent.get_span_context().span_id)
        """
    )
    assert out == "True"


def test_an_sdk_set_up_after_the_first_run_is_seen_within_a_second() -> None:
    out = _python(
        """
        import time
        import anyio
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from sipp import SippClient

        async def main():
            async with SippClient() as client:
                await client.add("s", {"kind": "scripted"})
                await client.query("before")
                exporter = InMemorySpanExporter()
                provider = TracerProvider()
                provider.add_span_processor(SimpleSpanProcessor(exporter))
                trace.set_tracer_provider(provider)
                await anyio.sleep(1.1)
                await client.query("after")
                print(len(exporter.get_finished_spans()))

        anyio.run(main)
        """
    )
    assert out == "1"
