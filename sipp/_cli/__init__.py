"""The ``sipp`` command: ``drivers``, ``query`` and ``chat``.

argparse (standard library) rather than a CLI framework: the command is small,
and it keeps the core's dependencies to anyio, httpx and msgspec.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._drivers import add_drivers_command
from ._gateway import add_gateway_command
from ._talk import add_talk_commands

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sipp", description="Run language models: local GGUF files, providers, gateways."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_drivers_command(commands)
    add_talk_commands(commands)
    add_gateway_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.handler(args)
    except KeyboardInterrupt:
        return 130
    sys.stdout.flush()
    return status
