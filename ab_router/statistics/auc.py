"""ROC AUC with DeLong variances, for independent and paired comparisons.

AUC is not a mean of per-row values, so it needs the raw scores (no mergeable
summary). The variance is DeLong, DeLong & Clarke-Pearson (1988),
"Comparing the areas under two or more correlated ROC curves", Biometrics
44(3):837–845, computed with midranks in O(n log n) as in Sun & Xu (2014),
"Fast implementation of DeLong's algorithm", IEEE Signal Processing Letters
21(11):1389–1393:

- structural components ``V10_i = (R_i - R⁺_i) / n₀`` for each positive
  (``R`` its midrank among all rows, ``R⁺`` among positives) and
  ``V01_j = 1 - (R_j - R⁻_j) / n₁`` for each negative;
- ``AUC = mean(V10)``, ``Var = S10 / n₁ + S01 / n₀`` with ``S`` the sample
  (co)variances of the components across models.

Independent samples (split): ``Var(AUC_x - AUC_y) = Var_x + Var_y``.
Paired (both models scored the same rows): the covariance term is
subtracted. Both use a normal z-test and a Wald interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ab_router.statistics.results import DifferenceResult
from ab_router.statistics.summaries import (
    NO_DATA,
    SINGLE_CLASS,
    TOO_FEW_SAMPLES,
    ZERO_VARIANCE,
)

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True)
class AucResult:
    """ROC AUC of one score against 0/1 labels, with its DeLong variance."""

    auc: float
    variance: float
    n_positive: int
    n_negative: int
    error: str | None = None


def _components(
    scores: NDArray[np.float64], labels: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """DeLong structural components for each row of ``scores`` (models × rows)."""
    from scipy import stats  # imported late: see the package docstring

    pos, neg = scores[:, labels], scores[:, ~labels]
    n1, n0 = pos.shape[1], neg.shape[1]
    rank_all = stats.rankdata(scores, axis=1)
    rank_pos = stats.rankdata(pos, axis=1)
    rank_neg = stats.rankdata(neg, axis=1)
    v10 = (rank_all[:, labels] - rank_pos) / n0
    v01 = 1.0 - (rank_all[:, ~labels] - rank_neg) / n1
    return v10, v01


def _check(labels: NDArray[np.bool_]) -> str | None:
    n1 = int(labels.sum())
    return label_error(n1, labels.size - n1)


def label_error(n1: int, n0: int) -> str | None:
    """Why ``n1`` positives and ``n0`` negatives give no AUC, or None."""
    if n1 + n0 == 0:
        return NO_DATA
    if n1 == 0 or n0 == 0:
        return SINGLE_CLASS
    if n1 < 2 or n0 < 2:
        return TOO_FEW_SAMPLES
    return None


def auc_with_variance(scores: ArrayLike, labels: ArrayLike) -> AucResult:
    """ROC AUC and its DeLong variance; ties count one half."""
    s = np.asarray(scores, dtype=float).reshape(1, -1)
    y = np.asarray(labels).astype(bool).ravel()
    n1 = int(y.sum())
    n0 = y.size - n1
    error = _check(y)
    if error is not None:
        return AucResult(math.nan, math.nan, n1, n0, error)
    v10, v01 = _components(s, y)
    auc = float(v10.mean())
    var = float(v10.var(ddof=1) / n1 + v01.var(ddof=1) / n0)
    return AucResult(auc, var, n1, n0, ZERO_VARIANCE if var <= 0 else None)


def auc_z_test(
    method: str, estimate: float, var: float, alpha: float
) -> DifferenceResult:
    """z-test and Wald interval of an AUC difference with variance ``var``."""
    from scipy import stats  # imported late: see the package docstring

    if not var > 0:
        return DifferenceResult.failed(
            "roc_auc", method, ZERO_VARIANCE, estimate=estimate, confidence=1 - alpha
        )
    se = math.sqrt(var)
    z = estimate / se
    q = float(stats.norm.ppf(1 - alpha / 2))
    return DifferenceResult(
        "roc_auc",
        method,
        estimate,
        estimate - q * se,
        estimate + q * se,
        2.0 * float(stats.norm.sf(abs(z))),
        statistic=z,
        confidence=1 - alpha,
    )


def delong_independent(
    scores_x: ArrayLike,
    labels_x: ArrayLike,
    scores_y: ArrayLike,
    labels_y: ArrayLike,
    *,
    alpha: float = 0.05,
) -> DifferenceResult:
    """``AUC_x - AUC_y`` for two models scored on disjoint samples."""
    rx = auc_with_variance(scores_x, labels_x)
    ry = auc_with_variance(scores_y, labels_y)
    return delong_independent_of(rx, ry, alpha=alpha)


def delong_independent_of(
    rx: AucResult, ry: AucResult, *, alpha: float = 0.05
) -> DifferenceResult:
    """``AUC_x - AUC_y`` from each model's AUC and DeLong variance (exact or
    binned: the live view passes :meth:`.labelled_sums.ScoreHistogram.delong`)."""
    method = "delong_independent"
    for r in (rx, ry):
        if r.error is not None and r.error != ZERO_VARIANCE:
            return DifferenceResult.failed(
                "roc_auc", method, r.error, confidence=1 - alpha
            )
    return auc_z_test(method, rx.auc - ry.auc, rx.variance + ry.variance, alpha)


def delong_paired(
    scores_x: ArrayLike,
    scores_y: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: float = 0.05,
) -> DifferenceResult:
    """``AUC_x - AUC_y`` for two models scored on the same rows."""
    y = np.asarray(labels).astype(bool).ravel()
    method = "delong_paired"
    error = _check(y)
    if error is not None:
        return DifferenceResult.failed("roc_auc", method, error, confidence=1 - alpha)
    s = np.vstack(
        [
            np.asarray(scores_x, dtype=float).ravel(),
            np.asarray(scores_y, dtype=float).ravel(),
        ]
    )
    v10, v01 = _components(s, y)
    n1, n0 = v10.shape[1], v01.shape[1]
    cov = np.cov(v10) / n1 + np.cov(v01) / n0
    auc = v10.mean(axis=1)
    var = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    if var <= 1e-12 * float(cov[0, 0] + cov[1, 1]):
        var = 0.0  # identical rankings: what is left is rounding noise
    return auc_z_test(method, float(auc[0] - auc[1]), var, alpha)
