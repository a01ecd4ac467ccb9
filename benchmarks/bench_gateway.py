"""Gateway overhead: requests/s and added latency, streaming and not, 1 and 32 clients.

Three ways to reach the same OpenAI-compatible mock upstream (a separate
uvicorn process that answers as fast as it can), measured in one session:

* ``direct``  — the mock hit directly (the baseline);
* ``gateway`` — through ``sipp gateway serve`` (uvicorn, static token, access
  log on), profile route ``/v1/chat`` to an ``openai_compatible`` target;
* ``litellm`` — through LiteLLM's proxy (``litellm --config``), when it can be
  installed; it is installed into its own virtualenv (``SIPP_LITELLM_VENV``,
  default ``/tmp/litellm-venv``), never into the project's.

Per path: p50/p99 latency of sequential non-streaming requests (one client),
non-streaming requests/s with 32 clients, and streamed tokens/s with 32
clients (64 tokens per stream). Each figure is the median of ``REPEATS`` runs.
Targets (quality.md): gateway adds ≤ 1 ms p50 at one client; ≥ 10× LiteLLM's
requests/s and ≥ 30× its streamed tokens/s at 32 clients.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "apps" / "gateway-server" / "tests"))
sys.path.insert(0, str(Path(__file__).parent))

from _report import summary, write  # noqa: E402
from gwtest import TOKEN, free_port, start_gateway, wait_for  # noqa: E402

REPEATS = int(os.environ.get("SIPP_BENCH_REPEATS", "3"))
SEQUENTIAL = 300
SECONDS = 4.0
CLIENTS = 32
STREAM_TOKENS = 64
LITELLM_VENV = Path(os.environ.get("SIPP_LITELLM_VENV", "/tmp/litellm-venv"))

GATEWAY = """
[server]
max_concurrent_requests = 1024

[[targets]]
name = "mock"
kind = "provider"
provider = "openai_compatible"
model = "mock"
base_url = "UPSTREAM"
max_connections = 256

[[tokens]]
caller = "bench"
token_env = "GW_WEB_TOKEN"
"""

LITELLM = """
model_list:
  - model_name: mock
    litellm_params:
      model: openai/mock
      api_base: UPSTREAM
      api_key: not-a-key
litellm_settings:
  telemetry: false
  drop_params: true
"""


class Path_:
    def __init__(self, name: str, url: str, route: str, headers: dict[str, str]) -> None:
        self.name, self.url, self.route, self.headers = name, url, route, headers

    def body(self, stream: bool, tokens: int) -> dict[str, Any]:
        return {
            "model": "mock",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": tokens,
            "stream": stream,
        }


async def _sequential(path: Path_) -> list[float]:
    async with httpx.AsyncClient(base_url=path.url, timeout=30) as http:
        body = path.body(False, 8)
        for _ in range(20):  # warm up connections and caches
            (await http.post(path.route, json=body, headers=path.headers)).raise_for_status()
        samples = []
        for _ in range(SEQUENTIAL):
            start = time.perf_counter()
            response = await http.post(path.route, json=body, headers=path.headers)
            samples.append(time.perf_counter() - start)
            response.raise_for_status()
    return samples


async def _concurrent(path: Path_, stream: bool) -> float:
    """Requests/s (non-streaming) or tokens/s (streaming) with CLIENTS clients."""
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    done = 0
    tokens = STREAM_TOKENS if stream else 8
    body = path.body(stream, tokens)
    async with httpx.AsyncClient(base_url=path.url, timeout=60, limits=limits) as http:
        deadline = 0.0

        async def client() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                if stream:
                    async with http.stream(
                        "POST", path.route, json=body, headers=path.headers
                    ) as response:
                        response.raise_for_status()
                        tail = b""
                        async for chunk in response.aiter_bytes():
                            tail = (tail + chunk)[-64:]
                        if b"[DONE]" not in tail and b"event: done" not in tail:
                            raise RuntimeError(f"{path.name}: stream ended without done")
                else:
                    (
                        await http.post(path.route, json=body, headers=path.headers)
                    ).raise_for_status()
                if time.monotonic() < deadline:
                    done += 1

        # Warm up, then measure.
        deadline = time.monotonic() + 0.5
        async with anyio.create_task_group() as group:
            for _ in range(CLIENTS):
                group.start_soon(client)
        done = 0
        start = time.monotonic()
        deadline = start + SECONDS
        async with anyio.create_task_group() as group:
            for _ in range(CLIENTS):
                group.start_soon(client)
        elapsed = time.monotonic() - start
    return done * (tokens if stream else 1) / elapsed


def _start_litellm(upstream: str) -> tuple[subprocess.Popen[bytes], str] | None:
    binary = LITELLM_VENV / "bin" / "litellm"
    if not binary.exists():
        print(f"LiteLLM not found at {binary}: its rows are skipped")
        return None
    config = Path(tempfile.mkdtemp()) / "litellm.yaml"
    config.write_text(LITELLM.replace("UPSTREAM", upstream))
    port = free_port()
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
    }
    log = open(config.parent / "litellm.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [str(binary), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/health/liveliness", process=process, limit=120)
    except Exception as exc:
        print(f"LiteLLM did not start ({exc}); see {config.parent / 'litellm.log'}")
        process.kill()
        return None
    return process, url


async def _measure(path: Path_) -> dict[str, Any]:
    p50s, p99s, rps, tps = [], [], [], []
    for _ in range(REPEATS):
        samples = sorted(await _sequential(path))
        p50s.append(statistics.median(samples) * 1000)
        p99s.append(samples[int(len(samples) * 0.99) - 1] * 1000)
        rps.append(await _concurrent(path, stream=False))
        tps.append(await _concurrent(path, stream=True))
    return {
        "p50_ms": summary(p50s),
        "p99_ms": summary(p99s),
        "rps": summary(rps),
        "tps": summary(tps),
    }


def main() -> None:
    mock_port = free_port()
    mock = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "apps" / "gateway-server" / "tests" / "mock_openai.py"),
            str(mock_port),
        ]
    )
    upstream = f"http://127.0.0.1:{mock_port}/v1"
    wait_for(f"{upstream}/models", process=mock)
    gateway = start_gateway(GATEWAY.replace("UPSTREAM", upstream), "asyncio")
    litellm = _start_litellm(upstream)
    paths = [
        Path_("direct", upstream, "/chat/completions", {}),
        Path_("gateway", gateway.url, "/v1/chat", {"authorization": f"Bearer {TOKEN}"}),
    ]
    if litellm is not None:
        paths.append(Path_("litellm", litellm[1], "/v1/chat/completions", {}))
    results: dict[str, dict[str, Any]] = {}
    try:
        for path in paths:
            print(f"measuring {path.name} ...", flush=True)
            results[path.name] = anyio.run(_measure, path)
    finally:
        gateway.stop()
        mock.terminate()
        if litellm is not None:
            litellm[0].terminate()
    direct = results["direct"]
    rows = []
    for name, r in results.items():
        row: dict[str, Any] = {
            "path": name,
            "p50_ms": r["p50_ms"]["median"],
            "p99_ms": r["p99_ms"]["median"],
            "added_p50_ms": r["p50_ms"]["median"] - direct["p50_ms"]["median"],
            "req_per_s_32": r["rps"]["median"],
            "tokens_per_s_32": r["tps"]["median"],
        }
        rows.append(row)
    extra: dict[str, Any] = {"raw": results, "repeats": REPEATS, "clients": CLIENTS}
    if "litellm" in results:
        g, lite = results["gateway"], results["litellm"]
        extra["ratios"] = {
            "rps_vs_litellm": g["rps"]["median"] / lite["rps"]["median"],
            "tps_vs_litellm": g["tps"]["median"] / lite["tps"]["median"],
        }
        print(
            f"gateway vs LiteLLM: {extra['ratios']['rps_vs_litellm']:.1f}x requests/s, "
            f"{extra['ratios']['tps_vs_litellm']:.1f}x streamed tokens/s"
        )
    write("gateway", rows, extra)


if __name__ == "__main__":
    main()
