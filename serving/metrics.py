"""Prometheus metrics of the service.

``prometheus_client`` decides at import time whether it writes to the
multiprocess directory, and BentoML sets that directory only when a worker
starts, after ``service.py`` is imported. So nothing here imports it at module
level: ``ServiceMetrics.create()`` is called from a service's ``__init__``
(BentoML #5056 lost histograms by creating them too early).

The three seed names (``predictions_total``, ``prediction_latency_seconds``,
``churn_predictions_total``) are kept exactly; everything new is prefixed
``churn_ab_``. Gauges that describe shared state (weights, SRM, quality) are
not kept per process at all: ``ledger_gauges_text`` renders them from the
ledger at scrape time.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PREFIX = "churn_ab_"
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_BUCKETS = tuple(float(2**i) for i in range(11))  # 1 .. 1024 rows


@dataclass(frozen=True)
class ServiceMetrics:
    """The entry service's counters and histograms."""

    predictions: Any
    latency: Any
    churn_predictions: Any
    requests: Any
    assignments: Any
    fallbacks: Any
    errors: Any
    feedback: Any
    shadow_scores: Any
    model_up: Any

    @classmethod
    def create(cls) -> ServiceMetrics:
        """The process's one instance (prometheus_client refuses duplicates)."""
        return _service_metrics()

    @classmethod
    def _build(cls) -> ServiceMetrics:
        import prometheus_client as prom  # after PROMETHEUS_MULTIPROC_DIR is set

        return cls(
            predictions=prom.Counter(
                "predictions", "Predictions answered.", ["model_version"]
            ),
            latency=prom.Histogram(
                "prediction_latency_seconds",
                "End-to-end /predict latency by answering variant.",
                ["model_version"],
                buckets=LATENCY_BUCKETS,
            ),
            churn_predictions=prom.Counter(
                "churn_predictions",
                "Predictions by predicted class.",
                ["model_version", "prediction"],
            ),
            requests=prom.Counter(
                f"{PREFIX}requests",
                "Requests by endpoint and outcome.",
                ["endpoint", "outcome"],
            ),
            assignments=prom.Counter(
                f"{PREFIX}assignments",
                "Experiment assignments.",
                ["experiment", "variant", "unit"],
            ),
            fallbacks=prom.Counter(
                f"{PREFIX}fallbacks",
                "Requests answered by the other variant after a failure.",
                ["experiment", "from_variant", "to_variant"],
            ),
            errors=prom.Counter(f"{PREFIX}errors", "Errors by kind.", ["kind"]),
            feedback=prom.Counter(
                f"{PREFIX}feedback", "Outcome labels received.", ["outcome"]
            ),
            shadow_scores=prom.Counter(
                f"{PREFIX}shadow_scores",
                "Challenger scores computed in shadow mode.",
                ["experiment", "variant"],
            ),
            model_up=prom.Gauge(
                f"{PREFIX}model_up",
                "1 when this entry worker's circuit to the model service is closed.",
                ["variant"],
                multiprocess_mode="livemin",
            ),
        )


# Label values from small fixed sets are created at start so every series
# exists (at 0) before the first event: rate() and alerts see "0", not "no data".
ENDPOINTS = ("predict", "predict_batch", "feedback", "admin", "explain")
OUTCOMES = ("success", "client_error", "server_error", "unavailable")
ERROR_KINDS = ("validation", "model_timeout", "model_error", "ledger", "internal")
FEEDBACK_OUTCOMES = ("accepted", "duplicate", "conflict", "unknown_id")


@functools.cache
def count_as_writer() -> None:
    """Add this process to ``churn_ab_metrics_writers``: its sample is in the
    directory only while the process's files are (serving/metrics_self_check.py)."""
    import prometheus_client as prom  # after PROMETHEUS_MULTIPROC_DIR is set

    prom.Gauge(
        f"{PREFIX}metrics_writers",
        "Live worker processes whose metric files /metrics reads.",
        multiprocess_mode="livesum",
    ).set(1)


@functools.cache
def _service_metrics() -> ServiceMetrics:
    count_as_writer()
    metrics = ServiceMetrics._build()
    for endpoint in ENDPOINTS:
        for outcome in OUTCOMES:
            metrics.requests.labels(endpoint, outcome)
    for kind in ERROR_KINDS:
        metrics.errors.labels(kind)
    for outcome in FEEDBACK_OUTCOMES:
        metrics.feedback.labels(outcome)
    return metrics


@dataclass(frozen=True)
class ModelServiceMetrics:
    """Per-batch metrics of a model service."""

    batch_size: Any
    inference_seconds: Any

    @classmethod
    def create(cls) -> ModelServiceMetrics:
        """The process's one instance (prometheus_client refuses duplicates)."""
        return _model_service_metrics()

    @classmethod
    def _build(cls) -> ModelServiceMetrics:
        import prometheus_client as prom  # after PROMETHEUS_MULTIPROC_DIR is set

        return cls(
            batch_size=prom.Histogram(
                f"{PREFIX}batch_size",
                "Rows per adaptive batch scored by a model service.",
                ["variant"],
                buckets=BATCH_BUCKETS,
            ),
            inference_seconds=prom.Histogram(
                f"{PREFIX}model_inference_seconds",
                "Model-service time per batch.",
                ["variant"],
                buckets=LATENCY_BUCKETS,
            ),
        )


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _sample(name: str, labels: Mapping[str, str], value: float) -> str:
    rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return f"{name}{{{rendered}}} {value!r}"


@dataclass(frozen=True)
class GaugeFamily:
    name: str
    help: str
    kind: str
    samples: tuple[tuple[dict[str, str], float], ...]


def render_families(families: Iterable[GaugeFamily]) -> str:
    """Exposition text for families computed outside prometheus_client."""
    lines: list[str] = []
    for family in families:
        samples = [(lbl, v) for lbl, v in family.samples if math.isfinite(v)]
        if not samples:
            continue
        lines.append(f"# HELP {family.name} {family.help}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        lines.extend(_sample(family.name, lbl, v) for lbl, v in samples)
    return "\n".join(lines) + ("\n" if lines else "")


@functools.cache
def _model_service_metrics() -> ModelServiceMetrics:
    count_as_writer()
    return ModelServiceMetrics._build()
