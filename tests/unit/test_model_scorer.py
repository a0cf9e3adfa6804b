"""The serving path (fast encoder + flat trees) gives the pipeline's answers.

Here on the session's quick-profile models; on the full-profile ones, as
served: tests/integration/test_model_scorer_full.py.
"""

from __future__ import annotations

from functools import cache

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
VARIANTS = pytest.mark.parametrize("variant", ["v1", "v2"])
BATCHES = pytest.mark.parametrize("batch", [1, 64, 6000])


@cache
def _features() -> pd.DataFrame:
    sample = find_sample_csv()
    assert sample is not None, "set CHURN_DATA or provide ../shared/data"
    return load_training_data(sample).frame[list(FEATURE_ORDER)]


def assert_serving_path_matches(
    report: TrainingReport, variant: str, batch: int
) -> None:
    """Every sample row scored ``batch`` at a time (one row every 7th for 1)."""
    frame = _features()
    trained = next(m for m in report.models if m.variant.variant == variant)
    threshold = trained.evaluation.decision_threshold
    scorer = ModelScorer(trained.pipeline, threshold)
    assert isinstance(scorer._predictor, FlatTreeEnsemble)
    expected = trained.pipeline.predict_proba(frame)[:, 1]
    codes = records_to_codes(frame.to_dict("records"))
    rows = range(0, len(codes), batch) if batch > 1 else range(0, len(codes), 7)
    got = np.concatenate([scorer.score(codes[i : i + batch])[:, 0] for i in rows])
    want = np.concatenate([expected[i : i + batch] for i in rows])
    assert np.max(np.abs(got - want)) <= MAX_PROBABILITY_GAP
    predictions = scorer.score(codes)[:, 1]
    np.testing.assert_array_equal(predictions, expected >= threshold)


@VARIANTS
@BATCHES
def test_serving_path_matches_the_pipeline_on_every_row(
    quick_report: TrainingReport, variant: str, batch: int
) -> None:
    assert_serving_path_matches(quick_report, variant, batch)
