"""``sipp query`` and ``sipp chat``: talk to any endpoint from the terminal.

Both run on ``SyncClient``: the terminal is a blocking program, and Ctrl-C
in the main thread then cancels the run being read (``caller_cancelled``)
before the ``KeyboardInterrupt`` arrives here, so a cancelled answer stops
upstream too. Answers stream to stdout; the spinner, stats and errors go to
stderr, so ``sipp query ... > file`` captures only the answer.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console

from .._errors import SippError
from .._models import TextResponse
from .._sync import SyncClient
from .._sync_run import SyncRun
from ._endpoints import EndpointsFileError, load_endpoints, resolve_descriptor

__all__ = ["ChatSession", "Target", "run_chat", "run_query"]


@dataclass(frozen=True)
class Target:
    """Which endpoint to talk to: a named one (``-e``), a model file, or a descriptor."""

    endpoint: str | None = None
    model: str | None = None
    descriptor: str | None = None

    def build(self) -> tuple[str, dict[str, Any]]:
        chosen = [v for v in (self.endpoint, self.model, self.descriptor) if v]
        if len(chosen) > 1:
            raise CliError("give only one of -e/--endpoint, --model and --descriptor")
        if self.endpoint:
            endpoints = load_endpoints()
            entry = endpoints.get(self.endpoint)
            if entry is None:
                known = ", ".join(sorted(endpoints)) or "none; see `sipp endpoints add --help`"
                raise CliError(f"no endpoint named {self.endpoint!r} (known: {known})")
            return self.endpoint, resolve_descriptor(self.endpoint, entry)
        if self.descriptor:
            try:
                loaded = json.loads(self.descriptor)
            except json.JSONDecodeError as exc:
                raise CliError(f"--descriptor is not valid JSON: {exc}") from exc
            if not isinstance(loaded, dict):
                raise CliError("--descriptor must be a JSON object")
            return "cli", loaded
        if self.model:
            return "cli", {"kind": "local", "source": self.model}
        raise CliError(
            "say which model: -e NAME (see `sipp endpoints`), --model PATH or --descriptor JSON"
        )


class CliError(Exception):
    """A usage problem: printed as one line, exit status 2."""


@dataclass
class Options:
    max_tokens: int | None = None
    temperature: float | None = None

    def as_kwargs(self) -> dict[str, Any]:
        options: dict[str, Any] = {"emit_tokens": True}
        if self.max_tokens is not None:
            options["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            options["temperature"] = self.temperature
        return options


def _open(target: Target) -> SyncClient:
    name, descriptor = target.build()
    client = SyncClient(show_progress=True)
    try:
        client.add(name, descriptor)
    except BaseException:
        client.close()
        raise
    return client


@contextmanager
def _spinner(console: Console, active: bool) -> Iterator[Any]:
    """A spinner on stderr until the first token (only on a terminal)."""
    if not active or not console.is_terminal:
        yield None
        return
    with console.status("[dim]thinking…[/dim]", spinner="dots") as status:
        yield status


def stream_answer(run: SyncRun, out: Any, err: Console, *, spinner: bool = True) -> TextResponse:
    """Print the run's text as it arrives; the spinner turns until the first batch."""
    batches = iter(run.tokens)
    with _spinner(err, spinner):
        first = next(batches, None)
    if first is not None:
        out.write(first.text)
        out.flush()
        for batch in batches:
            out.write(batch.text)
            out.flush()
    return run.response()


def _stats_line(response: TextResponse) -> str:
    timings, usage = response.timings, response.usage
    parts = []
    if timings.tokens_per_second is not None:
        parts.append(f"{timings.tokens_per_second:.1f} tokens/s")
    if timings.time_to_first_token is not None:
        parts.append(f"TTFT {timings.time_to_first_token * 1000:.0f} ms")
    if timings.total is not None:
        parts.append(f"total {timings.total:.2f} s")
    parts.append(
        f"usage: {_n(usage.input_tokens)} in, {_n(usage.output_tokens)} out, "
        f"{_n(usage.total_tokens)} total"
    )
    parts.append(f"finish: {response.finish_reason}")
    return " · ".join(parts)


def _n(value: int | None) -> str:
    return "?" if value is None else str(value)


def run_query(
    target: Target,
    prompt: str,
    *,
    system: str | None,
    options: Options,
    as_json: bool,
    stats: bool,
) -> int:
    err = Console(stderr=True)
    with _open(target) as client:
        ref = next(iter(client.endpoints.values()))
        if system is not None or not ref.capabilities.query:
            messages = [{"role": "user", "content": prompt}]
            if system is not None:
                messages.insert(0, {"role": "system", "content": system})
            run = client.chat(messages, **options.as_kwargs())
        else:
            run = client.query(prompt, **options.as_kwargs())
        if as_json:
            response = run.response()
            sys.stdout.write(msgspec.json.format(msgspec.json.encode(response)).decode() + "\n")
        else:
            response = stream_answer(run, sys.stdout, err)
            sys.stdout.write("\n")
        sys.stdout.flush()
        if stats:
            err.print(_stats_line(response), highlight=False, markup=False, soft_wrap=True)
    return 0


_HELP = """\
Commands: /reset (forget the conversation), /system TEXT (set the system message),
/save FILE (the conversation as JSON), /help, /exit. Ctrl-C stops an answer; Ctrl-D ends."""


@dataclass
class ChatSession:
    """The conversation and the slash commands; the terminal loop is in ``run_chat``."""

    system: str | None = None
    history: list[dict[str, str]] = field(default_factory=list)

    def messages(self) -> list[dict[str, str]]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + self.history

    def command(self, line: str) -> str | None:
        """Run a slash command; returns what to tell the user, or ``None`` to end the chat."""
        name, _, argument = line.partition(" ")
        argument = argument.strip()
        if name in ("/exit", "/quit"):
            return None
        if name == "/reset":
            self.history.clear()
            return "conversation reset"
        if name == "/system":
            self.system = argument or None
            return f"system message set: {argument}" if argument else "system message cleared"
        if name == "/save":
            if not argument:
                return "usage: /save FILE"
            path = Path(argument).expanduser()
            try:
                path.write_text(json.dumps(self.messages(), indent=2) + "\n", encoding="utf-8")
            except OSError as exc:
                return f"cannot save: {exc}"
            return f"saved {len(self.messages())} messages to {path}"
        if name == "/help":
            return _HELP
        return f"unknown command {name}; /help lists them"


def run_chat(target: Target, *, system: str | None, options: Options) -> int:
    err = Console(stderr=True)
    session = ChatSession(system=system)
    with _open(target) as client:
        err.print(
            "Chatting. /help for commands; Ctrl-C stops an answer, Ctrl-D ends.",
            style="dim",
            highlight=False,
        )
        while True:
            try:
                line = input("> ")
            except EOFError:
                err.print()
                return 0
            except KeyboardInterrupt:
                err.print()
                return 130
            line = line.strip()
            if not line:
                continue
            if line.startswith("/"):
                reply = session.command(line)
                if reply is None:
                    return 0
                err.print(reply, style="dim", highlight=False, markup=False)
                continue
            session.history.append({"role": "user", "content": line})
            try:
                run = client.chat(session.messages(), **options.as_kwargs())
                response = stream_answer(run, sys.stdout, err)
            except KeyboardInterrupt:
                # The run was cancelled before this arrived; forget the question too,
                # so the next one is not answered in the shadow of a half answer.
                session.history.pop()
                sys.stdout.write("\n")
                err.print("[answer cancelled]", style="yellow", markup=False, highlight=False)
                continue
            except SippError as exc:
                session.history.pop()
                sys.stdout.write("\n")
                err.print(f"error: {type(exc).__name__}: {exc}", style="red", markup=False)
                continue
            sys.stdout.write("\n")
            sys.stdout.flush()
            session.history.append({"role": "assistant", "content": response.text})


def report_error(exc: BaseException) -> int:
    """One line on stderr, no traceback; the exit status for the error's kind."""
    err = Console(stderr=True)
    if isinstance(exc, CliError | EndpointsFileError):
        err.print(f"sipp: {exc}", markup=False, highlight=False)
        return 2
    err.print(f"sipp: {type(exc).__name__}: {exc}", markup=False, highlight=False)
    return 1
