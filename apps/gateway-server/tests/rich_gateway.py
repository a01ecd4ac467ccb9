"""``python rich_gateway.py serve --config FILE``: the gateway, with the test driver ``rich``.

Registered in the gateway's own process, so configurations may use
``kind = "rich"`` without installing a package for a test driver.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from rich_driver import rich_driver

import sipp

sipp.register_driver("rich", rich_driver)

from sipp_gateway_server._cli import main  # noqa: E402

sys.exit(main())
