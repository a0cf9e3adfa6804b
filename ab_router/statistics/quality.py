"""Per-variant model quality from labelled exposures.

Per-row losses (lower is better):

- Brier: ``(p - y)²``.
- Log loss: ``-(y log p + (1 - y) log(1 - p))`` with ``p`` clipped to
  ``[ε, 1 - ε]`` (ε = 1e-15) so a confident miss costs ≈ 34.5, not infinity.

Accuracy, precision and recall use the 0/1 prediction the variant made at its
own decision threshold (recorded with the exposure), not a common 0.5 cut.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ab_router.statistics.auc import auc_with_variance
from ab_router.statistics.summaries import (
    NO_DATA,
    SINGLE_CLASS,
    ConfusionSummary,
    MomentSummary,
)

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    from ab_router.statistics.labelled_sums import LabelledSums

LOG_LOSS_EPS = 1e-15


def brier_losses(probabilities: ArrayLike, labels: ArrayLike) -> NDArray[np.float64]:
    p = np.asarray(probabilities, dtype=float)
    y = np.asarray(labels, dtype=float)
    return (p - y) ** 2


def log_losses(
    probabilities: ArrayLike, labels: ArrayLike, *, eps: float = LOG_LOSS_EPS
) -> NDArray[np.float64]:
    p = np.clip(np.asarray(probabilities, dtype=float), eps, 1.0 - eps)
    y = np.asarray(labels, dtype=float)
    return -(y * np.log(p) + (1.0 - y) * np.log1p(-p))


@dataclass(frozen=True)
class VariantQuality:
    """How well one variant predicted churn on its labelled exposures."""

    variant: str
    labelled: int
    accuracy: float
    precision: float
    recall: float
    roc_auc: float
    brier: float
    log_loss: float
    observed_churn_rate: float
    predicted_churn_rate: float
    mean_probability: float
    brier_summary: MomentSummary
    log_loss_summary: MomentSummary
    confusion: ConfusionSummary
    error: str | None = None

    @classmethod
    def from_sums(cls, variant: str, sums: LabelledSums) -> VariantQuality:
        """The same fields from mergeable sums; ``roc_auc`` is the binned AUC.

        Every other field uses the formula :func:`variant_quality` applies to
        the rows, so the two agree up to float summation order.
        """
        confusion = sums.confusion
        auc = sums.auc()
        return cls(
            variant=variant,
            labelled=sums.n,
            accuracy=confusion.accuracy,
            precision=confusion.precision,
            recall=confusion.recall,
            roc_auc=auc.auc,
            brier=sums.brier.mean,
            log_loss=sums.log_loss.mean,
            observed_churn_rate=confusion.observed_rate,
            predicted_churn_rate=confusion.predicted_rate,
            mean_probability=sums.mean_probability,
            brier_summary=sums.brier,
            log_loss_summary=sums.log_loss,
            confusion=confusion,
            error=_quality_error(sums.n, auc.error),
        )


def variant_quality(
    variant: str,
    probabilities: ArrayLike,
    labels: ArrayLike,
    predictions: ArrayLike,
    *,
    eps: float = LOG_LOSS_EPS,
) -> VariantQuality:
    """Quality metrics of one variant; ``error`` names a degenerate sample.

    With one class only, AUC is undefined (NaN, ``single_class``) while the
    other metrics are still reported.
    """
    p = np.asarray(probabilities, dtype=float).ravel()
    y = np.asarray(labels, dtype=float).ravel()
    brier = MomentSummary.from_values(brier_losses(p, y))
    logl = MomentSummary.from_values(log_losses(p, y, eps=eps))
    confusion = ConfusionSummary.from_arrays(y, predictions)
    auc = auc_with_variance(p, y)
    return VariantQuality(
        variant=variant,
        labelled=int(y.size),
        accuracy=confusion.accuracy,
        precision=confusion.precision,
        recall=confusion.recall,
        roc_auc=auc.auc,
        brier=brier.mean,
        log_loss=logl.mean,
        observed_churn_rate=confusion.observed_rate,
        predicted_churn_rate=confusion.predicted_rate,
        mean_probability=float(p.mean()) if p.size else math.nan,
        brier_summary=brier,
        log_loss_summary=logl,
        confusion=confusion,
        error=_quality_error(int(y.size), auc.error),
    )


def _quality_error(labelled: int, auc_error: str | None) -> str | None:
    if labelled == 0:
        return NO_DATA
    return SINGLE_CLASS if auc_error == SINGLE_CLASS else None
