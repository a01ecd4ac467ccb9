"""The ``sipp`` command, run as a user would run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _sipp(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sipp", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_drivers_lists_each_driver_and_whether_it_loads() -> None:
    result = _sipp("drivers")
    assert result.returncode == 0
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert lines["echo"].endswith("ok")
    assert "sipp-example-echo" in lines["echo"]
    assert "FAILED" in lines["broken"]
    assert "sipp_dependency_that_does_not_exist" in lines["broken"]


def test_drivers_strict_fails_when_one_does_not_load() -> None:
    assert _sipp("drivers", "--strict").returncode == 1


def test_query_streams_the_answer() -> None:
    descriptor = json.dumps({"kind": "scripted", "reply": "streamed answer"})
    result = _sipp("query", "ignored", "--descriptor", descriptor)
    assert result.returncode == 0
    assert result.stdout == "streamed answer\n"


def test_query_reports_sdk_errors_without_a_traceback() -> None:
    result = _sipp("query", "x", "--descriptor", json.dumps({"kind": "nope"}))
    assert result.returncode == 1
    assert "DriverNotFoundError" in result.stderr
    assert "echo" in result.stderr  # it lists what is installed
    assert "Traceback" not in result.stderr


def test_chat_reads_piped_lines_until_the_end_of_input() -> None:
    descriptor = json.dumps({"kind": "scripted"})  # echoes the last message
    result = _sipp("chat", "--descriptor", descriptor, stdin="first line\n\nsecond line\n")
    assert result.returncode == 0
    assert "first line\n" in result.stdout
    assert "second line\n" in result.stdout


def test_gateway_arguments_reach_the_gateway_command(tmp_path: Path) -> None:
    result = _sipp("gateway", "check", "--config", str(tmp_path / "missing.toml"))
    assert result.returncode == 1
    assert "missing.toml" in result.stderr
