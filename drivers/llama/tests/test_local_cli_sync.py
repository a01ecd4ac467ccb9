"""The real test model through the blocking client and through ``sipp chat -e``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sipp import SyncClient


def test_the_blocking_client_streams_from_the_real_model(descriptor: dict[str, Any]) -> None:
    with SyncClient() as client:
        client.add("local", descriptor)
        run = client.chat(
            [{"role": "user", "content": "Say hello."}],
            max_tokens=12,
            temperature=0,
            emit_tokens=True,
        )
        streamed = "".join(batch.text for batch in run.tokens)
        response = run.response()
    assert streamed == response.text
    assert response.text.strip()
    assert response.usage.output_tokens is not None
    assert 0 < response.usage.output_tokens <= 12


def test_sipp_query_with_a_named_local_endpoint(model_path: Path, tmp_path: Path) -> None:
    env = {**os.environ, "SIPP_CONFIG_DIR": str(tmp_path)}
    sipp = [sys.executable, "-m", "sipp"]
    add = [*sipp, "endpoints", "add", "small", "--kind", "local", "--source", str(model_path),
           "--set", "n_threads=1", "--set", "n_ctx=512"]  # fmt: skip
    subprocess.run(add, env=env, check=True, capture_output=True, timeout=60)
    query = ["query", "-e", "small", "-s", "Be brief.", "--max-tokens", "8", "--stats"]
    query += ["--temperature", "0", "What is 2+2?"]
    result = subprocess.run(
        [*sipp, *query],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert "tokens/s" in result.stderr
    assert "out" in result.stderr
