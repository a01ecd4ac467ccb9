"""The ``sipp`` command: ``drivers``, ``query``, ``chat``, ``endpoints`` and ``gateway``.

Its parser and terminal output (click, rich) come with the ``cli`` extra, so
the core keeps its few dependencies; without the extra, ``sipp`` says how to
install it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

INSTALL_HINT = "the sipp command needs its extra: pip install 'sipp[cli]'"


def main(argv: Sequence[str] | None = None) -> int:
    try:
        import click  # noqa: F401
        import rich  # noqa: F401
        import tomli_w  # noqa: F401
    except ImportError as exc:
        print(f"sipp: {INSTALL_HINT} (missing: {exc.name})", file=sys.stderr)
        return 2
    from ._app import run

    try:
        status = run(argv)
    except KeyboardInterrupt:
        return 130
    sys.stdout.flush()
    return status
