"""``sipp query -e NAME`` against the loopback mock: the key comes from the named variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from openai_mock import MockState, ServerThread


def test_a_named_endpoint_reads_its_key_from_the_environment(
    mock_server: ServerThread, mock_state: MockState, tmp_path: Path
) -> None:
    env = {**os.environ, "SIPP_CONFIG_DIR": str(tmp_path), "MOCK_API_KEY": "sk-from-env-0123"}
    add = [
        "endpoints", "add", "mock", "--kind", "provider", "--provider", "openai_compatible",
        "--model", "tokens=3", "--base-url", mock_server.base_url, "--api-key-env", "MOCK_API_KEY",
    ]  # fmt: skip
    sipp = [sys.executable, "-m", "sipp"]
    subprocess.run([*sipp, *add], env=env, check=True, capture_output=True, timeout=60)
    assert "sk-from-env" not in (tmp_path / "endpoints.toml").read_text()
    result = subprocess.run(
        [*sipp, "query", "-e", "mock", "-s", "be brief", "hello"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "tok0 tok1 tok2 \n"
    request = mock_state.requests[-1]
    assert request["headers"]["authorization"] == "Bearer sk-from-env-0123"
    assert request["body"]["messages"][0] == {"role": "system", "content": "be brief"}
