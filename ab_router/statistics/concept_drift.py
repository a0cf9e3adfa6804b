"""Concept drift: is a model's labelled quality now worse than at training time?

Over a window of labelled ``(score, label)`` pairs (the caller chooses it, for
example the last N labelled exposures of a variant), Brier score and ROC AUC
are compared with the model's own held-out values stored at training
(``metrics.brier_score`` and ``metrics.roc_auc`` in its metadata):

* Brier drifts when ``window_brier - heldout_brier > brier_margin``;
* AUC drifts when ``heldout_auc - window_auc > auc_margin``;

each only with at least ``min_labels`` labels, because a small window's Brier
and AUC are too noisy to alarm on. "More than" is strict: a window exactly
``margin`` worse has not drifted. AUC of a window with one class only is
undefined (``single_class``); Brier is still judged then.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ab_router.statistics.auc import auc_with_variance
from ab_router.statistics.quality import brier_losses
from ab_router.statistics.summaries import NO_DATA, TOO_FEW_SAMPLES, ZERO_VARIANCE

if TYPE_CHECKING:
    from numpy.typing import ArrayLike


@dataclass(frozen=True)
class ConceptDriftConfig:
    """When a labelled window counts as drifted.

    ``brier_margin``: Brier points (0..1) the window may exceed the held-out
    Brier by (default 0.03, about a 20% relative rise on a ~0.14 Brier).
    ``auc_margin``: AUC points the window may fall below the held-out AUC by
    (default 0.05). ``min_labels``: labels needed before either is judged
    (default 200: on 200 labels with a 27% churn rate the standard error of
    an AUC near 0.84 is about 0.035 (Hanley & McNeil) and of the Brier about
    0.014, so the default margins sit 1.4 and 2 standard errors out; raise
    ``min_labels`` for fewer false alarms).
    """

    brier_margin: float = 0.03
    auc_margin: float = 0.05
    min_labels: int = 200

    def __post_init__(self) -> None:
        if not self.brier_margin >= 0 or not self.auc_margin >= 0:
            raise ValueError("concept drift margins must be >= 0")
        if self.min_labels < 1:
            raise ValueError("min_labels must be at least 1")


@dataclass(frozen=True)
class ConceptDrift:
    """Window quality next to the held-out quality, and whether it drifted.

    ``brier_worse_by`` is ``window - heldout`` (positive: worse);
    ``auc_worse_by`` is ``heldout - window`` (positive: worse). ``error``:
    ``no_data`` (no labels), ``too_few_samples`` (fewer than ``min_labels``:
    nothing is judged) or the AUC's own code (e.g. ``single_class``).
    """

    labels: int
    brier: float
    roc_auc: float
    heldout_brier: float
    heldout_roc_auc: float
    brier_worse_by: float
    auc_worse_by: float
    brier_drift: bool
    auc_drift: bool
    error: str | None = None

    @property
    def drifted(self) -> bool:
        return self.brier_drift or self.auc_drift


def concept_drift(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    heldout_brier: float,
    heldout_roc_auc: float,
    config: ConceptDriftConfig | None = None,
) -> ConceptDrift:
    """Judge one window of labelled scores against the held-out quality."""
    config = config if config is not None else ConceptDriftConfig()
    p = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    if p.shape != y.shape:
        raise ValueError(f"{p.size} scores but {y.size} labels")
    n = int(y.size)
    brier = float(brier_losses(p, y).mean()) if n else math.nan
    auc = auc_with_variance(p, y)
    brier_worse_by = brier - heldout_brier
    auc_worse_by = heldout_roc_auc - auc.auc
    enough = n >= config.min_labels
    # The variance is not used here, so a zero one is no error.
    error = auc.error if auc.error != ZERO_VARIANCE else None
    if n == 0:
        error = NO_DATA
    elif not enough:
        error = TOO_FEW_SAMPLES
    return ConceptDrift(
        labels=n,
        brier=brier,
        roc_auc=auc.auc,
        heldout_brier=heldout_brier,
        heldout_roc_auc=heldout_roc_auc,
        brier_worse_by=brier_worse_by,
        auc_worse_by=auc_worse_by,
        # NaN compares False, so an undefined AUC never raises the alarm.
        brier_drift=enough and brier_worse_by > config.brier_margin,
        auc_drift=enough and auc_worse_by > config.auc_margin,
        error=error,
    )
