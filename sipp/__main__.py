"""``python -m sipp`` is the ``sipp`` command."""

import sys

from ._cli import main

sys.exit(main())
