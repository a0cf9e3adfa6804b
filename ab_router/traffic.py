"""Per-variant traffic view of one epoch: counts, shares, latency, churn rate."""

from __future__ import annotations

import math
from typing import Any

from numpy.typing import ArrayLike

from ab_router.state import ExperimentState
from ab_router.statistics.experiment import ExposureArrays
from ab_router.statistics.latency import latency_summary


def latency_view(latencies_ms: ArrayLike) -> dict[str, float | None]:
    """Mean, p50/p95/p99, min and max in ms; ``None`` when there is no data."""
    summary = latency_summary(latencies_ms)
    values = {
        "mean": summary.mean_ms,
        "p50": summary.p50_ms,
        "p95": summary.p95_ms,
        "p99": summary.p99_ms,
        "min": summary.min_ms,
        "max": summary.max_ms,
    }
    return {k: (v if math.isfinite(v) else None) for k, v in values.items()}


def traffic_stats(state: ExperimentState, arrays: ExposureArrays) -> dict[str, Any]:
    """What ``GET /ab-test/stats`` shows for the state's current epoch.

    Counts are by answering variant; fallbacks are listed separately so the
    experiment's statistics can leave them out.
    """
    weights = state.effective_weights
    total = len(arrays.variant)
    variants: dict[str, Any] = {}
    for variant in sorted(set(weights) | {str(v) for v in set(arrays.variant)}):
        mine = arrays.variant == variant
        n = int(mine.sum())
        variants[variant] = {
            "requests": n,
            "traffic_pct": 100.0 * n / total if total else 0.0,
            "configured_weight": weights.get(variant, 0.0),
            "fallbacks_answered": int((arrays.fallback & mine).sum()),
            "predicted_churn_rate": (
                float(arrays.prediction[mine].mean()) if n else None
            ),
            "labelled": int((arrays.labelled & mine).sum()),
            "latency_ms": latency_view(arrays.latency_ms[mine]),
        }
    return {
        **state.to_dict(),
        "total_requests": total,
        "variants": variants,
    }
