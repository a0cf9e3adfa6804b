"""Full-profile training on the shared sample beats the original models.

The session's ``full_report`` (tests/conftest.py): both models trained as
served, about 5 s on 2 cores, without touching the store. In integration for
that training, so ``make test-fast`` (tests/unit) stays under a minute.
"""

from __future__ import annotations

import pytest
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

from churn_features.encoding import MODEL_STEP, PREPROCESS_STEP, build_preprocessor
from training.train import TrainingReport

# Test-split ROC AUC of the models this project replaces, on the same sample.
ORIGINAL_AUC = {"v1": 0.8357, "v2": 0.8301}
# Flag about as many customers as actually churn (the original flagged 51.6%).
MAX_RATE_GAP = 0.05


@pytest.mark.parametrize("variant", ["v1", "v2"])
def test_full_model_beats_the_original_auc(
    full_report: TrainingReport, variant: str
) -> None:
    metrics = full_report.evaluations()[variant]
    assert metrics.roc_auc > ORIGINAL_AUC[variant]


@pytest.mark.parametrize("variant", ["v1", "v2"])
def test_predicted_positive_rate_is_near_the_base_rate(
    full_report: TrainingReport, variant: str
) -> None:
    metrics = full_report.evaluations()[variant]
    assert abs(metrics.predicted_positive_rate - metrics.base_rate) <= MAX_RATE_GAP
    assert 0.0 < metrics.decision_threshold < 1.0


def test_split_is_80_20_and_stratified(full_report: TrainingReport) -> None:
    metrics = full_report.evaluations()["v1"]
    assert (metrics.training_rows, metrics.test_rows) == (4800, 1200)
    churned = full_report.model("v1").pipeline.classes_.tolist()
    assert churned == [0, 1]
    # Stratified: the test split keeps the sample's churn rate to the row.
    assert metrics.base_rate == pytest.approx(0.2653, abs=0.001)


def test_report_records_data_and_no_tags_without_saving(
    full_report: TrainingReport,
) -> None:
    assert full_report.rows == 6000
    assert full_report.tags == {}
    assert all(
        m.evaluation.data_sha256 == full_report.data_sha256 for m in full_report.models
    )


def test_pipelines_keep_the_serving_contract(full_report: TrainingReport) -> None:
    expected = build_preprocessor().get_params(deep=False)
    for model in full_report.models:
        steps = model.pipeline.named_steps
        assert list(steps) == [PREPROCESS_STEP, MODEL_STEP]
        preprocess_params = steps[PREPROCESS_STEP].get_params(deep=False)
        assert preprocess_params.keys() == expected.keys()
        assert repr(preprocess_params["transformers"]) == repr(expected["transformers"])


def test_estimators_are_cheap_to_serve(full_report: TrainingReport) -> None:
    forest = full_report.model("v1").pipeline.named_steps[MODEL_STEP]
    boosting = full_report.model("v2").pipeline.named_steps[MODEL_STEP]
    assert isinstance(forest, RandomForestClassifier)
    assert isinstance(boosting, GradientBoostingClassifier)
    # No joblib pool per request, and a bounded number of trees to walk.
    assert forest.n_jobs in (None, 1)
    assert len(forest.estimators_) <= 200
    assert forest.max_depth is not None and forest.max_depth <= 12
