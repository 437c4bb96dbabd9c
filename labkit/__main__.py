"""``python -m labkit``: see ``labkit.runner.cli``."""

import sys

from labkit.runner.cli import main

sys.exit(main())
