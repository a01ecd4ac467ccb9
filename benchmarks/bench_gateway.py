"""Gateway hop: added latency at one client, requests/s and streamed tokens/s at 32.

Every path leads to the same raw asyncio mock upstream (``_upstream.py``,
20,000+ requests/s: never the bottleneck), measured in one run:

* ``direct``      — the mock itself (the baseline of the added latency);
* ``passthrough`` — the floor of a Python hop (``_passthrough.py``: uvicorn +
  one pooled httpx client forwarding body and stream, ~40 lines);
* ``gateway``     — ``sipp-gateway serve`` (uvicorn, a static token, the
  access log on as by default) on its OpenAI surface
  ``/v1/chat/completions``: like for like with the pass-through and LiteLLM;
* ``gateway-profile`` — the same gateway on its own profile route ``/v1/chat``;
* ``litellm``     — LiteLLM's proxy (``litellm[proxy]==1.108.7``), installed by
  this script into its own virtualenv (``SIPP_LITELLM_VENV``, default
  ``~/.cache/sipp/litellm-venv``; reused when present), never the project's.

Per path and repeat: p50/p99 of sequential non-streaming requests (one
client; the paths take turns in blocks of 25 requests, so a burst of load
from elsewhere lands on all of them) and the *added* p50 (path p50 − direct p50 of the same repeat);
non-streaming requests/s with 32 clients; streamed tokens/s with 32 clients
each reading 500-token streams; and each server's CPU time per request and
per stream in those runs (``/proc``; the gateway's two rows share one
process). The load generator (``_load.py``: raw
asyncio streams with keep-alive, the same for every path) costs less than
any hop. ``REPEATS`` (5) repeats run interleaved across the paths, and the
ratios the targets name are computed per repeat, then summarised (median,
min, max, IQR):

* gateway added p50 / pass-through added p50 — target ≤ 1.05;
* gateway requests/s / pass-through's — target ≥ 1.0;
* gateway requests/s / LiteLLM's — target ≥ 10;
* gateway streamed tokens/s / LiteLLM's — target ≥ 30.

``nox -s bench -- gateway``; ``SIPP_BENCH_REPEATS`` overrides the repeats,
``SIPP_BENCH_PATHS`` (comma-separated names) measures a subset. The machine's
load average is in the JSON (absolute figures move with it; ratios less).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).parent
sys.path.insert(0, str(ROOT / "apps" / "gateway-server" / "tests"))
sys.path.insert(0, str(HERE))

from _load import Target, closed_loop, sequential  # noqa: E402
from _report import summary, write  # noqa: E402
from gwtest import TOKEN, Gateway, free_port, start_gateway, wait_for  # noqa: E402

REPEATS = int(os.environ.get("SIPP_BENCH_REPEATS", "5"))
SEQUENTIAL = 500
SEQUENTIAL_SLOW = 100  # LiteLLM: ~16 ms a request
RPS_SECONDS = 2.5
TPS_SECONDS = 1.5  # every client also finishes the stream it is in
CLIENTS = 32
STREAM_TOKENS = 500
LITELLM = "litellm[proxy]==1.108.7"
LITELLM_VENV = Path(
    os.environ.get("SIPP_LITELLM_VENV", Path.home() / ".cache" / "sipp" / "litellm-venv")
)

GATEWAY_CONFIG = """
[server]
max_concurrent_requests = 1024

[[targets]]
name = "mock"
kind = "provider"
provider = "openai_compatible"
model = "mock"
base_url = "UPSTREAM/v1"
max_connections = 64

[[tokens]]
caller = "bench"
token_env = "GW_WEB_TOKEN"
"""

LITELLM_CONFIG = """
model_list:
  - model_name: mock
    litellm_params:
      model: openai/mock
      api_base: UPSTREAM/v1
      api_key: not-a-key
litellm_settings:
  telemetry: false
  drop_params: true
general_settings:
  # LiteLLM refuses to start without one; callers authenticate, as at the gateway.
  master_key: MASTER_KEY
"""
LITELLM_KEY = "sk-bench-" + os.urandom(16).hex()


# -- processes --------------------------------------------------------------------


def _start(args: list[str], ready: str, log: Path, limit: float = 60.0) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(ready, process=process, limit=limit)
    except Exception:
        process.kill()
        raise RuntimeError(f"{args[1]} did not start; see {log}") from None
    return process


def _litellm_binary() -> Path | None:
    """LiteLLM's proxy in its own virtualenv, installed there once; ``None`` if it cannot be."""
    python, binary = LITELLM_VENV / "bin" / "python", LITELLM_VENV / "bin" / "litellm"
    version = LITELLM.split("==")[1]
    check = [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"]
    if binary.exists():
        found = subprocess.run(check, capture_output=True, text=True).stdout.strip()
        if found == version:
            return binary
    print(f"installing {LITELLM} into {LITELLM_VENV} (once; a few minutes) ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", LITELLM], check=True)
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"LiteLLM could not be installed ({exc}): its rows are skipped")
        return None
    return binary


def _start_litellm(upstream: str, work: Path) -> tuple[subprocess.Popen[bytes], int] | None:
    binary = _litellm_binary()
    if binary is None:
        return None
    config = work / "litellm.yaml"
    config.write_text(
        LITELLM_CONFIG.replace("UPSTREAM", upstream).replace("MASTER_KEY", LITELLM_KEY)
    )
    port = free_port()
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
    }
    log = work / "litellm.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(binary), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        # LiteLLM imports for tens of seconds.
        wait_for(f"http://127.0.0.1:{port}/health/liveliness", process=process, limit=180)
    except Exception as exc:
        print(f"LiteLLM did not start ({exc}); see {log}: its rows are skipped")
        process.kill()
        return None
    return process, port


# -- measuring --------------------------------------------------------------------


def _profile_body(stream: bool, tokens: int) -> dict[str, Any]:
    return {
        "model": "mock",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": tokens,
        "stream": stream,
    }


def _cpu(pid: int | None) -> float:
    """CPU seconds (user + system) of process ``pid`` so far; 0 when not known."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _one_repeat(targets: list[Target], pids: dict[str, int]) -> dict[str, dict[str, float]]:
    """One repeat: each figure measured for every path in turn (interleaved)."""
    out: dict[str, dict[str, float]] = {t.name: {} for t in targets}
    counts = {t.name: SEQUENTIAL_SLOW if t.name == "litellm" else SEQUENTIAL for t in targets}
    for name, taken in (await sequential(targets, counts)).items():
        samples = sorted(taken)
        out[name]["p50_ms"] = statistics.median(samples) * 1000
        out[name]["p99_ms"] = samples[max(0, int(len(samples) * 0.99) - 1)] * 1000
    for target in targets:
        cpu = _cpu(pids.get(target.name))
        done, elapsed = await closed_loop(target, CLIENTS, RPS_SECONDS, stream=False, tokens=8)
        out[target.name]["rps"] = done / elapsed
        out[target.name]["cpu_ms_per_request"] = (_cpu(pids.get(target.name)) - cpu) / done * 1e3
    for target in targets:
        cpu = _cpu(pids.get(target.name))
        done, elapsed = await closed_loop(
            target, CLIENTS, TPS_SECONDS, stream=True, tokens=STREAM_TOKENS
        )
        out[target.name]["tps"] = done * STREAM_TOKENS / elapsed
        out[target.name]["cpu_ms_per_stream"] = (_cpu(pids.get(target.name)) - cpu) / done * 1e3
    direct = out.get("direct", {}).get("p50_ms", 0.0)
    for figures in out.values():
        figures["added_p50_ms"] = figures["p50_ms"] - direct
    return out


RATIOS: dict[str, tuple[str, str, str]] = {
    # name: (figure, numerator path, denominator path)
    "added_p50_vs_passthrough": ("added_p50_ms", "gateway", "passthrough"),
    "profile_added_p50_vs_passthrough": ("added_p50_ms", "gateway-profile", "passthrough"),
    "rps_vs_passthrough": ("rps", "gateway", "passthrough"),
    "profile_rps_vs_passthrough": ("rps", "gateway-profile", "passthrough"),
    "rps_vs_litellm": ("rps", "gateway", "litellm"),
    "tps_vs_litellm": ("tps", "gateway", "litellm"),
    "tps_vs_passthrough": ("tps", "gateway", "passthrough"),
    "passthrough_rps_vs_litellm": ("rps", "passthrough", "litellm"),
    "cpu_per_request_vs_passthrough": ("cpu_ms_per_request", "gateway", "passthrough"),
    "cpu_per_stream_vs_passthrough": ("cpu_ms_per_stream", "gateway", "passthrough"),
}
TARGETS = {
    "added_p50_vs_passthrough": "<= 1.05",
    "rps_vs_passthrough": ">= 1.0",
    "rps_vs_litellm": ">= 10",
    "tps_vs_litellm": ">= 30",
}


def _run(main: Callable[[], Any]) -> Any:
    try:
        import uvloop  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return asyncio.run(main())
    return uvloop.run(main())


def main() -> None:
    wanted = {n for n in os.environ.get("SIPP_BENCH_PATHS", "").split(",") if n}
    work = Path(tempfile.mkdtemp(prefix="sipp-bench-gw-"))
    mock_port = free_port()
    upstream = f"http://127.0.0.1:{mock_port}"
    processes: list[subprocess.Popen[bytes]] = []
    gateway: Gateway | None = None
    #: Server processes whose CPU time per request and per stream is reported
    #: (Linux /proc): steadier than rates on a shared machine.
    pids: dict[str, int] = {}
    load_before = os.getloadavg()
    try:
        processes.append(
            _start(
                [sys.executable, str(HERE / "_upstream.py"), str(mock_port)],
                f"{upstream}/v1/models",
                work / "upstream.log",
            )
        )
        targets = [Target("direct", mock_port, "/v1/chat/completions")]
        pids["direct"] = processes[0].pid  # the mock's own CPU: it is never the bottleneck
        if not wanted or "passthrough" in wanted:
            port = free_port()
            processes.append(
                _start(
                    [sys.executable, str(HERE / "_passthrough.py"), str(port), upstream],
                    f"http://127.0.0.1:{port}/v1/models",
                    work / "passthrough.log",
                )
            )
            targets.append(Target("passthrough", port, "/v1/chat/completions"))
            pids["passthrough"] = processes[-1].pid
        if not wanted or wanted & {"gateway", "gateway-profile"}:
            gateway = start_gateway(
                GATEWAY_CONFIG.replace("UPSTREAM", upstream), "asyncio", directory=work
            )
            gw_port = int(gateway.url.rsplit(":", 1)[1])
            pids["gateway"] = pids["gateway-profile"] = gateway.process.pid
            auth = {"authorization": f"Bearer {TOKEN}"}
            targets.append(Target("gateway", gw_port, "/v1/chat/completions", headers=auth))
            targets.append(
                Target("gateway-profile", gw_port, "/v1/chat", headers=auth, body=_profile_body)
            )
        if not wanted or "litellm" in wanted:
            started = _start_litellm(upstream, work)
            if started is not None:
                processes.append(started[0])
                pids["litellm"] = started[0].pid
                key = {"authorization": f"Bearer {LITELLM_KEY}"}
                targets.append(Target("litellm", started[1], "/v1/chat/completions", headers=key))
        targets = [t for t in targets if not wanted or t.name in wanted or t.name == "direct"]
        repeats = []
        for index in range(REPEATS):
            print(f"repeat {index + 1}/{REPEATS} ...", flush=True)
            repeats.append(_run(lambda: _one_repeat(targets, pids)))
    finally:
        if gateway is not None:
            gateway.stop()
        for process in processes:
            process.terminate()
            process.wait(20)
    _report(targets, repeats, load_before)


def _report(
    targets: list[Target], repeats: list[dict[str, dict[str, float]]], load_before: Any
) -> None:
    figures = (
        *("p50_ms", "p99_ms", "added_p50_ms", "rps", "tps"),
        *("cpu_ms_per_request", "cpu_ms_per_stream"),
    )
    raw = {t.name: {f: summary([r[t.name][f] for r in repeats]) for f in figures} for t in targets}
    rows = []
    for t in targets:
        r = raw[t.name]
        rows.append(
            {
                "path": t.name,
                "p50_ms": r["p50_ms"]["median"],
                "p99_ms": r["p99_ms"]["median"],
                "added_p50_ms": r["added_p50_ms"]["median"],
                "req_per_s_32": r["rps"]["median"],
                "tokens_per_s_32": r["tps"]["median"],
                "cpu_ms_per_req": r["cpu_ms_per_request"]["median"],
                "cpu_ms_per_stream": r["cpu_ms_per_stream"]["median"],
            }
        )
    ratios: dict[str, dict[str, float]] = {}
    for name, (figure, top, bottom) in RATIOS.items():
        if top in raw and bottom in raw:
            ratios[name] = summary([r[top][figure] / r[bottom][figure] for r in repeats])
    extra = {
        "repeats": REPEATS,
        "clients": CLIENTS,
        "stream_tokens": STREAM_TOKENS,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "raw": raw,
        "per_repeat": repeats,
        "ratios": ratios,
        "targets": TARGETS,
    }
    write("gateway", rows, extra)
    print(f"ratios per repeat, median [min, max] of {REPEATS} (load {load_before[0]:.1f}):")
    for name, value in ratios.items():
        target = f"  target {TARGETS[name]}" if name in TARGETS else ""
        print(
            f"  {name:34s} {value['median']:7.3f}  [{value['min']:.3f}, {value['max']:.3f}]{target}"
        )


if __name__ == "__main__":
    main()
