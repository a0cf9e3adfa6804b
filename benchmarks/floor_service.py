"""The framework's floor: Bentos that keep churn-ab's contract and do nothing else.

- ``Echo``: validates the customer (same input spec) and answers a constant
  prediction of the same shape, no hop, no ledger, no model.
- ``EchoHop``: the same plus one call per request to a model service that
  returns constants (same batching, media type and call sharing as churn-ab).

Served with churn-ab's settings (workers, access log, tracing). Whatever
churn-ab costs above ``EchoHop`` is its own work: assignment, the ledger and
the model; what ``EchoHop`` costs above bare Starlette is BentoML and the
architecture (an entry service and separate model services).
"""

from __future__ import annotations

import gc
from typing import Annotated, Any

import bentoml
import numpy as np
from bentoml.validators import ContentType

from churn_features.customer import Customer
from churn_features.encoding import schema_codes
from serving.api_models import BatchRequest, BatchResponse, PredictionResponse
from serving.coalescing import coalesced_scorer
from serving.settings import load_settings, observability_config

settings = load_settings()
_OBSERVABILITY = observability_config(settings.entry)
_CONSTANT = {
    "request_id": "00000000-0000-4000-8000-000000000000",
    "model_version": "floor",
    "prediction": 0,
    "churn_probability": 0.25,
    "will_churn": False,
    "confidence": 0.75,
    "latency_ms": 0.0,
    "experiment": "floor",
    "epoch": 1,
    "assigned_variant": "floor",
    "fallback": False,
    "assignment_unit": "customer",
}


def _answers(count: int) -> list[PredictionResponse]:
    return [PredictionResponse.model_construct(**_CONSTANT) for _ in range(count)]


@bentoml.service(
    name="floor_echo", workers=settings.entry.entry_workers, **_OBSERVABILITY
)
class Echo:
    @bentoml.api(route="/predict", input_spec=Customer)
    async def predict(self, **customer: Any) -> PredictionResponse:
        return _answers(1)[0]

    @bentoml.api(route="/predict_batch", input_spec=BatchRequest)
    async def predict_batch(self, customers: list[Any]) -> BatchResponse:
        return BatchResponse(
            predictions=_answers(len(customers)), count=len(customers), latency_ms=0
        )


@bentoml.service(
    name="floor_model",
    workers=settings.models.model_workers,
    traffic={"timeout": settings.entry.request_timeout_s},
    **_OBSERVABILITY,
)
class ConstantModel:
    @bentoml.api(
        batchable=True,
        batch_dim=0,
        max_batch_size=settings.models.max_batch_size,
        max_latency_ms=settings.models.max_latency_ms,
    )
    def score(
        self, codes: np.ndarray
    ) -> Annotated[np.ndarray, ContentType("application/json")]:
        return np.zeros((len(codes), 2))


@bentoml.service(
    name="floor_hop",
    workers=settings.entry.entry_workers,
    traffic={"timeout": settings.entry.request_timeout_s},
    **_OBSERVABILITY,
)
class EchoHop:
    model = bentoml.depends(ConstantModel)

    def __init__(self) -> None:
        async def remote(codes: np.ndarray) -> np.ndarray:
            return await self.model.to_async.score(codes)  # type: ignore[no-any-return]

        self.score = coalesced_scorer(
            remote,
            max_in_flight=settings.entry.model_calls_in_flight,
            timeout_s=settings.entry.model_timeout_s,
        )

    @bentoml.api(route="/predict", input_spec=Customer)
    async def predict(self, **customer: Any) -> PredictionResponse:
        await self.score(np.asarray([schema_codes(customer)], dtype=np.float64))
        return _answers(1)[0]

    @bentoml.api(route="/predict_batch", input_spec=BatchRequest)
    async def predict_batch(self, customers: list[Any]) -> BatchResponse:
        rows = [c.model_dump() for c in customers]
        await self.score(np.asarray([schema_codes(r) for r in rows], dtype=np.float64))
        return BatchResponse(
            predictions=_answers(len(rows)), count=len(rows), latency_ms=0
        )


gc.collect()
gc.freeze()
gc.set_threshold(50_000, 50, 100)
