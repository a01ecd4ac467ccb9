"""The console's Targets view for a real local model (the test GGUF through llama-cpp-python)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from admin_configs import ADMIN_ENV
from admin_helpers import AUTH, console, from_address
from gwtest import Gateway, sse_events, start_gateway

pytestmark = pytest.mark.anyio


@pytest.fixture
def gateway(backend: str) -> Iterator[Gateway]:
    from sipp_llama.testing import test_model_path

    config = f"""
[[targets]]
name = "smol"
kind = "local"
source = "{test_model_path()}"
n_ctx = 512
n_threads = 1
max_concurrent = 2

[[tokens]]
caller = "web-app"
token_env = "GW_WEB_TOKEN"

[admin]
password_env = "GW_ADMIN_PASSWORD"
"""
    gateway = start_gateway(config, backend, env=ADMIN_ENV)
    yield gateway
    gateway.stop()


async def test_a_local_target_shows_its_model_context_size_and_speed(gateway: Gateway) -> None:
    body = {"model": "smol", "prompt": "Say hi", "max_tokens": 12, "stream": True}
    async with from_address("127.0.0.91", gateway.url) as api:
        answer = await api.post("/v1/query", json=body, headers=AUTH)
        assert answer.status_code == 200
        tokens = [json.loads(d) for e, d in sse_events(answer.text) if e == "token"]
        assert tokens
    async with console(gateway) as (admin, _):
        for _ in range(50):  # counted just after the answer is sent
            (smol,) = (await admin.get("/admin/api/targets")).json()
            if smol["requests"]:
                break
    assert smol["health"] == "ready"
    assert smol["deployment"]["model"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert smol["deployment"]["n_ctx"] == 512
    assert "source" not in smol["deployment"]  # the path stays on the server
    assert smol["limit"] == 2 and smol["decode_slots"] >= 1
    assert smol["requests"] == 1 and smol["tokens_out"] >= 1
    assert smol["tokens_per_s"] > 0 and smol["ttft_p50_ms"] is not None
