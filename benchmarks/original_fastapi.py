"""A faithful copy of the FastAPI prototype this project replaces (for comparison).

Its design, kept on purpose: both scikit-learn pipelines loaded into the one
process, a one-row pandas DataFrame built per request and fed to the
pipeline's ``ColumnTransformer``, a random 50/50 split (not sticky), and
counters in module globals (per process, lost on restart). Sync ``def``
endpoints, as the prototype had. Models come from the same BentoML store
(``$BENTOML_HOME``), so both designs score with the same trained pipelines.

Run: ``uvicorn benchmarks.original_fastapi:app --host 127.0.0.1 --port PORT``.
"""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

import bentoml
import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI(title="Churn prediction API (prototype)")

MODELS: dict[str, Any] = {
    "v1": bentoml.sklearn.load_model("churn_v1:latest"),
    "v2": bentoml.sklearn.load_model("churn_v2:latest"),
}
STATS: dict[str, dict[str, float]] = {
    v: {"requests": 0, "latency_ms_total": 0.0, "churn_predicted": 0} for v in MODELS
}


class CustomerData(BaseModel):
    gender: str
    SeniorCitizen: int
    Partner: str
    Dependents: str
    tenure: int
    PhoneService: str
    MultipleLines: str
    InternetService: str
    OnlineSecurity: str
    OnlineBackup: str
    DeviceProtection: str
    TechSupport: str
    StreamingTV: str
    StreamingMovies: str
    Contract: str
    PaperlessBilling: str
    PaymentMethod: str
    MonthlyCharges: float
    TotalCharges: float
    customerID: str | None = None


class BatchData(BaseModel):
    customers: list[CustomerData]


def _record(version: str, latency_ms: float, prediction: int) -> None:
    STATS[version]["requests"] += 1
    STATS[version]["latency_ms_total"] += latency_ms
    STATS[version]["churn_predicted"] += prediction


@app.post("/predict")
def predict(customer: CustomerData) -> dict[str, Any]:
    started = time.time()
    version = "v1" if random.random() < 0.5 else "v2"
    frame = pd.DataFrame([customer.model_dump(exclude={"customerID"})])
    probability = float(MODELS[version].predict_proba(frame)[0][1])
    prediction = int(probability >= 0.5)
    latency_ms = (time.time() - started) * 1000
    _record(version, latency_ms, prediction)
    return {
        "request_id": str(uuid.uuid4()),
        "model_version": version,
        "prediction": prediction,
        "churn_probability": probability,
        "will_churn": bool(prediction),
        "confidence": probability if prediction else 1 - probability,
        "latency_ms": latency_ms,
    }


@app.post("/predict_batch")
def predict_batch(batch: BatchData) -> dict[str, Any]:
    started = time.time()
    version = "v1" if random.random() < 0.5 else "v2"
    frame = pd.DataFrame(
        [c.model_dump(exclude={"customerID"}) for c in batch.customers]
    )
    probabilities = MODELS[version].predict_proba(frame)[:, 1]
    latency_ms = (time.time() - started) * 1000
    predictions = []
    for probability in probabilities:
        prediction = int(probability >= 0.5)
        _record(version, latency_ms / len(probabilities), prediction)
        predictions.append(
            {
                "request_id": str(uuid.uuid4()),
                "model_version": version,
                "prediction": prediction,
                "churn_probability": float(probability),
                "will_churn": bool(prediction),
            }
        )
    return {
        "predictions": predictions,
        "count": len(predictions),
        "latency_ms": latency_ms,
    }


@app.get("/health")
def health() -> dict[str, Any]:
    return {"status": "healthy", "models_loaded": sorted(MODELS)}


@app.get("/models")
def models() -> dict[str, Any]:
    return {
        v: {"type": type(m.named_steps["model"]).__name__} for v, m in MODELS.items()
    }


@app.get("/ab-test/stats")
def ab_test_stats() -> dict[str, Any]:
    return {
        v: {
            **s,
            "avg_latency_ms": s["latency_ms_total"] / s["requests"]
            if s["requests"]
            else 0,
        }
        for v, s in STATS.items()
    }
