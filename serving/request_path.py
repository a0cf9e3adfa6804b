"""The request path: predictions and feedback, each counted by outcome."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ab_router.errors import AbRouterError, PayloadTooLargeError
from ab_router.ledger import LabelResult, Ledger
from serving.api_models import (
    BatchResponse,
    FeedbackBatchResult,
    FeedbackItem,
    FeedbackResult,
    PredictionResponse,
)
from serving.chunks import chunks, in_turns
from serving.metrics import ServiceMetrics
from serving.predictor import Prediction, Predictor


class RequestPath:
    def __init__(
        self,
        predictor: Predictor,
        ledger: Ledger,
        *,
        experiment: str,
        max_batch_customers: int,
        after_predict: Callable[[], None] = lambda: None,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.predictor = predictor
        self.ledger = ledger
        self.experiment = experiment
        self.max_batch_customers = max_batch_customers
        self.after_predict = after_predict
        self.metrics = metrics

    # -- predictions ---------------------------------------------------------

    async def predict_one(
        self, customer: Mapping[str, Any], started: float
    ) -> PredictionResponse:
        (prediction,) = await self._predict("predict", [customer], started)
        return prediction

    async def predict_batch(
        self, customers: Sequence[Mapping[str, Any]], started: float
    ) -> BatchResponse:
        limit = self.max_batch_customers
        if len(customers) > limit:
            self._count("predict_batch", "client_error")
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
            results = await self.predictor.predict(
                customers, started, bulk=endpoint == "predict_batch"
            )
        except AbRouterError as exc:
            self._count(endpoint, _outcome(exc))
            raise
        self._count(endpoint, "success")
        self.after_predict()
        if endpoint == "predict":
            return _responses(results)
        # A chunk at a time, so online requests run in between (#17).
        parts = await in_turns(_responses, chunks(results))
        return [response for part in parts for response in part]

    # -- feedback ------------------------------------------------------------

    async def feedback(self, item: FeedbackItem) -> FeedbackResult:
        try:
            result = await asyncio.to_thread(self._label, item)
        except AbRouterError as exc:
            self._count_feedback_error(exc)
            raise
        if self.metrics is not None:
            self.metrics.feedback.labels(result.outcome.value).inc()
        self._count("feedback", "success")
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
            self.experiment, item.customerID, item.churned, item.observed_at
        )

    # -- counting ------------------------------------------------------------

    def _count(self, endpoint: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.requests.labels(endpoint, outcome).inc()

    def _count_feedback_error(self, exc: AbRouterError) -> None:
        if self.metrics is None:
            return
        kind = {404: "unknown_id", 409: "conflict"}.get(exc.status)
        if kind is not None:
            self.metrics.feedback.labels(kind).inc()
        self._count("feedback", _outcome(exc))


def _responses(results: Sequence[Prediction]) -> list[PredictionResponse]:
    # vars(), not asdict(): the fields are flat, and asdict's deep copy
    # cost 10 us a row of a batch.
    return [PredictionResponse.model_construct(**vars(r)) for r in results]


def _outcome(exc: AbRouterError) -> str:
    if exc.status == 503:
        return "unavailable"
    return "client_error" if exc.status < 500 else "server_error"
