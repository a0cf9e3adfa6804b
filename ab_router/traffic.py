"""Per-variant traffic view of one epoch: counts, shares, latency, churn rate."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ab_router.state import ExperimentState
from ab_router.statistics.exposure_arrays import ExposureArrays
from ab_router.statistics.latency import LatencySummary
from ab_router.statistics.traffic_summary import EpochTraffic


def latency_view(summary: LatencySummary) -> dict[str, float | None]:
    """Mean, p50/p95/p99, min and max in ms; ``None`` when there is no data."""
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
    state: ExperimentState, traffic: EpochTraffic, labels: Mapping[str, int]
) -> dict[str, Any]:
    """What ``GET /ab-test/stats`` shows for the state's current epoch.

    Counts are by answering variant; fallbacks are listed separately so the
    experiment's statistics can leave them out. ``labels`` counts the
    labelled exposures per answering variant, fallbacks included
    (``EpochRollup.labels``, or :func:`labels_by_variant` of rows).
    """
    weights = state.effective_weights
    total = traffic.requests
    variants: dict[str, Any] = {}
    for variant in sorted(set(weights) | set(traffic.counts("variant"))):
        mine = traffic.where(variant=variant)
        n = mine.requests
        variants[variant] = {
            "requests": n,
            "traffic_pct": 100.0 * n / total if total else 0.0,
            "configured_weight": weights.get(variant, 0.0),
            "fallbacks_answered": mine.where(fallback=True).requests,
            "predicted_churn_rate": mine.predicted_churn / n if n else None,
            "labelled": int(labels.get(variant, 0)),
            "latency_ms": latency_view(mine.latency.summary()),
        }
    return {
        **state.to_dict(),
        "total_requests": total,
        "variants": variants,
    }


def labels_by_variant(labelled: ExposureArrays) -> dict[str, int]:
    """Labelled rows per answering variant, fallbacks included."""
    names, counts = np.unique(labelled.variant[labelled.labelled], return_counts=True)
    return dict(zip(names.tolist(), counts.tolist(), strict=True))
