"""``python -m training``: the same command line as ``churn-train``."""

from __future__ import annotations

from training.cli import main

raise SystemExit(main())
