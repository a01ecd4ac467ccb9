"""``sipp gateway serve|check --config FILE``: the standalone gateway."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any


def _check(args: argparse.Namespace) -> int:
    from ..gateway.server import check_config

    problems = check_config(args.config)
    for problem in problems:
        print(problem.format(args.config), file=sys.stderr)
    errors = sum(not p.warning for p in problems)
    warnings = len(problems) - errors
    if errors:
        print(f"{args.config}: {errors} error(s), {warnings} warning(s)", file=sys.stderr)
        return 1
    print(f"{args.config}: ok ({warnings} warning(s))")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from ..gateway.server import ConfigError, create_app, run_gateway

    try:
        app = create_app(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem.format(args.config), file=sys.stderr)
        return 1
    return run_gateway(app)


def add_gateway_command(commands: Any) -> None:
    parser = commands.add_parser("gateway", help="run the standalone gateway server")
    actions = parser.add_subparsers(dest="gateway_command", required=True, metavar="ACTION")
    serve = actions.add_parser("serve", help="serve the gateway (public and management listeners)")
    serve.add_argument("--config", required=True, help="the gateway's TOML configuration")
    serve.set_defaults(handler=_serve)
    check = actions.add_parser(
        "check", help="validate a configuration without loading models or binding ports"
    )
    check.add_argument("--config", required=True, help="the gateway's TOML configuration")
    check.set_defaults(handler=_check)


def gateway_main(argv: Sequence[str]) -> int:
    """``sipp gateway ARGS...``: the entry point the ``sipp`` command hands ``ARGS`` to."""
    parser = argparse.ArgumentParser(prog="sipp")
    add_gateway_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["gateway", *argv])
    status: int = args.handler(args)
    return status
