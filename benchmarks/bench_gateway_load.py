"""Gateway under load: 64 streaming clients for 60 s through the gateway to a mock upstream.

Every stream is checked token by token (order, completeness, terminal
``done``); the gateway's resident memory is sampled every 5 s after a
warm-up, and must stay flat (growth under 10 %). Run with
``nox -s bench -- gateway_load`` (``SIPP_LOAD_SECONDS`` shortens it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "apps" / "gateway-server" / "tests"))
sys.path.insert(0, str(Path(__file__).parent))

from _report import write  # noqa: E402
from gwtest import free_port, start_gateway, wait_for  # noqa: E402
from loadcheck import LOAD_CONFIG, rss_bytes, run_load  # noqa: E402

SECONDS = float(os.environ.get("SIPP_LOAD_SECONDS", "60"))
CLIENTS = 64


async def _run(url: str, pid: int) -> dict[str, Any]:
    samples: list[int] = []

    async def sample() -> None:
        await anyio.sleep(min(10.0, SECONDS / 4))  # warm-up: pools and caches fill
        while True:
            samples.append(rss_bytes(pid))
            await anyio.sleep(5.0)

    async with anyio.create_task_group() as group:
        group.start_soon(sample)
        result = await run_load(url, clients=CLIENTS, seconds=SECONDS, tokens=32)
        group.cancel_scope.cancel()
    growth = (samples[-1] - samples[0]) / samples[0] if len(samples) > 1 else 0.0
    return {
        "clients": CLIENTS,
        "seconds": round(result.seconds, 1),
        "streams": result.streams,
        "tokens": result.tokens,
        "tokens_per_s": result.tokens / result.seconds,
        "failures": len(result.failures),
        "first_failures": "; ".join(result.failures[:3]),
        "rss_first_mb": samples[0] / 2**20 if samples else 0.0,
        "rss_last_mb": samples[-1] / 2**20 if samples else 0.0,
        "rss_growth": growth,
    }


def main() -> None:
    port = free_port()
    mock = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "apps" / "gateway-server" / "tests" / "mock_openai.py"),
            str(port),
        ]
    )
    upstream = f"http://127.0.0.1:{port}/v1"
    rows = []
    try:
        wait_for(f"{upstream}/models", process=mock)
        for backend in ("asyncio", "trio"):
            gateway = start_gateway(LOAD_CONFIG.replace("UPSTREAM", upstream), backend)
            try:
                row = {"server": "uvicorn" if backend == "asyncio" else "hypercorn"}
                row.update(anyio.run(_run, gateway.url, gateway.process.pid, backend=backend))
                rows.append(row)
            finally:
                gateway.stop()
    finally:
        mock.terminate()
    write("gateway_load", rows)
    bad = [r for r in rows if r["failures"] or r["rss_growth"] > 0.10]
    if bad:
        raise SystemExit(f"load check failed: {bad}")


if __name__ == "__main__":
    main()
