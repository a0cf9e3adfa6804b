"""``python -m ab_router``: see :mod:`ab_router.cli`."""

from __future__ import annotations

import sys

from ab_router.cli import main

if __name__ == "__main__":
    sys.exit(main())
