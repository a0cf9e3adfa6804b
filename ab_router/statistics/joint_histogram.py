"""Shadow mode's coarse joint histogram and the paired AUC drawn from it.

Pure functions behind :class:`~ab_router.statistics.paired_sums.PairedSums`:
the ``bins × bins`` counts of (champion bin, challenger bin) by label, the
covariance of the two models' DeLong placements they give, and the paired
AUC difference with its variance.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ab_router.statistics.auc import AucResult
from ab_router.statistics.score_histogram import (
    ScoreHistogram,
    check_bins,
    score_bins,
    weighted_cov,
)
from ab_router.statistics.summaries import ZERO_VARIANCE

if TYPE_CHECKING:
    from numpy.typing import NDArray

Joint = tuple["NDArray[np.int64]", "NDArray[np.int64]"]


def joint_from_scores(
    champion_p: NDArray[np.float64],
    challenger_p: NDArray[np.float64],
    positive: NDArray[np.bool_],
    bins: int,
) -> Joint:
    """(positive, negative) joint counts of paired scores."""
    cells = score_bins(champion_p, bins) * bins + score_bins(challenger_p, bins)
    return _by_label(cells, positive, None, bins)


def joint_from_rows(rows: NDArray[np.int64], bins: int) -> Joint:
    """(positive, negative) joint counts of sparse ``(label, champion bin,
    challenger bin, count)`` rows, each bin checked against ``bins``."""
    label, i, j, count = rows.T
    check_bins(i, bins)
    check_bins(j, bins)
    return _by_label(i * bins + j, label == 1, count, bins)


def _by_label(
    cells: NDArray[np.int64] | NDArray[np.intp],
    positive: NDArray[np.bool_],
    counts: NDArray[np.int64] | None,
    bins: int,
) -> Joint:
    size = bins * bins

    def histogram(rows: NDArray[np.bool_]) -> NDArray[np.int64]:
        weights = None if counts is None else counts[rows]
        flat = np.bincount(cells[rows], weights, size).astype(np.int64)
        return flat.reshape(bins, bins)

    return histogram(positive), histogram(~positive)


def paired_auc_difference(
    champion: AucResult, challenger: AucResult, same_ranking: bool, joint: Joint
) -> tuple[float, float]:
    """Challenger − champion AUC and its paired DeLong variance.

    Each AUC and its own variance come from the full-resolution histograms;
    the covariance of the two models' placements from the coarse ``joint``
    histogram. ``same_ranking``: both models put every pair in the same bins.
    """
    r1, r2 = champion, challenger
    if r1.error not in (None, ZERO_VARIANCE):
        return math.nan, math.nan
    if same_ranking:
        # Identical models: the exact paired variance is 0, but the coarse
        # covariance would not cancel the full-resolution variances.
        return r2.auc - r1.auc, 0.0
    var = r1.variance + r2.variance - 2.0 * joint_covariance(*joint)
    if var <= 1e-12 * (r1.variance + r2.variance):
        var = 0.0  # as delong_paired: what is left is rounding noise
    return r2.auc - r1.auc, var


def only_diagonal(joint_pos: NDArray[np.int64], joint_neg: NDArray[np.int64]) -> bool:
    """No pair falls in different bins for the two models."""
    off = ~np.eye(joint_pos.shape[0], dtype=bool)
    return not joint_pos[off].any() and not joint_neg[off].any()


def joint_covariance(
    joint_pos: NDArray[np.int64], joint_neg: NDArray[np.int64]
) -> float:
    """Cov(AUC₁, AUC₂) from placements of the coarse joint histogram."""
    h1 = ScoreHistogram(joint_pos.sum(axis=1), joint_neg.sum(axis=1))
    h2 = ScoreHistogram(joint_pos.sum(axis=0), joint_neg.sum(axis=0))
    (v10_1, v01_1), (v10_2, v01_2) = h1.placements(), h2.placements()
    n1, n0 = int(joint_pos.sum()), int(joint_neg.sum())
    cells = joint_pos.shape[0]
    rows, cols = np.divmod(np.arange(cells * cells), cells)
    flat_pos, flat_neg = joint_pos.ravel(), joint_neg.ravel()
    cov10 = weighted_cov(v10_1[rows], v10_2[cols], flat_pos)
    cov01 = weighted_cov(v01_1[rows], v01_2[cols], flat_neg)
    return cov10 / n1 + cov01 / n0
