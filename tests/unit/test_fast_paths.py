"""Proposed fast paths give scikit-learn's probabilities on every sample row.

``serving/model_runtime/flat_trees.py`` scores the fitted tree ensembles with
numpy gathers instead of scikit-learn's per-tree calls; it may only replace
them if it is exact (|Δp| ≤ 1e-6 here, ~1e-16 in practice) on every row of
the shared sample, through both its own path and its large-batch fallback.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from benchmarks.customers import make_customers
from churn_features.customer import Customer
from churn_features.encoding import MODEL_STEP, FastEncoder, records_to_codes
from churn_features.schema import FEATURE_ORDER, TARGET_COLUMN
from serving.model_runtime.flat_trees import FlatTreeEnsemble
from training.data import load_training_data
from training.sample import find_sample_csv
from training.train import TrainingReport

MAX_PROBABILITY_GAP = 1e-6


@pytest.fixture(scope="module")
def sample_frame() -> pd.DataFrame:
    sample = find_sample_csv()
    if sample is None:
        pytest.skip("shared sample CSV not found (set CHURN_DATA or ../shared/data)")
    return load_training_data(sample).frame


def _encoded(pipeline: object, frame: pd.DataFrame) -> np.ndarray:
    codes = records_to_codes(frame[list(FEATURE_ORDER)].to_dict("records"))
    return FastEncoder.from_pipeline(pipeline).encode(codes)  # type: ignore[arg-type]


@pytest.mark.parametrize("variant", ["v1", "v2"])
@pytest.mark.parametrize("batch", [1, 7, 256])
def test_flat_trees_match_pipeline_on_every_sample_row(
    quick_report: TrainingReport, sample_frame: pd.DataFrame, variant: str, batch: int
) -> None:
    pipeline = quick_report.model(variant).pipeline
    expected = pipeline.predict_proba(sample_frame[list(FEATURE_ORDER)])
    encoded = _encoded(pipeline, sample_frame)
    flat = FlatTreeEnsemble.from_estimator(pipeline.named_steps[MODEL_STEP])

    actual = np.vstack(
        [
            flat.predict_proba(encoded[i : i + batch])
            for i in range(0, len(encoded), batch)
        ]
    )

    assert actual.shape == expected.shape == (len(sample_frame), 2)
    assert np.max(np.abs(actual - expected)) <= MAX_PROBABILITY_GAP
    assert list(flat.classes_) == list(pipeline.classes_)


@pytest.mark.parametrize("variant", ["v1", "v2"])
def test_large_batches_fall_back_to_scikit_learn(
    quick_report: TrainingReport, sample_frame: pd.DataFrame, variant: str
) -> None:
    pipeline = quick_report.model(variant).pipeline
    estimator = pipeline.named_steps[MODEL_STEP]
    encoded = _encoded(pipeline, sample_frame)
    flat = FlatTreeEnsemble.from_estimator(estimator, max_rows=100)

    np.testing.assert_array_equal(
        flat.predict_proba(encoded), estimator.predict_proba(encoded)
    )


def test_fully_grown_forest_and_deeper_boosting_match(
    sample_frame: pd.DataFrame, quick_report: TrainingReport
) -> None:
    """Depth, leaf shapes and learning rate are not tied to the shipped recipes."""
    pipeline = quick_report.model("v1").pipeline
    encoded = _encoded(pipeline, sample_frame)
    target = sample_frame[TARGET_COLUMN].to_numpy().astype(int)
    for estimator in (
        RandomForestClassifier(n_estimators=8, random_state=0).fit(encoded, target),
        GradientBoostingClassifier(
            n_estimators=30, max_depth=5, learning_rate=0.3, random_state=0
        ).fit(encoded, target),
    ):
        flat = FlatTreeEnsemble.from_estimator(estimator, max_rows=len(encoded))
        gap = np.abs(flat.predict_proba(encoded) - estimator.predict_proba(encoded))
        assert gap.max() <= MAX_PROBABILITY_GAP, type(estimator).__name__


def test_unsupported_estimators_and_bad_inputs_are_refused(
    quick_report: TrainingReport,
) -> None:
    with pytest.raises(TypeError, match="LogisticRegression"):
        FlatTreeEnsemble.from_estimator(
            LogisticRegression().fit([[0.0], [1.0]], [0, 1])
        )
    flat = FlatTreeEnsemble.from_estimator(
        quick_report.model("v1").pipeline.named_steps[MODEL_STEP]
    )
    with pytest.raises(ValueError, match="expected an"):
        flat.predict_proba(np.zeros((2, flat.n_features + 1)))
    bad = np.zeros((1, flat.n_features))
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        flat.predict_proba(bad)


def test_load_test_customers_are_valid_requests() -> None:
    """The benchmark and Locust bodies pass the API's strict validation."""
    customers = make_customers(500, seed=3)
    for customer in customers:
        Customer.model_validate(customer)
    assert len({c["customerID"] for c in customers}) == len(customers)
    contracts = {c["Contract"] for c in customers}
    assert "Month-to-month" in contracts and contracts - {"Month-to-month"}
