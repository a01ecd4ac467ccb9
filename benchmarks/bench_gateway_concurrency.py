"""Per-stream CPU of the gateway at 100 and at 1,000 concurrent streaming clients.

Issue 11, item 7: a stream cost 9 ms of gateway CPU at 100 clients and
26-30 ms at 200-1,000, because each target had one httpx pool of 2,000
connections and httpcore scans its whole pool on every request start and
end. The target here asks for 2,000 connections, as in that run; the
gateway splits them into pools of at most 64 (``_targets.py``).

Each run streams 32-token queries through a uvicorn gateway to the mock
upstream; every stream is checked token by token (order, completeness,
terminal ``done``). After a warm-up (until every client has finished one
stream) it measures, for the run's length, the gateway's CPU time
(``/proc/PID/stat``) per completed stream and samples its resident memory
every 5 s. Passes when no token is lost or
reordered, the process is alive, memory grew under 10 % after warm-up, and
the 1,000-client CPU per stream is within 1.5x of the 100-client figure.

``nox -s bench -- gateway_concurrency``; ``SIPP_LOAD_SECONDS`` (default 60)
is the measured part of the 1,000-client run, the 100-client run measures
half of it. The machine's
load average is in the report (the figures move with it).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "apps" / "gateway-server" / "tests"))
sys.path.insert(0, str(Path(__file__).parent))

from _report import write  # noqa: E402
from gwtest import free_port, start_gateway, wait_for  # noqa: E402
from loadcheck import LoadResult, rss_bytes, run_load  # noqa: E402

SECONDS = float(os.environ.get("SIPP_LOAD_SECONDS", "60"))
TOKENS = 32
CONFIG = """
[server]
max_concurrent_requests = 1200
max_connections = 1200
access_log = false
# Longer than the load generator's longest pause: a server closing an idle
# keep-alive connection while a client reuses it is a failed request (the
# default 5 s is for clients that keep up; 1,000 in one Python process on a
# loaded machine do not).
keepalive_timeout = 120.0

[[targets]]
name = "mock"
kind = "provider"
provider = "openai_compatible"
model = "mock"
base_url = "UPSTREAM"
max_connections = 2000

[[tokens]]
caller = "load"
token_env = "GW_WEB_TOKEN"
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


async def _measure(url: str, pid: int, clients: int, seconds: float) -> dict[str, Any]:
    """Warm up until every client finished a stream, then measure for ``seconds``."""
    samples: list[int] = []
    window: dict[str, float] = {}
    result = LoadResult()
    stop = anyio.Event()
    started = time.monotonic()

    async def measure() -> None:
        # Warm-up: pools, caches and every client's connection exist once each
        # client has finished one stream (on a loaded machine that is a while).
        while True:  # polled: the load loops have no event to give
            if len(result.finished) >= clients and time.monotonic() - started >= 5.0:
                break
            await anyio.sleep(0.5)
        window["warmup"] = time.monotonic() - started
        window["start"], window["cpu_start"] = time.monotonic(), cpu_seconds(pid)
        end = window["start"] + seconds
        while time.monotonic() < end:
            samples.append(rss_bytes(pid))
            await anyio.sleep(min(5.0, max(0.0, end - time.monotonic())))
        samples.append(rss_bytes(pid))
        window["end"], window["cpu_end"] = time.monotonic(), cpu_seconds(pid)
        stop.set()

    async with anyio.create_task_group() as group:
        group.start_soon(measure)
        # A long read timeout: on a loaded 2-core machine 1,000 streams queue for
        # the CPU, and a client giving up is the load generator's verdict, not
        # the gateway's (the queueing shows in streams_per_s).
        await run_load(
            url,
            clients=clients,
            seconds=seconds + 600,
            tokens=TOKENS,
            result=result,
            stop=stop,
            read_timeout=300.0,
        )
    streams = sum(1 for t in result.finished if window["start"] <= t <= window["end"])
    cpu = window["cpu_end"] - window["cpu_start"]
    growth = (samples[-1] - samples[0]) / samples[0] if len(samples) > 1 else 0.0
    return {
        "clients": clients,
        "warmup_s": round(window["warmup"], 1),
        "measured_s": round(window["end"] - window["start"], 1),
        "streams": result.streams,
        "tokens": result.tokens,
        "failures": len(result.failures),
        "first_failures": "; ".join(result.failures[:3]),
        "streams_per_s": round(streams / (window["end"] - window["start"]), 1),
        "cpu_ms_per_stream": round(1000 * cpu / max(1, streams), 3),
        "gateway_cpu_share": round(cpu / (window["end"] - window["start"]), 2),
        "rss_first_mb": round(samples[0] / 2**20, 1) if samples else 0.0,
        "rss_last_mb": round(samples[-1] / 2**20, 1) if samples else 0.0,
        "rss_growth": round(growth, 3),
        "loadavg_1m": os.getloadavg()[0],
    }


def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # 1,000 clients: their sockets here, the gateway's, the mock's (children inherit it).
    wanted = 8192 if hard == resource.RLIM_INFINITY else min(8192, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    port = free_port()
    mock = subprocess.Popen(
        [sys.executable, str(ROOT / "apps/gateway-server/tests/mock_openai.py"), str(port)]
    )
    upstream = f"http://127.0.0.1:{port}/v1"
    rows = []
    try:
        wait_for(f"{upstream}/models", process=mock)
        for clients, seconds in ((100, SECONDS / 2), (1000, SECONDS)):
            gateway = start_gateway(
                CONFIG.replace("UPSTREAM", upstream), "asyncio", start_limit=120.0
            )
            try:
                row = anyio.run(_measure, gateway.url, gateway.process.pid, clients, seconds)
                row["alive"] = gateway.process.poll() is None
                rows.append(row)
                print(row, flush=True)
            finally:
                gateway.stop()
    finally:
        mock.terminate()
    write("gateway_concurrency", rows)
    ratio = rows[1]["cpu_ms_per_stream"] / rows[0]["cpu_ms_per_stream"]
    print(f"cpu per stream, 1,000 vs 100 clients: {ratio:.2f}x")
    bad = [r for r in rows if r["failures"] or not r["alive"] or r["rss_growth"] > 0.10]
    if bad or ratio > 1.5:
        raise SystemExit(f"concurrency check failed (ratio {ratio:.2f}): {bad}")


if __name__ == "__main__":
    main()
