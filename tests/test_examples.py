"""The README's examples run as users would run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"


def _run(name: str) -> str:
    command = [sys.executable, str(EXAMPLES / name)]
    if name.endswith(".sh"):
        command = ["bash", str(EXAMPLES / name)]
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_quickstart() -> None:
    out = _run("quickstart.py")
    assert "Sipp runs every model the same way. stop" in out
    assert "cancelled: caller_cancelled" in out
    assert "vector: [0.1, 0.2, 0.3]" in out


def test_timeouts_and_retries() -> None:
    out = _run("timeouts_and_retries.py")
    assert out.splitlines() == ["third time lucky", "timed out in phase: first_token", "moved on"]


def test_blocking_client() -> None:
    assert _run("blocking.py").splitlines() == [
        "Blocking calls, streamed tokens.",
        "Blocking calls, streamed tokens. | stop",
        "cancelled: user_pressed_stop",
        "answers from 8 threads: 8",
    ]


def test_command_line() -> None:
    out = _run("command_line.sh").splitlines()
    assert out[0].startswith("saved endpoint 'bot' in ")
    assert out[-3:] == ["Piped prompts work.", "Piped prompts work. stop", "removed endpoint 'bot'"]


def test_opentelemetry_spans() -> None:
    out = _run("opentelemetry_spans.py").splitlines()
    assert out[0] == "chat (under its caller)"
    assert "  gen_ai.usage.output_tokens = 2" in out
    assert "handle user request (root)" in out
    assert out[-1] == "metrics: gen_ai.client.operation.duration, gen_ai.client.token.usage"
