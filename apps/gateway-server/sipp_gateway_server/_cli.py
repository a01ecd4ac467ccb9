"""``sipp-gateway serve|check --config FILE`` (also ``sipp gateway ...`` when installed).

argparse, like the core's command: two actions with one option each need no
framework, and the core's ``sipp gateway`` delegates here with its argv.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _check(config: str) -> int:
    from ._checks import check_config

    problems = check_config(config)
    for problem in problems:
        print(problem.format(config), file=sys.stderr)
    errors = sum(not p.warning for p in problems)
    warnings = len(problems) - errors
    if errors:
        print(f"{config}: {errors} error(s), {warnings} warning(s)", file=sys.stderr)
        return 1
    print(f"{config}: ok ({warnings} warning(s))")
    return 0


def _serve(config: str) -> int:
    from ._app import create_app
    from ._config import ConfigError
    from ._serve import run_gateway

    try:
        app = create_app(config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem.format(config), file=sys.stderr)
        return 1
    return run_gateway(app)


def build_parser(prog: str = "sipp-gateway") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="The standalone Sipp gateway server.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    serve = actions.add_parser("serve", help="serve the gateway (public and management listeners)")
    serve.add_argument("--config", required=True, help="the gateway's TOML configuration")
    check = actions.add_parser(
        "check", help="validate a configuration without loading models or binding ports"
    )
    check.add_argument("--config", required=True, help="the gateway's TOML configuration")
    return parser


def main(argv: Sequence[str] | None = None, *, prog: str = "sipp-gateway") -> int:
    """Run the command; the exit status (argparse exits 2 itself on a usage error)."""
    args = build_parser(prog).parse_args(argv)
    try:
        status = _serve(args.config) if args.action == "serve" else _check(args.config)
    except KeyboardInterrupt:
        return 130
    sys.stdout.flush()
    return status
