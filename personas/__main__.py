"""``python -m personas``: the same command line as ``personas``."""

import sys

from .cli import main

sys.exit(main())
