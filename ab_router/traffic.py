"""Per-variant traffic view of one epoch: counts, shares, latency, churn rate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ab_router.records import Exposure
from ab_router.state import ExperimentState


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float | None]:
    """Mean, p50/p95/p99, min and max in ms; ``None`` when there is no data."""
    if not latencies_ms:
        return dict.fromkeys(("mean", "p50", "p95", "p99", "min", "max"))
    values = np.asarray(latencies_ms, dtype=np.float64)
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "mean": float(values.mean()),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def traffic_stats(
    state: ExperimentState, exposures: Sequence[Exposure]
) -> dict[str, Any]:
    """What ``GET /ab-test/stats`` shows for the state's current epoch.

    Counts are by answering variant; fallbacks are listed separately so the
    experiment's statistics can leave them out.
    """
    weights = state.effective_weights
    total = len(exposures)
    variants: dict[str, Any] = {}
    for variant in sorted(set(weights) | {e.variant for e in exposures}):
        mine = [e for e in exposures if e.variant == variant]
        n = len(mine)
        variants[variant] = {
            "requests": n,
            "traffic_pct": 100.0 * n / total if total else 0.0,
            "configured_weight": weights.get(variant, 0.0),
            "fallbacks_answered": sum(e.fallback for e in mine),
            "predicted_churn_rate": (
                sum(e.prediction for e in mine) / n if n else None
            ),
            "labelled": sum(e.label is not None for e in mine),
            "latency_ms": latency_summary([e.latency_ms for e in mine]),
        }
    return {
        **state.to_dict(),
        "total_requests": total,
        "variants": variants,
    }
