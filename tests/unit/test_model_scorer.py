"""The serving path (fast encoder + flat trees) gives the pipeline's answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn_features.encoding import records_to_codes
from churn_features.schema import FEATURE_ORDER
from serving.model_runtime.flat_trees import FlatTreeEnsemble
from serving.model_runtime.scorer import ModelScorer
from training.data import load_training_data
from training.sample import find_sample_csv
from training.train import TrainingReport

MAX_PROBABILITY_GAP = 1e-6


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    sample = find_sample_csv()
    assert sample is not None, "set CHURN_DATA or provide ../shared/data"
    return load_training_data(sample).frame


@pytest.mark.parametrize("variant", ["v1", "v2"])
@pytest.mark.parametrize("batch", [1, 64, 6000])
def test_serving_path_matches_the_pipeline_on_every_row(
    full_report: TrainingReport, frame: pd.DataFrame, variant: str, batch: int
) -> None:
    trained = next(m for m in full_report.models if m.variant.variant == variant)
    threshold = trained.evaluation.decision_threshold
    scorer = ModelScorer(trained.pipeline, threshold)
    assert isinstance(scorer._predictor, FlatTreeEnsemble)
    expected = trained.pipeline.predict_proba(frame[list(FEATURE_ORDER)])[:, 1]
    codes = records_to_codes(frame[list(FEATURE_ORDER)].to_dict("records"))
    rows = range(0, len(codes), batch) if batch > 1 else range(0, len(codes), 7)
    got = np.concatenate([scorer.score(codes[i : i + batch])[:, 0] for i in rows])
    want = np.concatenate([expected[i : i + batch] for i in rows])
    assert np.max(np.abs(got - want)) <= MAX_PROBABILITY_GAP
    predictions = scorer.score(codes)[:, 1]
    np.testing.assert_array_equal(predictions, expected >= threshold)
