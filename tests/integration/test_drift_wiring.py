"""Drift end to end in-process: two entry workers, one ledger, real models.

Two ``EntryApp``s (two workers) score the held-out split of the sample with
quick-trained models, count it, flush to one SQLite ledger, and the drift
view adds both workers' counts: unshifted traffic keeps every PSI below 0.1,
the issue's shift raises exactly Contract, tenure, MonthlyCharges and the
score above 0.3. Flipped labels for a share of customers raise concept drift.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from numpy.typing import NDArray

from ab_router.admin import reset
from churn_features.reference import REFERENCE_METADATA_KEY
from churn_features.schema import FEATURE_ORDER, TARGET_COLUMN
from serving.entry import EntryApp
from serving.metrics import render_families
from serving.model_router import Scorer
from serving.model_runtime.scorer import ModelScorer
from serving.settings import load_settings
from tests.integration.test_drift_reference import SEED, SHIFTED, shift
from training.data import load_training_data
from training.sample import find_sample_csv
from training.store import model_metadata
from training.train import TrainingReport, split_indices, train_and_save


def _scorer(model: ModelScorer) -> Scorer:
    async def score(codes: NDArray[np.float64]) -> NDArray[np.float64]:
        return model.score(codes)

    return score


@pytest.fixture(scope="module")
def trained() -> tuple[TrainingReport, pd.DataFrame]:
    sample = find_sample_csv()
    if sample is None:
        pytest.skip("shared sample CSV not found (set CHURN_DATA or ../shared/data)")
    report = train_and_save(sample, quick=True, save=False, seed=SEED)
    frame = load_training_data(sample).frame
    target = frame[TARGET_COLUMN].to_numpy(dtype=np.int64)
    _, test_index = split_indices(target, SEED)
    return report, frame.iloc[test_index].reset_index(drop=True)


def descriptions(report: TrainingReport, with_reference: bool) -> dict[str, Any]:
    described = {}
    for variant in ("v1", "v2"):
        metadata = model_metadata(report.model(variant))
        described[variant] = {
            "tag": f"churn_{variant}:test",
            "metrics": metadata["metrics"],
            REFERENCE_METADATA_KEY: metadata[REFERENCE_METADATA_KEY]
            if with_reference
            else None,
        }
    return described


def workers(
    report: TrainingReport, ledger: Path, monkeypatch: pytest.MonkeyPatch, **kw: Any
) -> list[EntryApp]:
    monkeypatch.setenv("CHURN_AB_LEDGER_PATH", str(ledger))
    monkeypatch.setenv("CHURN_AB_DRIFT_REFRESH_S", "0")
    monkeypatch.setenv("CHURN_AB_DRIFT_FLUSH_S", "3600")  # flushed by the test
    monkeypatch.setenv("CHURN_AB_STATE_REFRESH_S", "0.01")
    scorers = {v: _scorer(ModelScorer(report.model(v).pipeline)) for v in ("v1", "v2")}
    described = descriptions(report, kw.get("with_reference", True))
    return [
        EntryApp(load_settings(), scorers=scorers, model_descriptions=described)
        for _ in range(2)
    ]


def customers(frame: pd.DataFrame, prefix: str) -> list[dict[str, Any]]:
    rows = frame[list(FEATURE_ORDER)].to_dict("records")
    return [{**row, "customerID": f"{prefix}-{i}"} for i, row in enumerate(rows)]


def serve(apps: list[EntryApp], batch: list[dict[str, Any]]) -> dict[str, int]:
    """Half the customers to each worker, 50 at a time; answers per variant."""
    answered: dict[str, int] = {}
    for index, app in enumerate(apps):
        mine = batch[index::2]
        for start in range(0, len(mine), 50):
            response = asyncio.run(
                app.requests.predict_batch(
                    mine[start : start + 50], time.perf_counter()
                )
            )
            for p in response.predictions:
                answered[p.model_version] = answered.get(p.model_version, 0) + 1
    for app in apps:
        app.close()  # what shutdown does: the last counts reach the ledger
    return answered


@pytest.fixture
def closing() -> Iterator[list[EntryApp]]:
    apps: list[EntryApp] = []
    yield apps
    for app in apps:
        app.close()
        app.ledger.close()


def test_two_workers_counts_add_up_and_unshifted_traffic_stays_below_0_1(
    trained: tuple[TrainingReport, pd.DataFrame],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    closing: list[EntryApp],
) -> None:
    report, held_out = trained
    apps = workers(report, tmp_path / "ledger.sqlite3", monkeypatch)
    closing.extend(apps)
    answered = serve(apps, customers(held_out, "plain"))
    drift = asyncio.run(apps[0].drift.report())
    assert set(drift["variants"]) == {"v1", "v2"}
    for variant, body in drift["variants"].items():
        assert body["error"] is None
        assert body["requests"] == answered[variant] > 400
        for result in (*body["features"], body["score"]):
            assert result["rows"] == answered[variant]
            assert result["psi"] < 0.1, (variant, result)
    # The other worker reads the same, shared counts.
    assert asyncio.run(apps[1].drift.report()) == drift
    text = render_families(apps[0].drift.metric_families())
    assert text.count("churn_ab_feature_psi{") == 2 * len(FEATURE_ORDER)
    assert 'churn_ab_score_psi{variant="v1"}' in text
    assert f'churn_ab_drift_window_requests{{variant="v2"}} {answered["v2"]}.0' in text


def test_shifted_traffic_raises_exactly_the_shifted_features_and_the_score(
    trained: tuple[TrainingReport, pd.DataFrame],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    closing: list[EntryApp],
) -> None:
    report, held_out = trained
    apps = workers(report, tmp_path / "ledger.sqlite3", monkeypatch)
    closing.extend(apps)
    serve(apps, customers(shift(held_out), "shifted"))
    drift = asyncio.run(apps[0].drift.report(hours=0))
    assert drift["window"]["hours"] == 0
    for variant, body in drift["variants"].items():
        above = {r["name"] for r in body["features"] if r["psi"] > 0.3}
        assert above == SHIFTED, variant
        assert all(
            r["psi"] < 0.1 for r in body["features"] if r["name"] not in SHIFTED
        ), variant
        assert body["score"]["psi"] > 0.3, variant


def test_flipped_labels_raise_concept_drift_and_true_ones_do_not(
    trained: tuple[TrainingReport, pd.DataFrame],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    closing: list[EntryApp],
) -> None:
    report, held_out = trained
    apps = workers(report, tmp_path / "ledger.sqlite3", monkeypatch)
    closing.extend(apps)
    batch = customers(held_out, "labelled")
    serve(apps, batch)
    truth = held_out[TARGET_COLUMN].to_numpy(dtype=bool)
    ledger = apps[0].ledger
    experiment = apps[0].settings.experiment.name

    def label(flip_share: float) -> dict[str, Any]:
        flipped = np.random.default_rng(1).uniform(size=len(truth)) < flip_share
        for customer, churned, flip in zip(batch, truth, flipped, strict=True):
            ledger.label_customer(
                experiment, customer["customerID"], bool(churned ^ flip)
            )
        return asyncio.run(apps[0].drift.report())["variants"]

    honest = label(0.0)
    for body in honest.values():
        concept = body["concept_drift"]
        assert concept["labels"] > 400 and concept["error"] is None
        assert not concept["drifted"], concept
    text = render_families(apps[0].drift.metric_families())
    assert 'churn_ab_concept_drift{variant="v1"} 0.0' in text
    # A new epoch starts a new window; flip 40% of the labels there.
    state = apps[0].state.current()
    assert ledger.change_state(state, reset(state), reason="test", actor="test")
    time.sleep(0.05)  # past CHURN_AB_STATE_REFRESH_S: both workers see it
    serve(apps, batch)
    flipped = label(0.4)
    for body in flipped.values():
        assert body["concept_drift"]["drifted"], body["concept_drift"]
    text = render_families(apps[0].drift.metric_families())
    assert 'churn_ab_concept_drift{variant="v1"} 1.0' in text


def test_a_model_without_reference_reports_no_reference_and_exports_no_psi(
    trained: tuple[TrainingReport, pd.DataFrame],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    closing: list[EntryApp],
) -> None:
    report, held_out = trained
    apps = workers(
        report, tmp_path / "ledger.sqlite3", monkeypatch, with_reference=False
    )
    closing.extend(apps)
    serve(apps, customers(held_out.head(40), "old-model"))
    drift = asyncio.run(apps[0].drift.report())
    assert {b["error"] for b in drift["variants"].values()} == {"no_reference"}
    text = render_families(apps[0].drift.metric_families())
    assert "psi" not in text
    (count,) = apps[0].ledger._read("SELECT count(*) FROM drift_counts")[0]
    assert count == 0
