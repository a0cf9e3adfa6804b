"""churn-ab: two churn models, each its own BentoML service, behind an A/B entry.

Only wiring lives here; the logic is in ``serving`` (HTTP glue), ``ab_router``
(experiment engine) and ``churn_features`` (schema and encoding).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import bentoml
import numpy as np
from bentoml._internal.configuration.containers import BentoMLContainer
from bentoml.models import BentoModel
from bentoml.validators import ContentType
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse

from ab_router.config import CHALLENGER, CHAMPION
from churn_features.customer import Customer
from serving.access import access_control, announce
from serving.allocator import settle_heap
from serving.api_models import (
    BatchRequest,
    BatchResponse,
    ExplainResponse,
    FeedbackBatch,
    FeedbackBatchResult,
    FeedbackItem,
    FeedbackResult,
    PredictionResponse,
)
from serving.docs_page import OPENAPI_PAGE
from serving.entry import EntryApp
from serving.experiment_page import experiment_page_response
from serving.explain_path import parse_variants
from serving.http_errors import install_error_handler, json_errors
from serving.ledger_metrics import ledger_metrics_text
from serving.metrics import ModelServiceMetrics, ServiceMetrics, render_families
from serving.metrics_dir import this_instance_dir
from serving.metrics_self_check import MetricsSelfCheck, self_check_families
from serving.model_calls import remote_scorer
from serving.model_runtime.scorer import ModelScorer
from serving.model_runtime.store import describe_model, load_pipeline, load_scorer
from serving.request_guard import RequestGuardMiddleware
from serving.settings import observability_config
from serving.startup import configuration_errors_exit, start_up

# Before BentoML resolves its multiprocess directory (the `bentoml serve`
# process imports this file first): each instance wipes only its own, so a
# second server on this BENTOML_HOME cannot freeze the first one's /metrics.
# Workers import it too; only the serving process ever reads the value.
BentoMLContainer.prometheus_multiproc_dir.set(
    str(this_instance_dir(Path(BentoMLContainer.bentoml_home.get())))
)

# Exits with one line on stderr when the configuration is wrong. The serve
# process (no worker index) checks the variable names for everyone.
settings = start_up(first_process=bentoml.server_context.worker_index is None)
with configuration_errors_exit():
    ACCESS = access_control(settings.access, settings.entry.entry_workers)

_MODEL_TRAFFIC = {"timeout": settings.entry.request_timeout_s}
_OBSERVABILITY = observability_config(settings.entry)
_BATCHING = {
    "batchable": True,
    "batch_dim": 0,
    "max_batch_size": settings.models.max_batch_size,
    "max_latency_ms": settings.models.max_latency_ms,
}


class _ModelService:
    """Scores schema-code rows for one variant, in adaptive batches."""

    variant: str
    model_ref: BentoModel

    def __init__(self) -> None:
        self.scorer: ModelScorer = load_scorer(self.model_ref)
        self.metrics = ModelServiceMetrics.create()
        MetricsSelfCheck.from_environment().run_in_background()

    # Declaring the media type BentoML would infer saves it rebuilding the
    # output's JSON schema for every response: 9-15% of a model worker's CPU.
    @bentoml.api(**_BATCHING)
    def score(
        self, codes: np.ndarray
    ) -> Annotated[np.ndarray, ContentType("application/json")]:
        started = time.perf_counter()
        scores = self.scorer.score(codes)
        self.metrics.batch_size.labels(self.variant).observe(len(codes))
        self.metrics.inference_seconds.labels(self.variant).observe(
            time.perf_counter() - started
        )
        return scores


@bentoml.service(
    name=f"churn_{CHAMPION}_model",
    workers=settings.models.model_workers,
    traffic=_MODEL_TRAFFIC,
    **_OBSERVABILITY,
)
class ChurnV1Model(_ModelService):
    """The champion variant: the random forest."""

    variant = CHAMPION
    model_ref = BentoModel(settings.models.tags()[CHAMPION])


@bentoml.service(
    name=f"churn_{CHALLENGER}_model",
    workers=settings.models.model_workers,
    traffic=_MODEL_TRAFFIC,
    **_OBSERVABILITY,
)
class ChurnV2Model(_ModelService):
    """The challenger variant: the gradient boosting model."""

    variant = CHALLENGER
    model_ref = BentoModel(settings.models.tags()[CHALLENGER])


# GET and admin routes; BentoML's own /livez, /readyz, /metrics and /docs take
# precedence. Errors are answered by the same handler as the BentoML APIs'.
http = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
install_error_handler(http)


@bentoml.service(
    name="churn_ab",
    workers=settings.entry.entry_workers,
    traffic={"timeout": settings.entry.request_timeout_s},
    **_OBSERVABILITY,
)
@bentoml.asgi_app(http, path="/")
class ChurnAB:
    """Entry service: validates, routes by experiment, records, answers."""

    v1 = bentoml.depends(ChurnV1Model)
    v2 = bentoml.depends(ChurnV2Model)

    def __init__(self) -> None:
        tags = settings.models.tags()
        metrics = ServiceMetrics.create()
        self.metrics_check = MetricsSelfCheck.from_environment()
        self.metrics_check.run_in_background()
        announce(ACCESS)
        self.entry = EntryApp(
            settings,
            scorers={
                CHAMPION: remote_scorer(self.v1, settings.entry),
                CHALLENGER: remote_scorer(self.v2, settings.entry),
            },
            model_descriptions={v: describe_model(t) for v, t in tags.items()},
            metrics=metrics,
            metrics_check=self.metrics_check,
            load_pipeline=load_pipeline,
        )
        self.requests = self.entry.requests
        self.statistics = self.entry.statistics

    @bentoml.api(route="/predict", input_spec=Customer)
    @json_errors
    async def predict(self, **customer: Any) -> PredictionResponse:
        return await self.requests.predict_one(customer, time.perf_counter())

    @bentoml.api(route="/predict_batch", input_spec=BatchRequest)
    @json_errors
    async def predict_batch(self, customers: list[Any]) -> BatchResponse:
        started = time.perf_counter()
        rows = [c.model_dump() for c in customers]
        return await self.requests.predict_batch(rows, started)

    # The same customer body as /predict; ?variants=all explains every variant.
    @bentoml.api(route="/explain", input_spec=Customer)
    @json_errors
    async def explain(self, ctx: bentoml.Context, **customer: Any) -> ExplainResponse:
        variants = parse_variants(ctx.request.query_params.get("variants"))
        return await self.entry.explanations.explain(customer, variants)

    @bentoml.api(route="/feedback", input_spec=FeedbackItem)
    @json_errors
    async def feedback(self, **item: Any) -> FeedbackResult:
        return await self.requests.feedback(FeedbackItem.model_construct(**item))

    @bentoml.api(route="/feedback_batch", input_spec=FeedbackBatch)
    @json_errors
    async def feedback_batch(self, labels: list[FeedbackItem]) -> FeedbackBatchResult:
        return await self.requests.feedback_batch(labels)

    @http.get("/")
    def index(self) -> dict[str, Any]:
        return self.entry.index()

    @http.get("/docs", include_in_schema=False)
    def docs(self) -> FileResponse:
        return FileResponse(OPENAPI_PAGE)

    @http.get("/health")
    async def health(self) -> JSONResponse:
        body = await self.entry.health()
        return JSONResponse(
            body, status_code=200 if body["status"] == "healthy" else 503
        )

    @http.get("/models")
    def models(self) -> dict[str, Any]:
        return self.entry.models()

    @http.get("/ab-test/stats")
    async def ab_test_stats(self) -> dict[str, Any]:
        return await self.statistics.stats()

    @http.get("/ab-test/", include_in_schema=False)
    async def ab_test_page(self) -> HTMLResponse:
        return await experiment_page_response(self.statistics)

    @http.get("/ab-test/report")
    async def ab_test_report(self, epoch: int | None = None) -> dict[str, Any]:
        return await self.statistics.report(epoch)

    @http.get("/ab-test/drift")
    async def ab_test_drift(
        self, epoch: int | None = None, hours: int | None = None
    ) -> dict[str, Any]:
        return await self.entry.drift.report(epoch, hours)

    @http.get("/ab-test/transitions")
    def ab_test_transitions(self) -> list[dict[str, Any]]:
        return self.statistics.transitions()

    # Admin: one entry point; the bearer token is checked before the body.
    @http.post("/ab-test/{action}")
    async def ab_test_admin(self, action: str, request: Request) -> dict[str, Any]:
        authorization = request.headers.get("authorization")
        body = await request.body()
        return await self.entry.control.handle(action, authorization, body)

    async def __is_ready__(self) -> bool:
        return await self.entry.is_ready()

    def __metrics__(self, content: str) -> str:
        writers = settings.entry.entry_workers + 2 * settings.models.model_workers
        return (
            content
            + ledger_metrics_text(self.statistics, self.entry.model_descriptions)
            + render_families(self_check_families(self.metrics_check.check(), writers))
            + render_families(self.entry.drift.metric_families())
        )

    @bentoml.on_shutdown
    def _flush_drift_counts(self) -> None:
        self.entry.close()


ChurnAB.add_asgi_middleware(  # type: ignore[attr-defined]
    RequestGuardMiddleware, max_body_bytes=settings.entry.max_body_bytes, access=ACCESS
)


settle_heap()
