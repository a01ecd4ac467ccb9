"""``sipp drivers``: what is installed, and whether each driver loads."""

from __future__ import annotations

from .._errors import SippError
from .._registry import installed_drivers, load_driver

__all__ = ["list_drivers"]


def list_drivers(*, strict: bool) -> int:
    """Print one line per installed driver; with ``strict``, a failed load is exit status 1."""
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
    return 1 if failed and strict else 0
