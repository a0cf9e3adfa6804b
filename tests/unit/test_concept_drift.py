"""Concept drift: a labelled window against the model's held-out Brier and AUC."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ab_router.statistics.auc import auc_with_variance
from ab_router.statistics.concept_drift import ConceptDriftConfig, concept_drift
from ab_router.statistics.summaries import NO_DATA, SINGLE_CLASS, TOO_FEW_SAMPLES

# Scores of 0.5 make every Brier loss exactly 0.25, so margins can sit exactly
# on the boundary in binary floating point.
HALF = np.full(8, 0.5)
MIXED = np.array([0, 1, 0, 1, 0, 1, 0, 1])
CONFIG = ConceptDriftConfig(brier_margin=0.0625, auc_margin=0.125, min_labels=8)


def test_brier_exactly_margin_worse_has_not_drifted() -> None:
    result = concept_drift(
        HALF, MIXED, heldout_brier=0.1875, heldout_roc_auc=0.5, config=CONFIG
    )
    assert result.brier == 0.25
    assert result.brier_worse_by == 0.0625
    assert not result.brier_drift
    assert not result.drifted


def test_brier_just_over_the_margin_has_drifted() -> None:
    result = concept_drift(
        HALF, MIXED, heldout_brier=0.1874, heldout_roc_auc=0.5, config=CONFIG
    )
    assert result.brier_drift
    assert result.drifted
    assert result.error is None


def test_auc_exactly_margin_worse_has_not_drifted_and_just_over_has() -> None:
    # One of the 16 positive-negative pairs is ranked the wrong way: AUC 15/16.
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.15, 0.35, 0.6, 0.7])
    labels = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    config = ConceptDriftConfig(brier_margin=1.0, auc_margin=0.0625, min_labels=8)
    at = concept_drift(
        scores, labels, heldout_brier=1.0, heldout_roc_auc=1.0, config=config
    )
    assert at.roc_auc == 0.9375
    assert at.auc_worse_by == 0.0625
    assert not at.auc_drift
    over = concept_drift(
        scores, labels, heldout_brier=1.0, heldout_roc_auc=1.0001, config=config
    )
    assert over.auc_drift
    assert not over.brier_drift


def test_one_label_short_of_the_minimum_judges_nothing() -> None:
    result = concept_drift(
        HALF[:7], MIXED[:7], heldout_brier=0.0, heldout_roc_auc=1.0, config=CONFIG
    )
    assert result.labels == 7
    assert result.error == TOO_FEW_SAMPLES
    assert result.brier == 0.25  # still reported, just not judged
    assert not result.brier_drift
    assert not result.auc_drift


def test_exactly_the_minimum_is_judged() -> None:
    result = concept_drift(
        HALF, MIXED, heldout_brier=0.0, heldout_roc_auc=1.0, config=CONFIG
    )
    assert result.labels == 8
    assert result.brier_drift and result.auc_drift


def test_one_class_window_judges_brier_but_not_auc() -> None:
    result = concept_drift(
        np.full(8, 0.9),
        np.zeros(8),
        heldout_brier=0.1,
        heldout_roc_auc=0.9,
        config=CONFIG,
    )
    assert result.error == SINGLE_CLASS
    assert math.isnan(result.roc_auc)
    assert not result.auc_drift
    assert result.brier == pytest.approx(0.81)
    assert result.brier_drift


def test_no_labels_is_no_data() -> None:
    result = concept_drift([], [], heldout_brier=0.1, heldout_roc_auc=0.8)
    assert result.error == NO_DATA
    assert result.labels == 0
    assert not result.drifted


def test_flipped_labels_raise_concept_drift_and_true_ones_do_not() -> None:
    rng = np.random.default_rng(0)
    scores = rng.beta(1.2, 3, 2000)
    labels = (rng.uniform(size=2000) < scores).astype(int)  # calibrated
    heldout_brier = float(np.mean((scores - labels) ** 2))
    heldout_auc = auc_with_variance(scores, labels).auc
    calm = concept_drift(
        scores[:500],
        labels[:500],
        heldout_brier=heldout_brier,
        heldout_roc_auc=heldout_auc,
    )
    assert not calm.drifted
    flipped = labels.copy()
    flip = rng.uniform(size=2000) < 0.3
    flipped[flip] = 1 - flipped[flip]
    drifted = concept_drift(
        scores[:500],
        flipped[:500],
        heldout_brier=heldout_brier,
        heldout_roc_auc=heldout_auc,
    )
    assert drifted.brier_drift and drifted.auc_drift


@pytest.mark.parametrize(
    "kwargs", [{"brier_margin": -0.1}, {"auc_margin": math.nan}, {"min_labels": 0}]
)
def test_bad_config_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ConceptDriftConfig(**kwargs)  # type: ignore[arg-type]


def test_misaligned_windows_are_refused() -> None:
    with pytest.raises(ValueError, match="3 scores but 2 labels"):
        concept_drift([0.1, 0.2, 0.3], [0, 1], heldout_brier=0.1, heldout_roc_auc=0.8)
