"""examples/tools.py runs its tool loop against the local test model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parents[3] / "examples" / "tools.py"


def test_the_tools_example_completes_on_the_local_model(model_path: Path) -> None:
    # The tiny model decides for itself whether to call a tool (tool_choice "auto"),
    # so the check is that the loop ends with an answer, its calls well formed.
    descriptor = {"kind": "local", "source": str(model_path), "n_ctx": 4096}
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), json.dumps(descriptor)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("answer:") for line in lines)
    for line in lines:
        if line.startswith("call "):
            name, _, arguments = line.removeprefix("call ").partition("(")
            assert name in {"get_weather", "convert_currency"}
            json.loads(arguments.removesuffix(")"))
