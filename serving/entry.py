"""Everything the entry service does, behind one object ``service.py`` wires up.

BentoML-free: it gets the model scorers and model descriptions handed in, so
tests can build it around real models loaded in-process.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from ab_router.errors import (
    AbRouterError,
    AdminDisabledError,
    PayloadTooLargeError,
    UnauthorizedError,
)
from ab_router.ledger import LabelResult, SqliteLedger
from ab_router.state import ExperimentState
from ab_router.traffic import traffic_stats
from serving.api_models import (
    BatchResponse,
    FeedbackBatchResult,
    FeedbackItem,
    FeedbackResult,
    PredictionResponse,
)
from serving.metrics import ServiceMetrics
from serving.predictor import Predictor, Scorer, StateCache
from serving.settings import Settings

logger = logging.getLogger("churn_ab.entry")

API_VERSION = "0.1.0"
ENDPOINTS = {
    "POST /predict": "score one customer (A/B routed)",
    "POST /predict_batch": "score many customers, each routed on its own",
    "POST /feedback": "report a true outcome for a request or customer",
    "POST /feedback_batch": "report many outcomes",
    "GET /health": "liveness and model status",
    "GET /models": "served models, their metrics and current weights",
    "GET /ab-test/stats": "per-variant traffic, latency and predicted churn",
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
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.model_descriptions = dict(model_descriptions)
        self.ledger = SqliteLedger(settings.ledger.ledger_path)
        initial = self.ledger.ensure_experiment(settings.experiment)
        self.state = StateCache(self.ledger, initial, settings.entry.state_refresh_s)
        self.predictor = Predictor(
            ledger=self.ledger,
            state=self.state,
            scorers=scorers,
            settings=settings.entry,
            metrics=metrics,
        )
        self.started_at = time.time()

    # -- predictions ---------------------------------------------------------

    async def predict_one(
        self, customer: Mapping[str, Any], started: float
    ) -> PredictionResponse:
        (prediction,) = await self._predict("predict", [customer], started)
        return prediction

    async def predict_batch(
        self, customers: Sequence[Mapping[str, Any]], started: float
    ) -> BatchResponse:
        limit = self.settings.entry.max_batch_customers
        if len(customers) > limit:
            self._count_request("predict_batch", "client_error")
            raise PayloadTooLargeError(
                f"a batch may hold at most {limit} customers, got {len(customers)}",
                field="customers",
            )
        predictions = await self._predict("predict_batch", customers, started)
        return BatchResponse(
            predictions=predictions,
            count=len(predictions),
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )

    async def _predict(
        self, endpoint: str, customers: Sequence[Mapping[str, Any]], started: float
    ) -> list[PredictionResponse]:
        try:
            results = await self.predictor.predict(customers, started)
        except AbRouterError as exc:
            self._count_request(endpoint, _outcome(exc))
            raise
        self._count_request(endpoint, "success")
        return [
            PredictionResponse.model_construct(**asdict(result)) for result in results
        ]

    # -- feedback ------------------------------------------------------------

    async def feedback(self, item: FeedbackItem) -> FeedbackResult:
        try:
            result = await asyncio.to_thread(self._label, item)
        except AbRouterError as exc:
            self._count_feedback(exc)
            raise
        self._count_feedback_ok(result)
        return FeedbackResult(
            request_id=result.request_id, outcome=result.outcome.value
        )

    async def feedback_batch(
        self, items: Sequence[FeedbackItem]
    ) -> FeedbackBatchResult:
        """Apply labels in order; the first failure stops the batch.

        Its error names ``labels[i]`` and how many were applied before it.
        Labels are idempotent, so resending the whole batch is safe.
        """
        results: list[FeedbackResult] = []
        for index, item in enumerate(items):
            try:
                results.append(await self.feedback(item))
            except AbRouterError as exc:
                exc.field = f"labels[{index}].{exc.field or 'request_id'}"
                exc.message = (
                    f"{exc.message} (labels before index {index} were applied)"
                )
                raise
        accepted = sum(r.outcome == "accepted" for r in results)
        return FeedbackBatchResult(
            results=results, accepted=accepted, duplicate=len(results) - accepted
        )

    def _label(self, item: FeedbackItem) -> LabelResult:
        if item.request_id is not None:
            return self.ledger.label_request(
                item.request_id, item.churned, item.observed_at
            )
        assert item.customerID is not None  # guaranteed by FeedbackItem
        return self.ledger.label_customer(
            self.settings.experiment.name,
            item.customerID,
            item.churned,
            item.observed_at,
        )

    # -- read-only views -----------------------------------------------------

    def index(self) -> dict[str, Any]:
        return {
            "name": "churn-ab",
            "version": API_VERSION,
            "description": "Telecom churn prediction, A/B-tested between two models.",
            "experiment": self.settings.experiment.name,
            "endpoints": ENDPOINTS,
        }

    def health(self) -> dict[str, Any]:
        up = self.predictor.models_up()
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
            "uptime_s": round(time.time() - self.started_at, 3),
        }

    def is_ready(self) -> bool:
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

    def current_state(self) -> ExperimentState:
        return self.state.current()

    async def stats(self) -> dict[str, Any]:
        state = self.state.current()
        exposures = await asyncio.to_thread(
            self.ledger.exposures, state.config.name, state.epoch
        )
        return traffic_stats(state, exposures)

    # -- admin ---------------------------------------------------------------

    def authorize(self, authorization: str | None) -> str:
        """Check a bearer token in constant time; returns the actor name."""
        token = self.settings.admin.admin_token
        if token is None:
            raise AdminDisabledError(
                "admin endpoints are disabled: set CHURN_AB_ADMIN_TOKEN to enable them",
                field="Authorization",
            )
        scheme, _, presented = (authorization or "").partition(" ")
        expected = token.get_secret_value().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode(), expected
        ):
            raise UnauthorizedError(
                "a valid 'Authorization: Bearer <token>' header is required",
                field="Authorization",
            )
        return "admin"

    # -- metrics helpers -----------------------------------------------------

    def _count_request(self, endpoint: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.requests.labels(endpoint, outcome).inc()

    def _count_feedback_ok(self, result: LabelResult) -> None:
        if self.metrics is not None:
            self.metrics.feedback.labels(result.outcome.value).inc()
            self.metrics.requests.labels("feedback", "success").inc()

    def _count_feedback(self, exc: AbRouterError) -> None:
        if self.metrics is None:
            return
        kind = {404: "unknown_id", 409: "conflict"}.get(exc.status)
        if kind is not None:
            self.metrics.feedback.labels(kind).inc()
        self.metrics.requests.labels("feedback", _outcome(exc)).inc()


def _outcome(exc: AbRouterError) -> str:
    if exc.status == 503:
        return "unavailable"
    return "client_error" if exc.status < 500 else "server_error"
