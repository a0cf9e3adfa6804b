"""Per-variant traffic view of one epoch: counts, shares, latency, churn rate."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ab_router.records import Exposure
from ab_router.state import ExperimentState
from ab_router.statistics.quality import latency_summary


def latency_view(latencies_ms: Sequence[float]) -> dict[str, float | None]:
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
            "latency_ms": latency_view([e.latency_ms for e in mine]),
        }
    return {
        **state.to_dict(),
        "total_requests": total,
        "variants": variants,
    }
