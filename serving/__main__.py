"""``python -m serving``: see :mod:`serving.cli`."""

from __future__ import annotations

import sys

from serving.cli import main

if __name__ == "__main__":
    sys.exit(main())
