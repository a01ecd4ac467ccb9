"""``sipp drivers``: what is installed, and whether each driver loads."""

from __future__ import annotations

import argparse
from typing import Any

from .._errors import SippError
from .._registry import installed_drivers, load_driver


def _list(args: argparse.Namespace) -> int:
    infos = installed_drivers()
    if not infos:
        print("no drivers installed")
        return 0
    width = max(len(info.name) for info in infos)
    failed = 0
    for info in infos:
        try:
            load_driver(info.name)
            state = "ok"
        except SippError as exc:
            failed += 1
            state = f"FAILED: {exc}"
        origin = info.distribution or info.source
        print(f"{info.name:<{width}}  {origin:<24}  {state}")
    return 1 if failed and args.strict else 0


def add_drivers_command(commands: Any) -> None:
    parser = commands.add_parser("drivers", help="list installed drivers and whether each loads")
    parser.add_argument(
        "--strict", action="store_true", help="exit non-zero when a driver fails to load"
    )
    parser.set_defaults(handler=_list)
