"""The README's examples run as users would run them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"


def _run(name: str) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=120
    )
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
