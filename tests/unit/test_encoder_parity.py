"""The service's pandas-free FastEncoder gives the pipeline's exact probabilities.

Checked on every row of the shared sample for both trained variants.
"""

from __future__ import annotations

import numpy as np
import pytest

from churn_features.encoding import MODEL_STEP, FastEncoder, records_to_codes
from churn_features.schema import FEATURE_ORDER
from training.data import load_training_data
from training.sample import find_sample_csv
from training.train import TrainingReport

MAX_PROBABILITY_GAP = 1e-9


@pytest.mark.parametrize("variant", ["v1", "v2"])
def test_fast_encoder_matches_pipeline_on_all_rows(
    quick_report: TrainingReport, variant: str
) -> None:
    sample = find_sample_csv()
    assert sample is not None
    frame = load_training_data(sample).frame[list(FEATURE_ORDER)]
    pipeline = quick_report.model(variant).pipeline

    expected = pipeline.predict_proba(frame)
    codes = records_to_codes(frame.to_dict("records"))
    encoded = FastEncoder.from_pipeline(pipeline).encode(codes)
    actual = pipeline.named_steps[MODEL_STEP].predict_proba(encoded)

    assert actual.shape == expected.shape == (len(frame), 2)
    assert np.max(np.abs(actual - expected)) <= MAX_PROBABILITY_GAP
