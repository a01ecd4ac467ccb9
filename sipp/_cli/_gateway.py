"""``sipp gateway serve|check --config FILE``: delegates to the ``sipp-gateway-server`` app.

The gateway server is its own distribution (``apps/gateway-server``), so the
core installs no server code; this command only forwards its words to it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["gateway_main"]

INSTALL_HINT = (
    "sipp gateway: the gateway server is not installed; install the sipp-gateway-server "
    "distribution (from a checkout: pip install -e apps/gateway-server)"
)


def gateway_main(argv: Sequence[str]) -> int:
    """Run ``sipp gateway <argv>``; 2 with an install hint when the server is missing."""
    try:
        from sipp_gateway_server import command_main
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] != "sipp_gateway_server":
            raise  # the server is installed but broken: show the real error
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    try:
        status: int = command_main(list(argv), prog="sipp gateway")
    except SystemExit as exit_:  # argparse's usage errors and --help
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 2)
    return status
