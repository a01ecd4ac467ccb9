"""Cost of the OpenTelemetry hooks when nobody configured an SDK.

What it measures: CPU time per streamed token in the client process, through
``SippClient`` and the ``openai_compatible`` driver, from the mock OpenAI
server of ``bench_provider.py`` (its own process, sending as fast as it can).
Each sample is a fresh interpreter in one of three states:

* ``without``: ``opentelemetry`` cannot be imported (as if not installed);
* ``api, no SDK``: the program imported ``opentelemetry.trace`` and
  ``.metrics`` but set no provider (the extra installed, nothing configured);
* ``SDK``: a real tracer and meter provider with no-op exporters (what
  telemetry costs when it is on; for information, no target).

States alternate round by round so machine drift hits them alike. Each
worker also times the two hooks themselves (``start_run`` and
``inject_headers`` when they find nothing to do), the whole per-run price
of telemetry that is not configured. Target
(quality bar of issue 14): ``api, no SDK`` ≤ 1.02× ``without``.
Writes ``benchmarks/results/otel.json``. Run: ``python benchmarks/bench_otel.py``.
"""

from __future__ import annotations

import json
import multiprocessing
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _report import summary, write

ROUNDS = 9
STREAMS = 6
TOKENS = 2000
STATES = ("without", "api, no SDK", "SDK")

WORKER = r"""
import sys, time
state, base_url, streams, tokens = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if state == "without":
    class _Missing:
        def find_spec(self, name, path=None, target=None):
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ImportError("opentelemetry is not installed (benchmark)")
            return None
    sys.meta_path.insert(0, _Missing())
elif state == "api, no SDK":
    import opentelemetry.metrics, opentelemetry.trace  # noqa: F401
else:
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    class _Drop(SpanExporter):
        def export(self, spans):
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_Drop()))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))

import anyio
from sipp import SippClient

async def main():
    async with SippClient() as client:
        await client.add("bench", {"kind": "provider", "provider": "openai_compatible",
                                   "model": "bench", "base_url": base_url,
                                   "api_key": "sk-bench-000000000000", "retries": 0})
        messages = [{"role": "user", "content": "hi"}]

        async def one():
            run = client.chat(messages, max_tokens=tokens, emit_tokens=True)
            count = 0
            async for batch in run.tokens:
                count += batch.frame_count
            await run
            return count

        await one()  # warm up: connection, imports, caches
        start = time.process_time()
        total = 0
        for _ in range(streams):
            total += await one()
        per_token = (time.process_time() - start) / total
    hook = float("nan")
    if state != "SDK":  # the hooks' own cost per run when they find nothing to do
        import sipp._telemetry as hooks
        headers = {}
        start = time.perf_counter()
        for _ in range(100_000):
            hooks.start_run(None)
            hooks.inject_headers(headers)
        hook = (time.perf_counter() - start) / 100_000
    print(per_token, hook)

anyio.run(main)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _sample(state: str, base_url: str) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-c", WORKER, state, base_url, str(STREAMS), str(TOKENS)],
        capture_output=True,
        text=True,
        check=True,
    )
    per_token, hook = out.stdout.strip().splitlines()[-1].split()
    return float(per_token), float(hook)


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_provider import _serve

    port = _free_port()
    server = multiprocessing.Process(target=_serve, args=(port,), daemon=True)
    server.start()
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    samples: dict[str, list[float]] = {state: [] for state in STATES}
    hooks: dict[str, list[float]] = {state: [] for state in STATES}
    ratios: dict[str, list[float]] = {state: [] for state in STATES}
    try:
        for _ in range(ROUNDS):
            round_values = {}
            for state in STATES:
                round_values[state], hook = _sample(state, base_url)
                hooks[state].append(hook)
            for state, value in round_values.items():
                samples[state].append(value)
                ratios[state].append(value / round_values["without"])
    finally:
        server.terminate()
    rows = []
    for state in STATES:
        cpu = summary(samples[state])
        rows.append(
            {
                "state": state,
                "cpu µs/token (median)": cpu["median"] * 1e6,
                "spread µs": f"{cpu['min'] * 1e6:.3f}..{cpu['max'] * 1e6:.3f}",
                "× without (median of per-round ratios)": statistics.median(ratios[state]),
                "hooks ns/run (nothing to do)": statistics.median(hooks[state]) * 1e9,
            }
        )
    # The same question answered without the noise of whole streams: what the hooks
    # add per run, spread over the run's tokens, relative to the CPU of one token.
    added = statistics.median(hooks["api, no SDK"]) - statistics.median(hooks["without"])
    direct = 1 + added / TOKENS / statistics.median(samples["without"])
    print(f"hooks, api imported vs missing: {added * 1e9:+.0f} ns/run = {direct:.6f}x per token")
    write(
        "otel",
        rows,
        {
            "direct_ratio_from_hook_timing": direct,
            "rounds": ROUNDS,
            "streams": STREAMS,
            "tokens": TOKENS,
            "target": "api, no SDK <= 1.02x without",
            "samples": json.loads(json.dumps(samples)),
        },
    )


if __name__ == "__main__":
    main()
