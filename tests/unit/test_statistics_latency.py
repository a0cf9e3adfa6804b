"""The latency histogram: bucket edges, merging, and quantiles within one bucket."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ab_router.statistics.latency import (
    OVERFLOW_BUCKET,
    LatencyHistogram,
    bucket_of,
    bucket_range_us,
    latency_us,
)
from ab_router.statistics.summaries import NO_DATA

Q = [0, 1, 25, 50, 90, 95, 99, 99.9, 100]


def test_bucket_edges() -> None:
    """Latencies round to whole µs (half up), then fall into their bucket."""
    cases = {
        -3.0: 0,  # clamped to 0
        0.0: 0,
        0.0994: 0,
        0.0996: 1,  # 100 µs
        0.1: 1,
        99.9: 999,
        99.9994: 999,
        99.9995: 1000,  # rounds to 100 ms, the first 1 ms bucket
        100.0: 1000,
        100.999: 1000,
        101.0: 1001,
        9_999.9994: 10_899,
        9_999.9995: OVERFLOW_BUCKET,
        10_000.0: OVERFLOW_BUCKET,
        1e12: OVERFLOW_BUCKET,
        math.inf: OVERFLOW_BUCKET,
    }
    got = bucket_of(latency_us(list(cases))).tolist()
    assert dict(zip(cases, got, strict=True)) == cases
    assert bucket_range_us(999) == (99_900, 100)
    assert bucket_range_us(1000) == (100_000, 1000)
    assert bucket_range_us(OVERFLOW_BUCKET) == (10_000_000, None)


@pytest.mark.parametrize(
    ("scale", "low", "high", "resolution"),
    [(5.0, 0, 100, 0.1), (20.0, 0, 100, 0.1), (900.0, 100, 10_000, 1.0)],
)
def test_quantiles_within_one_bucket_of_numpy(
    scale: float, low: float, high: float, resolution: float
) -> None:
    """Below 100 ms the buckets are 0.1 ms wide, up to 10 s 1 ms wide."""
    rng = np.random.default_rng(int(scale))
    x = scale * rng.lognormal(0.0, 0.6, 20_000)
    x = x[(x >= low) & (x < high)]
    h = LatencyHistogram.from_values(x)
    got = np.array(h.percentiles(Q))
    want = np.percentile(x, Q)
    assert np.all(np.abs(got - want) <= resolution), np.abs(got - want).max()
    assert got[0] == x.min() and got[-1] == x.max()  # the extremes are exact
    assert np.all(np.diff(got) >= 0)
    assert h.mean_ms == pytest.approx(x.mean(), abs=0.0005)  # whole µs


def test_overflow_quantiles_lie_between_ten_seconds_and_the_maximum() -> None:
    x = np.array([5.0] * 10 + [12_000.0, 30_000.0, 250_000.0])
    (p95,) = LatencyHistogram.from_values(x).percentiles([95])
    assert 10_000 <= p95 <= 250_000


def test_merging_equals_one_histogram_of_everything() -> None:
    rng = np.random.default_rng(3)
    x = rng.lognormal(3.0, 1.2, 5_000)
    parts = [LatencyHistogram.from_values(p) for p in np.array_split(x, 4)]
    merged = parts[0] + parts[1] + parts[2] + parts[3] + LatencyHistogram()
    assert merged == LatencyHistogram.from_values(x)
    assert merged.n == x.size and merged.min_ms == x.min() and merged.max_ms == x.max()


def test_degenerate_histograms() -> None:
    empty = LatencyHistogram.from_values([])
    assert empty == LatencyHistogram() and empty.summary().error == NO_DATA
    assert all(math.isnan(v) for v in empty.percentiles([50]))
    one = LatencyHistogram.from_values([7.25]).summary()
    assert (one.n, one.p50_ms, one.p99_ms, one.min_ms, one.mean_ms) == (
        1,
        7.25,
        7.25,
        7.25,
        7.25,
    )
