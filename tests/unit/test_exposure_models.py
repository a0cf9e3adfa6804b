"""Every exposure names the model that scored it, and in shadow mode the
model behind the shadow score too (issue #18)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from churn_features.schema import EXAMPLE_CUSTOMER
from serving.entry import EntryApp
from tests.support.entry_apps import entry_app

TAGS = {"v1": "churn_v1:first", "v2": "churn_v2:second"}


async def _scorer(codes: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.column_stack([np.full(len(codes), 0.3), np.zeros(len(codes))])


def _entry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: str) -> EntryApp:
    return entry_app(monkeypatch, tmp_path, mode=mode, scorer=_scorer, tags=TAGS)


def _predict(app: EntryApp, n: int) -> None:
    customers = [{**EXAMPLE_CUSTOMER, "customerID": f"m-{i}"} for i in range(n)]

    async def run() -> None:
        await app.requests.predict_batch(customers, time.perf_counter())
        await app.predictor.drain()

    asyncio.run(run())


def test_split_exposures_carry_their_variants_model_id(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app = _entry(monkeypatch, tmp_path, "split")
    _predict(app, 40)
    versions = app.ledger.model_versions()
    exposures = app.ledger.exposures(app.settings.experiment.name)
    assert {e.variant for e in exposures} == {"v1", "v2"}
    for e in exposures:
        assert versions[e.model_id].tag == TAGS[e.variant]
        assert e.shadow_model_id is None
    assert app.models()["models"]["v2"]["model_id"] == app.model_ids["v2"]


def test_shadow_scores_carry_the_challengers_model_id(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app = _entry(monkeypatch, tmp_path, "shadow")
    _predict(app, 10)
    versions = app.ledger.model_versions()
    exposures = app.ledger.exposures(app.settings.experiment.name)
    assert len(exposures) == 10
    for e in exposures:
        assert versions[e.model_id].tag == TAGS["v1"]
        assert e.shadow_model_id is not None
        assert versions[e.shadow_model_id].tag == TAGS["v2"]
