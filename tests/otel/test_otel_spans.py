"""OpenTelemetry: one GenAI span per run and the GenAI client metrics, on both backends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import sipp.otel
from sipp import RunCancelled, SippClient, TransportError

pytestmark = pytest.mark.anyio

CONTENT_KEYS = {"gen_ai.input.messages", "gen_ai.output.messages"}


class Telemetry:
    def __init__(self, capture_content: bool) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.metrics = InMemoryMetricReader()
        sipp.otel.configure(
            tracer_provider=self.tracer_provider,
            meter_provider=MeterProvider(metric_readers=[self.metrics]),
            capture_content=capture_content,
        )

    def only_span(self) -> ReadableSpan:
        spans = self.spans.get_finished_spans()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def points(self) -> dict[str, list[Any]]:
        data = self.metrics.get_metrics_data()
        found: dict[str, list[Any]] = {}
        assert data is not None
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found


@pytest.fixture
def otel() -> Iterator[Telemetry]:
    telemetry = Telemetry(capture_content=False)
    yield telemetry
    sipp.otel.reset()


@pytest.fixture
def otel_content() -> Iterator[Telemetry]:
    telemetry = Telemetry(capture_content=True)
    yield telemetry
    sipp.otel.reset()


SCRIPT = {"kind": "scripted", "reply": "one two three", "embedding": [0.5, 0.5]}


async def test_a_query_span(otel: Telemetry) -> None:
    async with SippClient() as client:
        await client.add("s", SCRIPT)
        await client.query("a prompt", max_tokens=16, temperature=0.5, top_p=0.9, seed=7)
    span = otel.only_span()
    assert span.name == "text_completion"
    assert span.kind is SpanKind.CLIENT
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.operation.name"] == "text_completion"
    assert attributes["gen_ai.provider.name"] == "scripted"
    assert attributes["gen_ai.request.max_tokens"] == 16
    assert attributes["gen_ai.request.temperature"] == 0.5
    assert attributes["gen_ai.request.top_p"] == 0.9
    assert attributes["gen_ai.request.seed"] == 7
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["gen_ai.usage.input_tokens"] == 2
    assert attributes["gen_ai.usage.output_tokens"] == 3
    assert attributes["gen_ai.response.time_to_first_chunk"] >= 0
    assert "error.type" not in attributes
    assert not CONTENT_KEYS & set(attributes)
    assert span.status.status_code is StatusCode.UNSET


async def test_a_streamed_chat_span_and_the_client_metrics(otel: Telemetry) -> None:
    async with SippClient() as client:
        await client.add("s", {**SCRIPT, "first_token_delay": 0.05})
        run = client.chat([{"role": "user", "content": "hi"}], emit_tokens=True)
        async for _ in run.tokens:
            pass
        await run
    span = otel.only_span()
    assert span.name == "chat"
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.response.time_to_first_chunk"] >= 0.05
    points = otel.points()
    (duration,) = points["gen_ai.client.operation.duration"]
    assert duration.count == 1
    assert duration.sum >= 0.05
    assert dict(duration.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "scripted",
    }
    tokens = {p.attributes["gen_ai.token.type"]: p.sum for p in points["gen_ai.client.token.usage"]}
    assert tokens == {"input": 1, "output": 3}
    (first_chunk,) = points["gen_ai.client.operation.time_to_first_chunk"]
    assert first_chunk.count == 1
    assert first_chunk.sum >= 0.05


async def test_an_embed_span(otel: Telemetry) -> None:
    async with SippClient() as client:
        await client.add("s", SCRIPT)
        await client.embed("some words here")
    span = otel.only_span()
    assert span.name == "embeddings"
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.operation.name"] == "embeddings"
    assert attributes["gen_ai.usage.input_tokens"] == 3
    assert "gen_ai.response.finish_reasons" not in attributes


async def test_a_cancelled_run_records_its_reason(otel: Telemetry) -> None:
    async with SippClient() as client:
        await client.add("s", {**SCRIPT, "reply": "w " * 100, "token_delay": 0.01})
        run = client.query("x", emit_tokens=True)
        async for _ in run.tokens:
            run.cancel("user_pressed_stop")
        with pytest.raises(RunCancelled):
            await run
    attributes = dict(otel.only_span().attributes or {})
    assert attributes["sipp.cancel_reason"] == "user_pressed_stop"
    assert attributes["gen_ai.response.finish_reasons"] == ("cancelled",)
    assert "error.type" not in attributes


async def test_a_failed_run_records_the_error(otel: Telemetry) -> None:
    async with SippClient() as client:
        await client.add("s", {**SCRIPT, "fail_at": 1})
        with pytest.raises(TransportError):
            await client.query("x")
    span = otel.only_span()
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == "TransportError"
    assert attributes["gen_ai.response.finish_reasons"] == ("error",)
    assert span.status.status_code is StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]
    (duration,) = otel.points()["gen_ai.client.operation.duration"]
    assert duration.attributes["error.type"] == "TransportError"


async def test_the_run_span_is_a_child_of_the_callers_span(otel: Telemetry) -> None:
    tracer = otel.tracer_provider.get_tracer("test")
    async with SippClient() as client:
        await client.add("s", SCRIPT)
        with tracer.start_as_current_span("caller") as parent:
            await client.query("x")
        await client.query("outside")
    runs = [s for s in otel.spans.get_finished_spans() if s.name == "text_completion"]
    assert len(runs) == 2
    inside, outside = runs
    assert inside.parent is not None
    assert inside.parent.span_id == parent.get_span_context().span_id
    assert outside.parent is None


async def test_content_is_recorded_only_when_enabled(otel_content: Telemetry) -> None:
    async with SippClient() as client:
        await client.add("s", SCRIPT)
        await client.chat(
            [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hello"}]
        )
    attributes = dict(otel_content.only_span().attributes or {})
    assert json.loads(str(attributes["gen_ai.input.messages"])) == [
        {"role": "system", "parts": [{"type": "text", "content": "be nice"}]},
        {"role": "user", "parts": [{"type": "text", "content": "hello"}]},
    ]
    assert json.loads(str(attributes["gen_ai.output.messages"])) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "one two three"}],
            "finish_reason": "stop",
        }
    ]


async def test_disabled_records_nothing(otel: Telemetry) -> None:
    sipp.otel.configure(enabled=False)
    async with SippClient() as client:
        await client.add("s", SCRIPT)
        await client.query("x")
        await anyio.lowlevel.checkpoint()
    assert otel.spans.get_finished_spans() == ()


async def test_a_tool_loop_has_a_span_per_model_call(otel: Telemetry) -> None:
    def weather(city: str) -> str:
        """The weather in a city."""
        return f"rain in {city}"

    async with SippClient() as client:
        await client.add(
            "s",
            {
                "kind": "scripted",
                "turns": [
                    {"tool_calls": [{"name": "weather", "arguments": {"city": "Oslo"}}]},
                    {"reply": "Take an umbrella."},
                ],
            },
        )
        response = await client.run_tools(
            [{"role": "user", "content": "Weather?"}], tools=[weather], endpoint="s"
        )
    assert response.text == "Take an umbrella."
    spans = otel.spans.get_finished_spans()
    assert spans, "the tool loop recorded no span"
    finish_reasons = [
        dict(span.attributes or {}).get("gen_ai.response.finish_reasons") for span in spans
    ]
    names = [span.name for span in spans]
    assert all(name.startswith("chat") for name in names), names
    # The model's two turns: one asked for the tool, one answered.
    assert ("tool_calls",) in finish_reasons and ("stop",) in finish_reasons, finish_reasons
