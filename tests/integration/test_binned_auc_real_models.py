"""The live view's binned ROC AUC on the real models (issue #12, section 2).

Both pipelines are quick-trained in-process on the shared sample; on the
held-out split training itself scores, the AUC from
:class:`~ab_router.statistics.labelled_sums.ScoreHistogram` (4 096 bins per
label, what the ledger's rollups hold) must be within 0.001 of
scikit-learn's exact ``roc_auc_score``, and within the bound the histogram
reports from its counts alone. Random forests put many rows on the same few
probabilities, so this is where ties and crowded bins would show.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from ab_router.statistics import auc_with_variance
from ab_router.statistics.labelled_sums import SCORE_BINS, LabelledSums
from churn_features.schema import FEATURE_ORDER, TARGET_COLUMN
from training.data import load_training_data
from training.sample import find_sample_csv
from training.train import TEST_FRACTION, TrainingReport

AUC_TOL = 0.001


def _held_out(report: TrainingReport) -> tuple[pd.DataFrame, np.ndarray]:
    """The test split ``train_variant`` scores (same seed, fraction, strata)."""
    sample = find_sample_csv()
    assert sample is not None
    frame = load_training_data(sample).frame
    target = frame[TARGET_COLUMN].to_numpy(dtype=np.int64)
    _, test = train_test_split(
        np.arange(len(frame)),
        test_size=TEST_FRACTION,
        stratify=target,
        random_state=report.seed,
    )
    return frame[list(FEATURE_ORDER)].iloc[test], target[test]


@pytest.mark.parametrize("variant", ["v1", "v2"])
def test_binned_auc_matches_sklearn_on_the_real_scores(
    quick_report: TrainingReport, variant: str
) -> None:
    features, y = _held_out(quick_report)
    model = quick_report.model(variant)
    p = model.pipeline.predict_proba(features)[:, 1]
    exact = roc_auc_score(y, p)
    # The same rows training evaluated on, or this would test another split.
    assert exact == pytest.approx(model.evaluation.roc_auc, abs=1e-12)

    pred = (p >= model.evaluation.decision_threshold).astype(int)
    sums = LabelledSums.from_arrays(p, y, pred)
    binned = sums.auc()
    assert sums.scores.bins == SCORE_BINS and binned.error is None
    assert abs(binned.auc - exact) <= AUC_TOL
    assert abs(binned.auc - exact) <= sums.scores.auc_error_bound()
    # DeLong's variance from the placements per bin, against the raw scores.
    assert binned.variance == pytest.approx(auc_with_variance(p, y).variance, rel=0.02)
