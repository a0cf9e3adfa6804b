"""Latency as a fixed-bucket histogram: mergeable, bounded, known resolution.

The live statistics must not hold one latency per request (issue #7: memory
grew with the epoch), so a variant's latency is kept as counts per bucket
plus exact ``n``, sum, min and max, which merge across workers, epochs and
SQL groups like gbstats' summaries.

A latency is first rounded to whole microseconds, ``u = floor(ms·1000 + ½)``
after clamping to ``[0, MAX_LATENCY_MS]``; the SQL aggregation
(``Ledger.epoch_traffic``) does the same IEEE operations, so both paths
give identical integers. Buckets of ``u``:

- below 100 ms: 0.1 ms wide (indices 0..999);
- 100 ms to 10 s: 1 ms wide (indices 1000..10899);
- 10 s and above: one overflow bucket (index 10900).

So a quantile is off by less than its bucket's width: < 0.1 ms below 100 ms,
< 1 ms up to 10 s; above 10 s it lies between 10 s and the exact maximum.
Means are exact to 0.5 µs (from the integer sum), min and max exactly.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ab_router.statistics.summaries import NO_DATA

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

FINE_LIMIT_US = 100_000
FINE_WIDTH_US = 100
COARSE_LIMIT_US = 10_000_000
COARSE_WIDTH_US = 1_000
FIRST_COARSE_BUCKET = FINE_LIMIT_US // FINE_WIDTH_US  # 1000
OVERFLOW_BUCKET = FIRST_COARSE_BUCKET + (COARSE_LIMIT_US - FINE_LIMIT_US) // (
    COARSE_WIDTH_US
)  # 10900
# Keeps ms·1000 well inside int64 (and a bigint in SQL); 11.6 days is no
# latency anyone measures, so nothing real is clamped.
MAX_LATENCY_MS = 1e9


def latency_us(latencies_ms: ArrayLike) -> NDArray[np.int64]:
    """Latencies rounded to whole microseconds, clamped to [0, MAX_LATENCY_MS]."""
    x = np.clip(np.asarray(latencies_ms, dtype=float), 0.0, MAX_LATENCY_MS)
    return np.floor(x * 1000.0 + 0.5).astype(np.int64)


def bucket_of(us: NDArray[np.int64]) -> NDArray[np.int64]:
    """Bucket index of each latency in microseconds (see the module docstring)."""
    return np.where(
        us < FINE_LIMIT_US,
        us // FINE_WIDTH_US,
        np.where(
            us < COARSE_LIMIT_US,
            FIRST_COARSE_BUCKET + (us - FINE_LIMIT_US) // COARSE_WIDTH_US,
            OVERFLOW_BUCKET,
        ),
    ).astype(np.int64)


def bucket_range_us(index: int) -> tuple[int, int | None]:
    """(lowest µs, width in µs) of a bucket; width None for the overflow."""
    if index < FIRST_COARSE_BUCKET:
        return index * FINE_WIDTH_US, FINE_WIDTH_US
    if index < OVERFLOW_BUCKET:
        return (
            FINE_LIMIT_US + (index - FIRST_COARSE_BUCKET) * COARSE_WIDTH_US,
            COARSE_WIDTH_US,
        )
    return COARSE_LIMIT_US, None


@dataclass(frozen=True)
class LatencySummary:
    """Latency of answered requests in milliseconds."""

    n: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    error: str | None = None


@dataclass(frozen=True)
class LatencyHistogram:
    """Counts per latency bucket with exact ``n``, sum (µs), min and max (ms)."""

    n: int = 0
    sum_us: int = 0
    min_ms: float = math.inf
    max_ms: float = -math.inf
    buckets: tuple[tuple[int, int], ...] = ()
    """(bucket index, count) pairs, sorted by index, counts > 0."""

    def __add__(self, other: LatencyHistogram) -> LatencyHistogram:
        counts = Counter(dict(self.buckets))
        counts.update(dict(other.buckets))
        return LatencyHistogram(
            self.n + other.n,
            self.sum_us + other.sum_us,
            min(self.min_ms, other.min_ms),
            max(self.max_ms, other.max_ms),
            tuple(sorted(counts.items())),
        )

    @classmethod
    def from_values(cls, latencies_ms: ArrayLike) -> LatencyHistogram:
        x = np.asarray(latencies_ms, dtype=float).ravel()
        x = x[~np.isnan(x)]  # not a latency; the ledger never stores one
        if x.size == 0:
            return cls()
        us = latency_us(x)
        index, counts = np.unique(bucket_of(us), return_counts=True)
        return cls(
            int(x.size),
            int(us.sum()),
            float(x.min()),
            float(x.max()),
            tuple(zip(index.tolist(), counts.tolist(), strict=True)),
        )

    @property
    def mean_ms(self) -> float:
        return self.sum_us / self.n / 1000.0 if self.n else math.nan

    def percentiles(self, q: Sequence[float]) -> tuple[float, ...]:
        """``np.percentile(values, q)`` (linear method) estimated from buckets.

        The smallest and largest values are exact; any other order statistic
        is placed inside its bucket as if the bucket's values were spread
        evenly, then clamped to [min, max]. Each is off by less than its
        bucket's width, and so is an interpolation between two of them.
        """
        if self.n == 0:
            return tuple(math.nan for _ in q)
        index = [b for b, _ in self.buckets]
        counts = np.array([c for _, c in self.buckets], dtype=np.int64)
        ends = np.cumsum(counts)

        def order_statistic(j: int) -> float:
            if j in (0, self.n - 1):  # the extremes are known exactly
                return self.min_ms if j == 0 else self.max_ms
            k = int(np.searchsorted(ends, j, side="right"))
            low_us, width_us = bucket_range_us(index[k])
            # A bucket of u holds latencies in [u - ½, u + width - ½) µs.
            low = (low_us - 0.5) / 1000.0
            high = self.max_ms if width_us is None else low + width_us / 1000.0
            rank = j - (int(ends[k]) - int(counts[k]))
            estimate = low + (high - low) * (rank + 0.5) / int(counts[k])
            return min(max(estimate, self.min_ms), self.max_ms)

        out = []
        for percent in q:
            h = (self.n - 1) * percent / 100.0
            lo = math.floor(h)
            hi = min(lo + 1, self.n - 1)
            below = order_statistic(lo)
            out.append(below + (h - lo) * (order_statistic(hi) - below))
        return tuple(out)

    def summary(self) -> LatencySummary:
        if self.n == 0:
            nan = math.nan
            return LatencySummary(0, nan, nan, nan, nan, nan, nan, NO_DATA)
        p50, p95, p99 = self.percentiles((50, 95, 99))
        return LatencySummary(
            self.n, self.mean_ms, p50, p95, p99, self.min_ms, self.max_ms
        )


def latency_summary(latencies_ms: ArrayLike) -> LatencySummary:
    """Mean, p50/p95/p99, min and max of raw latencies, through the histogram
    (the same numbers the live statistics report for the same rows)."""
    return LatencyHistogram.from_values(latencies_ms).summary()


__all__ = [
    "LatencyHistogram",
    "LatencySummary",
    "bucket_of",
    "bucket_range_us",
    "latency_summary",
    "latency_us",
]
