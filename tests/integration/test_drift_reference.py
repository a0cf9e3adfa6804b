"""Drift against the real sample: training references, unshifted and shifted traffic.

Quick-trained models (not saved) score the traffic. Live traffic is the
held-out test split: customers the model never trained on, as in production,
so their scores are comparable with the out-of-fold training scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from ab_router.statistics.psi import DriftReport, bin_codes, drift_report
from churn_features.encoding import records_to_codes
from churn_features.reference import REFERENCE_METADATA_KEY, ReferenceDistributions
from churn_features.schema import FEATURE_ORDER, TARGET_COLUMN
from training.data import load_training_data
from training.sample import find_sample_csv
from training.store import model_metadata
from training.train import TrainingReport, split_indices, train_and_save

SEED = 42
SHIFTED = {"Contract", "tenure", "MonthlyCharges"}


@dataclass(frozen=True)
class Setup:
    report: TrainingReport
    held_out: pd.DataFrame


@pytest.fixture(scope="module")
def setup() -> Setup:
    sample = find_sample_csv()
    if sample is None:
        pytest.skip("shared sample CSV not found (set CHURN_DATA or ../shared/data)")
    report = train_and_save(sample, quick=True, save=False, seed=SEED)
    frame = load_training_data(sample).frame
    target = frame[TARGET_COLUMN].to_numpy(dtype=np.int64)
    _, test_index = split_indices(target, SEED)
    return Setup(report, frame.iloc[test_index][list(FEATURE_ORDER)])


def stored_reference(setup: Setup, variant: str) -> ReferenceDistributions:
    # Through the metadata codec, as serving will read it.
    metadata = model_metadata(setup.report.model(variant))
    return ReferenceDistributions.from_metadata(metadata[REFERENCE_METADATA_KEY])


def traffic_report(setup: Setup, variant: str, traffic: pd.DataFrame) -> DriftReport:
    reference = stored_reference(setup, variant)
    scores = setup.report.model(variant).pipeline.predict_proba(traffic)[:, 1]
    codes = records_to_codes(traffic.to_dict("records"))
    return drift_report(reference, bin_codes(reference, codes, scores))


def shift(traffic: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    shifted = traffic.copy()
    shifted["Contract"] = "Month-to-month"
    shifted["tenure"] = rng.integers(1, 4, len(shifted)).astype(float)
    shifted["MonthlyCharges"] = shifted["MonthlyCharges"] * 1.4
    return shifted


@pytest.mark.parametrize("variant", ["v1", "v2"])
def test_the_reference_comes_from_the_training_split(
    setup: Setup, variant: str
) -> None:
    reference = stored_reference(setup, variant)
    assert reference == setup.report.model(variant).reference
    assert reference.rows == reference.score_rows == 4800
    for name in ("tenure", "MonthlyCharges", "TotalCharges"):
        feature = reference.feature(name)
        assert 8 <= feature.bins <= 10, name
        assert min(feature.shares) > 0
    assert reference.feature("SeniorCitizen").bins == 2
    assert reference.score.bins == 10
    assert max(reference.score.shares) < 0.2  # deciles of distinct scores


@pytest.mark.parametrize("variant", ["v1", "v2"])
def test_unshifted_traffic_keeps_every_psi_below_0_1(
    setup: Setup, variant: str
) -> None:
    report = traffic_report(setup, variant, setup.held_out)
    for result in (*report.features, report.score):
        assert result.error is None
        assert result.rows == 1200
        assert result.psi < 0.1, result


@pytest.mark.parametrize("variant", ["v1", "v2"])
def test_shifted_traffic_raises_psi_above_0_3_for_exactly_the_shifted_features(
    setup: Setup, variant: str
) -> None:
    report = traffic_report(setup, variant, shift(setup.held_out))
    above = {r.name for r in report.features if r.psi > 0.3}
    assert above == SHIFTED
    for result in report.features:
        if result.name not in SHIFTED:
            assert result.psi < 0.1, result
    assert report.score.psi > 0.3
