"""The ``sipp`` command's parser (click) and its subcommands.

Imported only by ``sipp._cli.main`` once it knows the ``cli`` extra (click,
rich, tomli-w) is installed; ``import sipp`` never loads it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from .._errors import SippError
from ._endpoints import (
    EndpointsFileError,
    endpoints_path,
    load_endpoints,
    save_endpoints,
    validate_entry,
)

__all__ = ["cli", "run"]

F = TypeVar("F", bound=Callable[..., Any])


def _guarded(command: Callable[[], int]) -> int:
    """Run a command; Sipp and usage errors become one line on stderr, never a traceback."""
    from ._talk import CliError, report_error

    try:
        return command()
    except (SippError, EndpointsFileError, CliError) as exc:
        return report_error(exc)
    except KeyboardInterrupt:
        # The run being read was already cancelled (SyncClient does that); the
        # conventional status of a program stopped by Ctrl-C, not click's "Aborted!".
        print(file=sys.stderr)
        return 130


def _target_options(function: F) -> F:
    decorators = [
        click.option("-e", "--endpoint", help="a named endpoint (see `sipp endpoints list`)"),
        click.option("--model", help="path to a local .gguf model"),
        click.option("--descriptor", help="an endpoint descriptor as JSON (any kind)"),
        click.option("--max-tokens", type=click.IntRange(min=1), default=None),
        click.option("--temperature", type=click.FloatRange(min=0), default=None),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sipp", prog_name="sipp")
def cli() -> None:
    """Run language models: local GGUF files, providers, gateways."""


@cli.command()
@click.option("--strict", is_flag=True, help="exit non-zero when a driver fails to load")
def drivers(strict: bool) -> None:
    """List installed drivers and whether each loads."""
    from ._drivers import list_drivers

    sys.exit(list_drivers(strict=strict))


@cli.command()
@click.argument("prompt", required=False)
@click.option("-s", "--system", help="a system message (asks as a chat)")
@click.option("--json", "as_json", is_flag=True, help="print the final response as JSON")
@click.option("--stats", is_flag=True, help="print tokens/s, time to first token and usage")
@_target_options
def query(
    prompt: str | None,
    system: str | None,
    as_json: bool,
    stats: bool,
    endpoint: str | None,
    model: str | None,
    descriptor: str | None,
    max_tokens: int | None,
    temperature: float | None,
) -> None:
    """Answer one PROMPT, streaming; piped stdin is the prompt (or is appended to it)."""
    from ._talk import CliError, Options, Target, run_query

    def command() -> int:
        text = prompt
        if not sys.stdin.isatty():
            piped = sys.stdin.read().rstrip()
            text = f"{prompt}\n\n{piped}" if prompt and piped.strip() else (prompt or piped)
        if not text or not text.strip():
            raise CliError("no prompt: give PROMPT or pipe it on stdin")
        return run_query(
            Target(endpoint, model, descriptor),
            text,
            system=system,
            options=Options(max_tokens, temperature),
            as_json=as_json,
            stats=stats,
        )

    sys.exit(_guarded(command))


@cli.command()
@click.option("-s", "--system", help="a system message to start the conversation")
@_target_options
def chat(
    system: str | None,
    endpoint: str | None,
    model: str | None,
    descriptor: str | None,
    max_tokens: int | None,
    temperature: float | None,
) -> None:
    """An interactive chat that keeps the conversation (/help lists its commands)."""
    from ._talk import Options, Target, run_chat

    sys.exit(
        _guarded(
            lambda: run_chat(
                Target(endpoint, model, descriptor),
                system=system,
                options=Options(max_tokens, temperature),
            )
        )
    )


@cli.group()
def endpoints() -> None:
    """Named endpoints, kept in the user's config directory (secrets only as env var names)."""


@endpoints.command("list")
@click.option("--json", "as_json", is_flag=True, help="print the entries as JSON")
def endpoints_list(as_json: bool) -> None:
    """Show the named endpoints and whether their secrets' variables are set."""
    import os

    from rich.console import Console
    from rich.table import Table

    def command() -> int:
        entries = load_endpoints()
        if as_json:
            print(json.dumps(entries, indent=2, sort_keys=True))
            return 0
        console = Console()
        if not entries:
            console.print(f"no named endpoints yet ({endpoints_path()})", highlight=False)
            return 0
        table = Table(title=str(endpoints_path()), title_justify="left")
        for column in ("name", "kind", "what", "secret from"):
            table.add_column(column)
        for name, entry in sorted(entries.items()):
            what = entry.get("model") or entry.get("target") or entry.get("source") or ""
            if entry.get("provider"):
                what = f"{entry['provider']}: {what}"
            secrets = [
                f"{var} ({'set' if os.environ.get(var) else 'NOT SET'})"
                for var in _env_names(entry)
            ]
            table.add_row(name, str(entry["kind"]), str(what), ", ".join(secrets) or "-")
        console.print(table)
        return 0

    sys.exit(_guarded(command))


def _env_names(table: dict[str, Any]) -> list[str]:
    names = []
    for key, value in table.items():
        if key.endswith("_env") and isinstance(value, str):
            names.append(value)
        elif isinstance(value, dict):
            names.extend(_env_names(value))
    return names


def _parse_set(items: Sequence[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--set")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw  # a bare string
        table = values
        *parents, leaf = key.split(".")
        for parent in parents:
            table = table.setdefault(parent, {})
        table[leaf] = value
    return values


@endpoints.command("add")
@click.argument("name")
@click.option(
    "--kind", required=True, help="local, provider, gateway, or a plugin's kind (e.g. scripted)"
)
@click.option("--provider", help="for kind=provider: openai, anthropic, openai_compatible, ...")
@click.option("--model", help="the provider's model name")
@click.option("--source", help="for kind=local: path to the .gguf file")
@click.option("--base-url", help="the provider's or gateway's base URL")
@click.option("--target", help="for kind=gateway: the gateway's target name")
@click.option("--api-key-env", help="NAME of the environment variable holding the API key")
@click.option(
    "--token-env", help="for kind=gateway: NAME of the environment variable holding a bearer token"
)
@click.option("--set", "settings", multiple=True, help="any other descriptor key: KEY=VALUE")
@click.option("--force", is_flag=True, help="replace an existing endpoint of that name")
def endpoints_add(
    name: str,
    kind: str,
    provider: str | None,
    model: str | None,
    source: str | None,
    base_url: str | None,
    target: str | None,
    api_key_env: str | None,
    token_env: str | None,
    settings: tuple[str, ...],
    force: bool,
) -> None:
    """Save an endpoint as NAME, for `sipp query -e NAME` and `sipp chat -e NAME`."""

    def command() -> int:
        entries = load_endpoints()
        if name in entries and not force:
            raise EndpointsFileError(f"an endpoint named {name!r} exists; --force replaces it")
        entry: dict[str, Any] = {"kind": kind}
        # A model file is saved as an absolute path, so the name works from any directory.
        path = None if source is None else str(Path(source).expanduser().resolve())
        fields = {
            "provider": provider,
            "model": model,
            "source": path,
            "base_url": base_url,
            "target": target,
            "api_key_env": api_key_env,
        }
        entry.update({key: value for key, value in fields.items() if value is not None})
        if token_env is not None:
            entry["authentication"] = {"kind": "bearer", "value_env": token_env}
        entry.update(_parse_set(settings))
        entries[name] = validate_entry(name, entry)
        print(f"saved endpoint {name!r} in {save_endpoints(entries)}")
        return 0

    sys.exit(_guarded(command))


@endpoints.command("remove")
@click.argument("name")
def endpoints_remove(name: str) -> None:
    """Forget the endpoint NAME."""

    def command() -> int:
        entries = load_endpoints()
        if entries.pop(name, None) is None:
            raise EndpointsFileError(f"no endpoint named {name!r}")
        save_endpoints(entries)
        print(f"removed endpoint {name!r}")
        return 0

    sys.exit(_guarded(command))


@cli.command(
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def gateway(args: tuple[str, ...]) -> None:
    """Run or check the standalone gateway (`sipp gateway --help`)."""
    from ._gateway import gateway_main

    sys.exit(gateway_main(list(args)))


def run(argv: Sequence[str] | None) -> int:
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="sipp")
    except SystemExit as exit:
        code = exit.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0
