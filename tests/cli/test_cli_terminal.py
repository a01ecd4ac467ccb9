"""The ``sipp`` command driven through a real terminal: pipes, JSON, a chat, Ctrl-C."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from terminal import Terminal, sipp


@pytest.fixture
def config(tmp_path: Path) -> dict[str, str]:
    """A private config dir with two named scripted endpoints."""
    (tmp_path / "endpoints.toml").write_text(
        """
[endpoints.echo]
kind = "scripted"
first_token_delay = 0.6

[endpoints.long]
kind = "scripted"
reply = "%s"
token_delay = 0.02
"""
        % ("word " * 500),
        encoding="utf-8",
    )
    return {"SIPP_CONFIG_DIR": str(tmp_path)}


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    opened: list[Terminal] = []
    yield opened
    for terminal in opened:
        terminal.close()


def _open(terminals: list[Terminal], argv: list[str], env: dict[str, str]) -> Terminal:
    terminal = Terminal(argv, env=env)
    terminals.append(terminal)
    return terminal


def test_query_reads_the_prompt_from_a_pipe(
    config: dict[str, str], terminals: list[Terminal]
) -> None:
    command = f"printf 'from a pipe' | {shlex.join(sipp('query', '-e', 'echo', '--stats'))}"
    terminal = _open(terminals, ["bash", "-c", command], config)
    assert terminal.wait() == 0
    lines = terminal.output.splitlines()
    assert "from a pipe" in lines
    stats = next(line for line in lines if "tokens/s" in line)
    assert "TTFT" in stats
    assert "usage: 3 in, 3 out, 6 total" in stats


def test_a_prompt_argument_and_piped_text_are_joined(
    config: dict[str, str], terminals: list[Terminal]
) -> None:
    command = f"printf 'piped text' | {shlex.join(sipp('query', '-e', 'echo', 'Summarise:'))}"
    terminal = _open(terminals, ["bash", "-c", command], config)
    assert terminal.wait() == 0
    assert "Summarise:\n\npiped text" in terminal.output


def test_json_prints_the_final_response(config: dict[str, str], terminals: list[Terminal]) -> None:
    terminal = _open(
        terminals, sipp("query", "-e", "echo", "-s", "be brief", "--json", "hello json"), config
    )
    assert terminal.wait() == 0
    body = terminal.output[terminal.output.index("{") : terminal.output.rindex("}") + 1]
    response = json.loads(body)
    assert response["text"] == "hello json"
    assert response["finish_reason"] == "stop"
    assert response["endpoint"] == {"kind": "scripted", "name": "echo"}
    assert response["usage"]["output_tokens"] == 2


def test_a_chat_session_with_reset_system_and_save(
    config: dict[str, str], terminals: list[Terminal], tmp_path: Path
) -> None:
    terminal = _open(terminals, sipp("chat", "-e", "echo"), config)
    terminal.expect("> ")
    terminal.line("hello there")
    # The spinner turns on the terminal until the first token arrives.
    assert "thinking" in terminal.expect("hello there\n.*hello there")
    terminal.expect("> ")
    terminal.line("/system answer in French")
    terminal.expect("system message set: answer in French")
    terminal.line("second question")
    terminal.expect("second question\n.*second question")
    terminal.line(f"/save {tmp_path / 'chat.json'}")
    terminal.expect("saved 5 messages")
    saved = json.loads((tmp_path / "chat.json").read_text())
    assert saved == [
        {"role": "system", "content": "answer in French"},
        {"role": "user", "content": "hello there"},
        {"role": "assistant", "content": "hello there"},
        {"role": "user", "content": "second question"},
        {"role": "assistant", "content": "second question"},
    ]
    terminal.line("/reset")
    terminal.expect("conversation reset")
    terminal.line(f"/save {tmp_path / 'after.json'}")
    terminal.expect("saved 1 messages")
    assert json.loads((tmp_path / "after.json").read_text()) == [saved[0]]
    terminal.ctrl_d()
    assert terminal.wait() == 0


def test_ctrl_c_mid_answer_cancels_it_and_returns_to_the_prompt(
    config: dict[str, str], terminals: list[Terminal], tmp_path: Path
) -> None:
    terminal = _open(terminals, sipp("chat", "-e", "long"), config)
    terminal.expect("> ")
    terminal.line("tell me everything")
    terminal.expect("word word word")
    terminal.ctrl_c()
    answer = terminal.expect(r"\[answer cancelled\]", timeout=5)
    assert answer.count("word") < 500  # stopped well before the end
    terminal.expect("> ")
    # The cancelled exchange is not part of the conversation.
    terminal.line(f"/save {tmp_path / 'chat.json'}")
    terminal.expect("saved 0 messages")
    # And the chat still works.
    terminal.line("/system short")
    terminal.expect("system message set")
    terminal.ctrl_d()
    assert terminal.wait() == 0


def test_errors_are_one_line_without_a_traceback(
    config: dict[str, str], terminals: list[Terminal]
) -> None:
    terminal = _open(terminals, sipp("query", "-e", "nope", "hi"), config)
    assert terminal.wait() == 2
    assert "no endpoint named 'nope' (known: echo, long)" in terminal.output
    assert "Traceback" not in terminal.output


def test_ctrl_c_during_a_query_stops_it_with_status_130(
    config: dict[str, str], terminals: list[Terminal]
) -> None:
    terminal = _open(terminals, sipp("query", "-e", "long", "go"), config)
    terminal.expect("word word")
    terminal.ctrl_c()
    assert terminal.wait(timeout=10) == 130
    assert terminal.output.count("word") < 500
    assert "Traceback" not in terminal.output
