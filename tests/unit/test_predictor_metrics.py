"""The entry's Prometheus counters add up to what was answered and recorded.

Counters are incremented once per label set (not per row), and the latency
histogram gets one observation per request and answering variant.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import prometheus_client
import pytest
from numpy.typing import NDArray

from churn_features.schema import EXAMPLE_CUSTOMER
from serving.entry import EntryApp
from serving.metrics import ServiceMetrics
from serving.settings import load_settings


async def _threshold_scorer(codes: NDArray[np.float64]) -> NDArray[np.float64]:
    # Stands in for a model service: tenure (code column 4) decides the class.
    probability = np.where(codes[:, 4] < 12, 0.8, 0.1)
    return np.column_stack([probability, (probability > 0.5).astype(float)])


def _value(name: str, **labels: str) -> float:
    return prometheus_client.REGISTRY.get_sample_value(name, labels) or 0.0


def test_batch_counts_match_answers_and_ledger(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CHURN_AB_LEDGER_PATH", str(tmp_path / "ledger.sqlite3"))
    app = EntryApp(
        load_settings(),
        scorers={"v1": _threshold_scorer, "v2": _threshold_scorer},
        model_descriptions={},
        metrics=ServiceMetrics.create(),
    )
    customers = [
        {**EXAMPLE_CUSTOMER, "customerID": f"metrics-{i}", "tenure": i % 40}
        for i in range(300)
    ]
    variants = ("v1", "v2")
    before = {
        v: (
            _value("predictions_total", model_version=v),
            _value("prediction_latency_seconds_count", model_version=v),
            _value("churn_predictions_total", model_version=v, prediction="1"),
        )
        for v in variants
    }

    response = asyncio.run(app.requests.predict_batch(customers, time.perf_counter()))

    answered = [p.model_version for p in response.predictions]
    churners = [p.model_version for p in response.predictions if p.prediction == 1]
    assert set(answered) == set(variants), "both variants should get traffic"
    for v in variants:
        predictions, latency_count, churn = before[v]
        assert _value("predictions_total", model_version=v) - predictions == (
            answered.count(v)
        )
        assert (
            _value("prediction_latency_seconds_count", model_version=v) - latency_count
            == 1
        )
        assert _value(
            "churn_predictions_total", model_version=v, prediction="1"
        ) - churn == churners.count(v)
    state = app.state.current()
    assert app.ledger.count_exposures(state.config.name, state.epoch) == {
        v: answered.count(v) for v in variants
    }
    ids = [p.request_id for p in response.predictions]
    assert len(set(ids)) == len(ids) == len(customers)
