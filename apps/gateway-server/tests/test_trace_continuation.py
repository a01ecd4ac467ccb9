"""One trace from the client, through the standalone gateway, to the upstream (sipp[otel])."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from gwtest import TOKEN, Gateway, start_gateway
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import sipp.otel
from sipp import SippClient

pytestmark = pytest.mark.anyio

LAUNCHER = Path(__file__).parent / "otel_gateway.py"
sys.path.insert(0, str(Path(__file__).parents[3] / "drivers" / "openai" / "tests"))
from openai_mock import MockState, ServerThread, make_app  # noqa: E402


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[str, MockState]]:
    state = MockState()
    with ServerThread(make_app(state)) as server:
        yield server.base_url, state


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    sipp.otel.configure(tracer_provider=provider)
    yield exporter
    sipp.otel.reset()


@pytest.fixture
def gateway(backend: str, upstream: tuple[str, MockState]) -> Iterator[Gateway]:
    config = f"""
[[targets]]
name = "upstream"
kind = "provider"
provider = "openai_compatible"
model = "tokens=3"
base_url = "{upstream[0]}"
allow_insecure_http = true

[[tokens]]
caller = "web-app"
token_env = "GW_WEB_TOKEN"
"""
    gateway = start_gateway(config, backend, launcher=LAUNCHER)
    yield gateway
    gateway.stop()


async def test_one_trace_spans_client_gateway_and_upstream(
    gateway: Gateway, upstream: tuple[str, MockState], spans: InMemorySpanExporter
) -> None:
    async with SippClient() as client:
        await client.add(
            "gw",
            {
                "kind": "gateway",
                "target": "upstream",
                "base_url": gateway.url,
                "allow_insecure_http": True,
                "authentication": {"kind": "bearer", "value": TOKEN},
            },
        )
        await client.chat([{"role": "user", "content": "hi"}], endpoint="gw")
    (client_span,) = spans.get_finished_spans()
    context = client_span.get_span_context()
    received = upstream[1].requests[-1]["headers"]["traceparent"]
    version, trace_id, parent_id, _flags = received.split("-")
    # The same trace; the upstream's parent is the gateway's run span, not the client's.
    assert (version, trace_id) == ("00", f"{context.trace_id:032x}")
    assert parent_id != f"{context.span_id:016x}"
