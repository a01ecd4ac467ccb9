"""The gateway under many open streams: CPU per stream, memory per stream, bursts.

Two servers in front of the same raw mock upstream (``_upstream.py``), each
fed by bursts of streamed chat completions opened together (``_bursts.py``,
raw asyncio sockets; every stream checked token by token):

* ``gateway`` — ``sipp gateway serve`` (uvicorn), its **OpenAI surface**
  ``POST /v1/chat/completions`` to an ``openai_compatible`` target that asks
  for 2,000 upstream connections (split into pools of at most 64);
* ``passthrough`` — the 40-line uvicorn + httpx floor (``_passthrough.py``).

The upstream paces its tokens (model ``paced-<ms>``: :data:`TOKENS` tokens,
:data:`PACE_MS` ms apart) so that a burst's streams stay open together.
Each repeat starts both servers afresh, warms each with a burst of 100, then:

* memory per open stream: resident memory before (idle, warmed), the peak
  during a burst of 1,000 (sampled every 20 ms) and after it; per stream =
  (peak − before) / 1,000, for the gateway and for the pass-through;
* bursts: :data:`BURSTS` bursts of 1,000 against the same gateway process
  (in the first repeat; the others run two, to keep the run near 5 minutes);
  each burst's peak against the first's (growth), and the after-burst memory;
* CPU per stream (``/proc/PID/stat``, the gateway's user + system time over
  a burst / its streams) at 1,000 open streams (bursts 2.. of the above,
  whose upstream connections already exist) and at 100 (two bursts of 100
  before them).

The load generator reports how many streams were open at once
(``gw_max_open``): below 1,000, the gateway could not start them all within
one stream's life (a starved machine) and the memory peak is low by that much.

Reported, median and spread of :data:`REPEATS` repeats: CPU per stream at
1,000 / at 100 (target ≤ 1.2), gateway / pass-through memory per stream
(target ≤ 1.2), the largest burst peak above the first's (target ≤ 5 %).
A lost, truncated or reordered stream fails the run.

``nox -s bench -- gateway_concurrency``. ``SIPP_BENCH_REPEATS`` (5),
``SIPP_BURSTS`` (5). The machine's load average is in the report.
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "apps" / "gateway-server" / "tests"))
sys.path.insert(0, str(Path(__file__).parent))

from _bursts import Burst, burst, cpu_seconds, rss_bytes  # noqa: E402
from _report import summary, write  # noqa: E402
from gwtest import ENV, free_port, start_gateway, wait_for  # noqa: E402

REPEATS = int(os.environ.get("SIPP_BENCH_REPEATS", "5"))
BURSTS = int(os.environ.get("SIPP_BURSTS", "5"))
MANY, FEW = 1000, 100
#: 16 tokens 500 ms apart: a stream lasts 8 s, longer than it takes the servers to
#: start 1,000 of them on 2 busy cores, so a burst's streams are all open together
#: (32 tokens 200 ms apart kept only 400 of 1,000 open at once through the gateway).
TOKENS = 16
PACE_MS = 500
MODEL = f"paced-{PACE_MS}"
#: Seconds for a server to finish closing a burst's connections before a reading.
SETTLE_S = 0.5

GATEWAY = f"""
[server]
max_concurrent_requests = 1200
max_connections = 1200
access_log = false

[[targets]]
name = "{MODEL}"
kind = "provider"
provider = "openai_compatible"
model = "{MODEL}"
base_url = "UPSTREAM"
max_connections = 2000

[[tokens]]
caller = "load"
token_env = "GW_WEB_TOKEN"
"""


def _run(main: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> Any:
    try:
        import uvloop  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return asyncio.run(main(*args))
    return uvloop.run(main(*args))


class _Failed(Exception):
    pass


async def _burst(port: int, pid: int, streams: int) -> tuple[Burst, float]:
    """One checked burst; with the server's CPU seconds spent on it."""
    cpu = cpu_seconds(pid)
    result = await burst(port, streams=streams, model=MODEL, tokens=TOKENS, watch=[pid])
    await asyncio.sleep(SETTLE_S)
    spent = cpu_seconds(pid) - cpu
    if result.failures:
        raise _Failed(f"{len(result.failures)} of {streams} streams failed: {result.failures[:3]}")
    return result, spent


async def _memory(port: int, pid: int) -> dict[str, Any]:
    """Before (idle, warmed) / peak during / after one burst of ``MANY``."""
    before = rss_bytes(pid)
    result, cpu = await _burst(port, pid, MANY)
    after = rss_bytes(pid)
    return {
        "before": before,
        "peak": result.peak_rss[pid],
        "after": after,
        "max_open": result.max_open,
        "seconds": result.seconds,
        "cpu": cpu,
    }


async def _repeat(
    gateway: tuple[int, int], passthrough: tuple[int, int], bursts: int
) -> dict[str, Any]:
    # Warm-up (lazy imports, first upstream connections), both at once: not measured.
    await asyncio.gather(_burst(*gateway, FEW), _burst(*passthrough, FEW))
    pt = await _memory(*passthrough)
    port, pid = gateway
    # Two bursts of 100: one is only ~0.4 s of gateway CPU, too few ticks on a busy machine.
    cpu_few = [(await _burst(port, pid, FEW))[1] / FEW for _ in range(2)]
    gw = await _memory(port, pid)
    peaks, afters, cpu_many = [gw["peak"]], [gw["after"]], []
    for _ in range(bursts - 1):
        result, cpu = await _burst(port, pid, MANY)
        peaks.append(result.peak_rss[pid])
        afters.append(rss_bytes(pid))
        cpu_many.append(cpu / MANY)
    if not cpu_many:  # one burst only: its CPU includes opening the upstream connections
        cpu_many.append(gw["cpu"] / MANY)
    few = sum(cpu_few) / len(cpu_few)
    many = sum(cpu_many) / len(cpu_many)
    gw_kb = (gw["peak"] - gw["before"]) / MANY / 1024
    pt_kb = (pt["peak"] - pt["before"]) / MANY / 1024
    return {
        "gw_cpu_ms_100": round(1000 * few, 3),
        "gw_cpu_ms_1000": round(1000 * many, 3),
        "cpu_ratio": round(many / few, 3),
        "gw_before_mb": round(gw["before"] / 2**20, 1),
        "gw_peak_mb": round(gw["peak"] / 2**20, 1),
        "gw_after_mb": round(gw["after"] / 2**20, 1),
        "pt_before_mb": round(pt["before"] / 2**20, 1),
        "pt_peak_mb": round(pt["peak"] / 2**20, 1),
        "pt_after_mb": round(pt["after"] / 2**20, 1),
        "gw_kb_stream": round(gw_kb, 1),
        "pt_kb_stream": round(pt_kb, 1),
        "mem_ratio": round(gw_kb / pt_kb, 3) if pt_kb > 0 else float("inf"),
        "peaks_mb": [round(p / 2**20, 1) for p in peaks],
        "afters_mb": [round(a / 2**20, 1) for a in afters],
        "bursts": bursts,
        "burst_growth": round(max(peaks) / peaks[0] - 1, 4),
        "after_growth": round(afters[-1] / afters[0] - 1, 4),
        "gw_max_open": gw["max_open"],
        "pt_max_open": pt["max_open"],
        "burst_s": round(gw["seconds"], 2),
        "loadavg_1m": os.getloadavg()[0],
    }


def _passthrough(upstream: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "_passthrough.py"), str(port), upstream]
    )
    wait_for(f"http://127.0.0.1:{port}/v1/models", process=process)
    return process, port


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # 1,000 streams: their sockets here, the servers', the mock's (children inherit it).
    wanted = 16384 if hard == resource.RLIM_INFINITY else min(16384, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    os.environ.setdefault("GW_WEB_TOKEN", ENV["GW_WEB_TOKEN"])
    up_port = free_port()
    mock = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "_upstream.py"), str(up_port)]
    )
    upstream = f"http://127.0.0.1:{up_port}/v1"
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        wait_for(f"{upstream}/models", process=mock)
        for index in range(REPEATS):
            gateway = start_gateway(GATEWAY.replace("UPSTREAM", upstream), "asyncio")
            passthrough, pt_port = _passthrough(upstream)
            try:
                gw = (int(gateway.url.rsplit(":", 1)[1]), gateway.process.pid)
                # The first repeat runs all the bursts; the others two (memory, CPU).
                bursts = BURSTS if index == 0 else min(BURSTS, 2)
                row = _run(_repeat, gw, (pt_port, passthrough.pid), bursts)
                rows.append(row)
                print(row, flush=True)
            finally:
                gateway.stop()
                _stop(passthrough)
    except _Failed as failed:
        raise SystemExit(f"gateway_concurrency: {failed}") from None
    finally:
        _stop(mock)
    figures = {
        key: summary([row[key] for row in rows])
        for key in (
            "cpu_ratio",
            "mem_ratio",
            "gw_kb_stream",
            "pt_kb_stream",
            "gw_cpu_ms_100",
            "gw_cpu_ms_1000",
        )
    }
    # Growth over the first repeat's bursts (the others run two).
    for key in ("burst_growth", "after_growth"):
        figures[key] = summary([rows[0][key]])
    targets = {
        "cpu_ratio": 1.2,  # per-stream CPU at 1,000 open streams / at 100
        "mem_ratio": 1.2,  # gateway / pass-through memory per open stream
        "burst_growth": 0.05,  # largest burst peak above the first burst's
    }
    write(
        "gateway_concurrency",
        rows,
        extra={
            "summary": figures,
            "targets": targets,
            "seconds": round(time.monotonic() - started, 1),
        },
    )
    print()
    for key, figure in figures.items():
        verdict = ""
        if key in targets:
            met = figure["median"] <= targets[key]
            verdict = "ok" if met else f"MISSED (target ≤ {targets[key]})"
        print(
            f"{key:16} median {figure['median']:<9.4g} min {figure['min']:<9.4g} "
            f"max {figure['max']:<9.4g} iqr {figure['iqr']:<9.4g} {verdict}"
        )
    print(f"took {time.monotonic() - started:.0f}s, load {os.getloadavg()}")


if __name__ == "__main__":
    main()
