"""The entry service's parts, built once per worker, and its read-only views.

BentoML-free: it gets the model scorers and model descriptions handed in, so
tests can build it around real models loaded in-process. Each concern is its
own object: ``requests`` (predict, feedback), ``explanations`` (explain,
never recorded), ``drift`` (PSI and concept drift, counted by
``drift_recorder``), ``statistics`` (stats, report,
gauges), ``control`` (admin changes) and ``canary`` (automatic stages).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse

from ab_router.ledger import Ledger, open_ledger
from serving.admin_auth import BearerAuth
from serving.canary_scheduler import CanaryScheduler
from serving.drift_monitor import DriftMonitor, load_references
from serving.drift_recorder import DriftRecorder
from serving.experiment_control import ExperimentControl
from serving.explain_path import ExplanationPath, PipelineLoader, no_pipelines
from serving.live_statistics import LiveStatistics
from serving.metrics import ServiceMetrics
from serving.metrics_self_check import OK, MetricsSelfCheck
from serving.model_router import Scorer
from serving.predictor import Predictor
from serving.request_path import RequestPath
from serving.settings import DriftSettings, Settings
from serving.state_cache import StateCache

API_VERSION = "0.1.0"
ENDPOINTS = {
    "POST /predict": "score one customer (A/B routed)",
    "POST /predict_batch": "score many customers, each routed on its own",
    "POST /feedback": "report a true outcome for a request or customer",
    "POST /feedback_batch": "report many outcomes",
    "POST /explain": "per-feature contributions to a customer's score (not recorded)",
    "GET /health": "liveness and model status",
    "GET /models": "served models, their metrics and current weights",
    "GET /ab-test/stats": "per-variant traffic, latency and predicted churn",
    "GET /ab-test/drift": "per-variant input drift (PSI) and concept drift",
    "GET /ab-test/": "the experiment as a page (HTML, refreshes itself)",
    "GET /metrics": "Prometheus metrics",
    "GET /docs": "OpenAPI page (BentoML)",
}


class EntryApp:
    def __init__(
        self,
        settings: Settings,
        scorers: Mapping[str, Scorer],
        model_descriptions: Mapping[str, Mapping[str, Any]],
        *,
        metrics: ServiceMetrics | None = None,
        load_pipeline: PipelineLoader = no_pipelines,
        metrics_check: MetricsSelfCheck | None = None,
        bulk_scorers: Mapping[str, Scorer] | None = None,
    ) -> None:
        self.settings = settings
        self.metrics_check = metrics_check
        self.ledger = open_ledger(settings.ledger.url(), settings.ledger.ledger_path)
        initial = self.ledger.ensure_experiment(settings.experiment)
        self.model_ids, self.model_descriptions = register_models(
            self.ledger, model_descriptions
        )
        self.state = StateCache(self.ledger, initial, settings.entry.state_refresh_s)
        tags = {v: str(d.get("tag")) for v, d in self.model_descriptions.items()}
        self.drift_recorder, self.drift = drift_parts(
            self.ledger, self.state, self.model_descriptions, tags, settings.drift
        )
        self.predictor = Predictor(
            ledger=self.ledger,
            state=self.state,
            scorers=scorers,
            settings=settings.entry,
            metrics=metrics,
            model_ids=self.model_ids,
            drift=self.drift_recorder,
            bulk_scorers=bulk_scorers,
        )
        self.statistics, self.canary = experiment_parts(
            self.ledger, self.state, settings
        )
        self.requests = RequestPath(
            self.predictor,
            self.ledger,
            experiment=settings.experiment.name,
            max_batch_customers=settings.entry.max_batch_customers,
            after_predict=self.canary.maybe_evaluate,
            metrics=metrics,
        )
        self.explanations = ExplanationPath(self.state, tags, load_pipeline, metrics)
        self.control = ExperimentControl(
            self.ledger, self.state, BearerAuth(settings.admin.admin_token), metrics
        )
        self.started_at = time.time()

    def close(self) -> None:
        """At shutdown: add the last drift counts to the ledger."""
        self.drift_recorder.close()

    def index(self) -> dict[str, Any]:
        return {
            "name": "churn-ab",
            "version": API_VERSION,
            "description": "Telecom churn prediction, A/B-tested between two models.",
            "experiment": self.settings.experiment.name,
            "endpoints": ENDPOINTS,
        }

    async def health(self) -> dict[str, Any]:
        await self.predictor.probe_open_circuits()
        up = self.predictor.models_up()
        metrics = OK if self.metrics_check is None else self.metrics_check.check()
        return {
            "status": "healthy" if any(up.values()) else "degraded",
            "models": {
                variant: {
                    "tag": self.model_descriptions[variant].get("tag"),
                    "loaded": True,
                    "reachable": up.get(variant, False),
                }
                for variant in sorted(self.model_descriptions)
            },
            # Degraded metrics do not make the service unhealthy: it still
            # answers correctly, only its counters no longer reach /metrics.
            **metrics.to_health(),
            "uptime_s": round(time.time() - self.started_at, 3),
        }

    async def health_response(self) -> JSONResponse:
        """``health()``, answered 503 when no variant can answer."""
        body = await self.health()
        return JSONResponse(
            body, status_code=200 if body["status"] == "healthy" else 503
        )

    async def is_ready(self) -> bool:
        """Ready while at least one variant can answer (probing open circuits)."""
        await self.predictor.probe_open_circuits()
        return any(self.predictor.models_up().values())

    def models(self) -> dict[str, Any]:
        state = self.state.current()
        weights = state.effective_weights
        return {
            "experiment": state.config.name,
            "mode": state.config.mode.value,
            "models": {
                variant: {**description, "weight": weights.get(variant, 0.0)}
                for variant, description in sorted(self.model_descriptions.items())
            },
        }


def register_models(
    ledger: Ledger, descriptions: Mapping[str, Mapping[str, Any]]
) -> tuple[dict[str, int], dict[str, Mapping[str, Any]]]:
    """The ledger's id of each tagged variant's model, and the descriptions
    with that ``model_id`` added."""
    # Registered by the serve process already (serving/model_epochs.py);
    # registering is idempotent and tells this worker the ids.
    model_ids = {
        variant: ledger.register_model_version(variant, str(d["tag"]))
        for variant, d in descriptions.items()
        if d.get("tag")
    }
    described = dict(descriptions)
    for variant, model_id in model_ids.items():
        described[variant] = {**described[variant], "model_id": model_id}
    return model_ids, described


def drift_parts(
    ledger: Ledger,
    state: StateCache,
    descriptions: Mapping[str, Mapping[str, Any]],
    tags: Mapping[str, str],
    settings: DriftSettings,
) -> tuple[DriftRecorder, DriftMonitor]:
    """The started recorder that counts scored rows, and the monitor that
    reads the counts back as PSI and concept drift."""
    references = load_references(descriptions)
    recorder = DriftRecorder(
        ledger,
        references,
        tags,
        flush_s=settings.drift_flush_s,
        buffer_rows=settings.drift_buffer_rows,
    )
    recorder.start()
    monitor = DriftMonitor(ledger, state, descriptions, references, settings)
    return recorder, monitor


def experiment_parts(
    ledger: Ledger, state: StateCache, settings: Settings
) -> tuple[LiveStatistics, CanaryScheduler]:
    """The live statistics and the canary scheduler that decides on them."""
    experiment = settings.experiment_settings
    statistics = LiveStatistics(ledger, state, experiment.decision_config())
    canary = CanaryScheduler(
        ledger,
        state,
        statistics,
        experiment.canary_policy(),
        settings.entry.state_refresh_s,
    )
    return statistics, canary
