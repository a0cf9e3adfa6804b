"""The Prometheus counters of answered predictions, counted per request."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ab_router.records import Exposure
from serving.metrics import ServiceMetrics


def count_predictions(
    metrics: ServiceMetrics, exposures: Sequence[Exposure], latency_s: float
) -> None:
    """Count one request's recorded ``exposures`` and observe its latency."""
    # One increment per label set, not per row: a 10,000-row batch paid
    # 7 us a row for per-row increments.
    answered = Counter(e.variant for e in exposures)
    by_class = Counter((e.variant, str(e.prediction)) for e in exposures)
    assigned = Counter(
        (e.experiment, e.assigned_variant, e.unit_kind.value) for e in exposures
    )
    fallbacks = Counter(
        (e.experiment, e.assigned_variant, e.variant) for e in exposures if e.fallback
    )
    for variant, n in answered.items():
        metrics.predictions.labels(variant).inc(n)
        # Once per request and answering variant: every row of a batch has
        # the batch's latency, and n copies of it would swamp the /predict
        # latency quantiles that the SLO alert reads.
        metrics.latency.labels(variant).observe(latency_s)
    for class_labels, n in by_class.items():
        metrics.churn_predictions.labels(*class_labels).inc(n)
    for assignment_labels, n in assigned.items():
        metrics.assignments.labels(*assignment_labels).inc(n)
    for fallback_labels, n in fallbacks.items():
        metrics.fallbacks.labels(*fallback_labels).inc(n)
