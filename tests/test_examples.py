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


def test_tools() -> None:
    out = _run("tools.py")
    assert out.splitlines() == [
        'call get_weather({"city":"Oslo"})',
        'call convert_currency({"amount":20,"source":"EUR","target":"NOK"})',
        "  -> 7 °C, light rain in Oslo",
        '  -> {"amount":232.0,"currency":"NOK"}',
        "answer: Oslo has 7 °C and light rain; 20 EUR is 232 NOK.",
        "turns: 2",
        "tokens: 12",
    ]


def test_tools_endpoint_can_be_swapped() -> None:
    # Another endpoint, by environment variable: a model that answers without calling.
    import os

    script = '{"kind": "scripted", "reply": "No tools needed."}'
    env = {**os.environ, "SIPP_EXAMPLE_ENDPOINT": script}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "tools.py")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == ["answer: No tools needed.", "turns: 1"]


def test_structured_output() -> None:
    out = _run("structured_output.py")
    assert out.splitlines() == [
        "Ada Lovelace, born 1815, wrote in English, French",
        'raw text: {"name":"Ada Lovelace","born":1815,"languages":["English","French"]}',
    ]


def test_tools_through_a_gateway_route() -> None:
    """The same loop through the gateway driver and the profile's route helpers."""
    import json
    import subprocess

    from sipp.testing import ThreadedServer

    sys.path.insert(0, str(EXAMPLES))
    try:
        from gateway_provider_route import PUBLIC_TARGET, create_app
        from tools import SCRIPTED
    finally:
        sys.path.remove(str(EXAMPLES))
    with ThreadedServer(create_app(SCRIPTED)) as server:
        descriptor = {"kind": "gateway", "target": PUBLIC_TARGET, "base_url": server.url}
        result = subprocess.run(
            [sys.executable, str(EXAMPLES / "tools.py"), json.dumps(descriptor)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:5] == _run("tools.py").splitlines()[:5]
