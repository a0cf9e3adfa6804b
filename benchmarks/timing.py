"""The one in-process timer the micro benchmarks share."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(call: Callable[[], object], budget_s: float = 0.5) -> float:
    """Median seconds per call over ~budget_s (at least 5 calls, one warm-up)."""
    call()
    samples: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(samples) < 5 or time.perf_counter() < deadline:
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)
