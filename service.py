"""churn-ab: two churn models, each its own BentoML service, behind an A/B entry.

Only wiring lives here; the logic is in ``serving`` (HTTP glue), ``ab_router``
(experiment engine) and ``churn_features`` (schema and encoding).
"""

from __future__ import annotations

import time
from typing import Any

import bentoml
import numpy as np
from bentoml import Context
from bentoml.models import BentoModel
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse

from ab_router.config import CHALLENGER, CHAMPION
from churn_features.customer import Customer
from serving import api_models as api
from serving.allocator import settle_heap
from serving.docs_page import OPENAPI_PAGE
from serving.entry_metrics import entry_metrics_text
from serving.experiment_page import experiment_page_response
from serving.explain_path import parse_variants
from serving.http_errors import install_error_handler, json_errors
from serving.metrics_dir import use_instance_dir
from serving.request_guard import RequestGuardMiddleware
from serving.service_options import JsonArray, batching, entry_options, model_options
from serving.settings import Placement
from serving.startup import record_models_at_deployment, start_service
from serving.workers import entry_worker, model_worker

# First: a second server on this BENTOML_HOME must not freeze our /metrics.
use_instance_dir()
# Exits with one line on stderr when the configuration is wrong.
settings, ACCESS = start_service(bentoml.server_context.worker_index)


class _ModelService:
    """Scores schema-code rows for one variant: online rows in adaptive
    batches, ``/predict_batch`` rows through their own API."""

    variant: str
    model_ref: BentoModel

    def __init__(self) -> None:
        self.model = model_worker(self.variant, self.model_ref, settings.models)

    @bentoml.api(**batching(settings.models))
    def score(self, codes: np.ndarray) -> JsonArray:
        return self.model.score(codes)

    # Not batchable: rows that arrive as a batch must not teach the dispatcher
    # of ``score`` to hold single requests back (#17). ``async`` so it does
    # not take the worker's one thread that ``score`` runs in.
    @bentoml.api
    async def score_batch(self, codes: np.ndarray) -> JsonArray:
        return await self.model.score_batch(codes)


@bentoml.service(name=f"churn_{CHAMPION}_model", **model_options(settings))
class ChurnV1Model(_ModelService):
    """The champion variant: the random forest."""

    variant = CHAMPION
    model_ref = BentoModel(settings.models.tags()[CHAMPION])


@bentoml.service(name=f"churn_{CHALLENGER}_model", **model_options(settings))
class ChurnV2Model(_ModelService):
    """The challenger variant: the gradient boosting model."""

    variant = CHALLENGER
    model_ref = BentoModel(settings.models.tags()[CHALLENGER])


# GET and admin routes; BentoML's own /livez, /readyz, /metrics and /docs take
# precedence. Errors are answered by the same handler as the BentoML APIs'.
http = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
install_error_handler(http)


@bentoml.service(name="churn_ab", **entry_options(settings))
@bentoml.asgi_app(http, path="/")
class ChurnAB:
    """Entry service: validates, routes by experiment, records, answers."""

    # Both placements reference both models here; only ``inline`` loads them.
    v1_model = BentoModel(settings.models.tags()[CHAMPION])
    v2_model = BentoModel(settings.models.tags()[CHALLENGER])
    # BentoML starts a worker pool for every dependency declared on the class,
    # so the inline placement declares none and no model pools start.
    if settings.models.model_placement is Placement.SERVICES:
        v1 = bentoml.depends(ChurnV1Model)
        v2 = bentoml.depends(ChurnV2Model)

    @bentoml.on_deployment
    def record_models() -> None:
        record_models_at_deployment(settings)

    def __init__(self) -> None:
        if settings.models.model_placement is Placement.INLINE:
            models = {CHAMPION: self.v1_model, CHALLENGER: self.v2_model}
        else:
            models = {CHAMPION: self.v1, CHALLENGER: self.v2}
        self.entry = entry_worker(settings, ACCESS, models)
        self.requests = self.entry.requests

    @bentoml.api(route="/predict", input_spec=Customer)
    @json_errors
    async def predict(self, **customer: Any) -> api.PredictionResponse:
        return await self.requests.predict_one(customer, time.perf_counter())

    @bentoml.api(route="/predict_batch", input_spec=api.BatchRequest)
    @json_errors
    async def predict_batch(self, customers: list[Any]) -> api.BatchResponse:
        started = time.perf_counter()
        rows = [c.model_dump() for c in customers]
        return await self.requests.predict_batch(rows, started)

    # The same customer body as /predict; ?variants=all explains every variant.
    @bentoml.api(route="/explain", input_spec=Customer)
    @json_errors
    async def explain(self, ctx: Context, **customer: Any) -> api.ExplainResponse:
        variants = parse_variants(ctx.request.query_params.get("variants"))
        return await self.entry.explanations.explain(customer, variants)

    @bentoml.api(route="/feedback", input_spec=api.FeedbackItem)
    @json_errors
    async def feedback(self, **item: Any) -> api.FeedbackResult:
        return await self.requests.feedback(api.FeedbackItem.model_construct(**item))

    @bentoml.api(route="/feedback_batch", input_spec=api.FeedbackBatch)
    @json_errors
    async def feedback_batch(
        self, labels: list[api.FeedbackItem]
    ) -> api.FeedbackBatchResult:
        return await self.requests.feedback_batch(labels)

    @http.get("/")
    def index(self) -> dict[str, Any]:
        return self.entry.index()

    @http.get("/docs", include_in_schema=False)
    def docs(self) -> FileResponse:
        return FileResponse(OPENAPI_PAGE)

    @http.get("/health")
    async def health(self) -> JSONResponse:
        return await self.entry.health_response()

    @http.get("/models")
    def models(self) -> dict[str, Any]:
        return self.entry.models()

    @http.get("/ab-test/stats")
    async def ab_test_stats(self) -> dict[str, Any]:
        return await self.entry.statistics.stats()

    @http.get("/ab-test/", include_in_schema=False)
    async def ab_test_page(self) -> HTMLResponse:
        return await experiment_page_response(self.entry.statistics, self.entry.drift)

    @http.get("/ab-test/report")
    async def ab_test_report(self, epoch: int | None = None) -> dict[str, Any]:
        return await self.entry.statistics.report(epoch)

    @http.get("/ab-test/drift")
    async def ab_test_drift(
        self, epoch: int | None = None, hours: int | None = None
    ) -> dict[str, Any]:
        return await self.entry.drift.report(epoch, hours)

    @http.get("/ab-test/transitions")
    def ab_test_transitions(self) -> list[dict[str, Any]]:
        return self.entry.statistics.transitions()

    # Admin: one entry point; the bearer token is checked before the body.
    @http.post("/ab-test/{action}")
    async def ab_test_admin(self, action: str, request: Request) -> dict[str, Any]:
        return await self.entry.control.handle_request(action, request)

    async def __is_ready__(self) -> bool:
        return await self.entry.is_ready()

    def __metrics__(self, content: str) -> str:
        return content + entry_metrics_text(self.entry)

    @bentoml.on_shutdown
    def _flush_drift_counts(self) -> None:
        self.entry.close()


ChurnAB.add_asgi_middleware(  # type: ignore[attr-defined]
    RequestGuardMiddleware, max_body_bytes=settings.entry.max_body_bytes, access=ACCESS
)
settle_heap()
