"""The local demo streams a real answer from the test model, with no API key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parents[3] / "examples" / "local_demo.py"


def test_the_local_demo_streams_an_answer(model_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "Name a colour."],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SIPP_TEST_MODEL": str(model_path)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answer, _, summary = result.stdout.rpartition("\n\n[")
    assert answer.strip()
    assert summary.startswith(("stop", "length"))
    assert "100%" in result.stderr  # the load progress line
