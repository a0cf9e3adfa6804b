"""Warm an entry worker's statistics path in the background, right at start.

``service.py`` imports no scipy: every server process would pay ~0.7 s of CPU
for it (``tests/integration/test_import_cost.py``). The statistics need it, so
the first ``/ab-test/stats`` or ``/metrics`` read in a worker imported it and
computed the first snapshot: 0.49 s measured, the p99 of a stats poll under
load. A daemon thread does both before a user asks; readiness does not wait.
"""

from __future__ import annotations

import importlib
import logging
import threading

from serving.live_statistics import LiveStatistics

__all__ = ["warm_in_background"]

logger = logging.getLogger("churn_ab.warmup")


def warm_in_background(statistics: LiveStatistics) -> threading.Thread:
    """Start (and return) the thread that imports scipy.stats and computes the
    first snapshot."""
    thread = threading.Thread(
        target=_warm, args=(statistics,), name="churn-ab-warmup", daemon=True
    )
    thread.start()
    return thread


def _warm(statistics: LiveStatistics) -> None:
    try:
        importlib.import_module("scipy.stats")
        statistics.snapshot()
    except Exception:  # a warm-up only saves time: the first read retries
        logger.warning(
            "warm-up of the live statistics failed; the first read will do it",
            exc_info=True,
        )
