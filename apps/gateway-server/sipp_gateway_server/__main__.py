"""``python -m sipp_gateway_server serve|check --config FILE``."""

import sys

from ._cli import main

sys.exit(main())
