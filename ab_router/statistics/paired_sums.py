"""Shadow mode's labelled pairs as mergeable sums (:class:`PairedSums`).

Both variants' sums on the same pairs, per-pair Brier and log-loss
differences, McNemar's discordant counts, and a coarse joint histogram
(:data:`JOINT_BINS` × :data:`JOINT_BINS` by label) for the covariance of the
two models' placements that the paired DeLong variance needs; a
full-resolution joint histogram would cost 4 096² counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ab_router.statistics.quality import LOG_LOSS_EPS, brier_losses, log_losses
from ab_router.statistics.running import (
    RunningDifference,
    RunningMoments,
    paired_difference,
)
from ab_router.statistics.score_histogram import (
    SCORE_BINS,
    ScoreHistogram,
    check_bins,
    score_bins,
    weighted_cov,
)
from ab_router.statistics.summaries import ZERO_VARIANCE, MomentSummary
from ab_router.statistics.sums_storage import (
    LABELLED_SUMS_COLUMNS,
    PAIRED_SUMS_COLUMNS,
    SUM_TOLERANCE,
    columns_agree,
)
from ab_router.statistics.variant_sums import LabelledSums

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

#: Bins per model of the shadow-mode joint histogram (covariance only).
JOINT_BINS = 64


@dataclass(frozen=True, eq=False)
class PairedSums:
    """Shadow mode: both variants on the same labelled pairs."""

    champion: LabelledSums
    challenger: LabelledSums
    brier_differences: MomentSummary
    """Per-pair Brier(challenger) − Brier(champion)."""
    log_loss_differences: MomentSummary
    only_challenger_correct: int
    only_champion_correct: int
    joint_positive: NDArray[np.int64]
    """JOINT_BINS × JOINT_BINS counts of (champion bin, challenger bin)."""
    joint_negative: NDArray[np.int64]

    @classmethod
    def empty(cls, bins: int = SCORE_BINS, joint_bins: int = JOINT_BINS) -> PairedSums:
        zeros = np.zeros((joint_bins, joint_bins), np.int64)
        return cls(
            LabelledSums.empty(bins),
            LabelledSums.empty(bins),
            MomentSummary(),
            MomentSummary(),
            0,
            0,
            zeros,
            zeros.copy(),
        )

    @classmethod
    def from_arrays(
        cls,
        champion_p: ArrayLike,
        challenger_p: ArrayLike,
        labels: ArrayLike,
        champion_pred: ArrayLike,
        challenger_pred: ArrayLike,
        *,
        eps: float = LOG_LOSS_EPS,
        bins: int = SCORE_BINS,
        joint_bins: int = JOINT_BINS,
    ) -> PairedSums:
        p1 = np.asarray(champion_p, dtype=float).ravel()
        p2 = np.asarray(challenger_p, dtype=float).ravel()
        y = np.asarray(labels, dtype=float).ravel()
        c1 = np.asarray(champion_pred) == y
        c2 = np.asarray(challenger_pred) == y
        cell = score_bins(p1, joint_bins) * joint_bins + score_bins(p2, joint_bins)
        pos = y.astype(bool)
        size = joint_bins * joint_bins
        return cls(
            LabelledSums.from_arrays(p1, y, champion_pred, eps=eps, bins=bins),
            LabelledSums.from_arrays(p2, y, challenger_pred, eps=eps, bins=bins),
            MomentSummary.from_values(brier_losses(p2, y) - brier_losses(p1, y)),
            MomentSummary.from_values(
                log_losses(p2, y, eps=eps) - log_losses(p1, y, eps=eps)
            ),
            int(np.count_nonzero(c2 & ~c1)),
            int(np.count_nonzero(c1 & ~c2)),
            np.bincount(cell[pos], minlength=size).reshape(joint_bins, joint_bins),
            np.bincount(cell[~pos], minlength=size).reshape(joint_bins, joint_bins),
        )

    def __add__(self, other: PairedSums) -> PairedSums:
        return PairedSums(
            self.champion + other.champion,
            self.challenger + other.challenger,
            self.brier_differences + other.brier_differences,
            self.log_loss_differences + other.log_loss_differences,
            self.only_challenger_correct + other.only_challenger_correct,
            self.only_champion_correct + other.only_champion_correct,
            self.joint_positive + other.joint_positive,
            self.joint_negative + other.joint_negative,
        )

    def __neg__(self) -> PairedSums:
        """The contribution that takes these pairs out (a changed label)."""
        return PairedSums(
            -self.champion,
            -self.challenger,
            -self.brier_differences,
            -self.log_loss_differences,
            -self.only_challenger_correct,
            -self.only_champion_correct,
            -self.joint_positive,
            -self.joint_negative,
        )

    def __sub__(self, other: PairedSums) -> PairedSums:
        return self + -other

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PairedSums):
            return NotImplemented
        return (
            self.champion == other.champion
            and self.challenger == other.challenger
            and self.columns() == other.columns()
            and np.array_equal(self.joint_positive, other.joint_positive)
            and np.array_equal(self.joint_negative, other.joint_negative)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable arrays inside

    def columns(self) -> tuple[int | float, ...]:
        """Scalars in :data:`PAIRED_SUMS_COLUMNS` order: both models' columns
        (prefixed), then the per-pair differences and McNemar's counts."""
        d, ll = self.brier_differences, self.log_loss_differences
        return (
            *self.champion.columns(),
            *self.challenger.columns(),
            d.sum, d.sum_squares, ll.sum, ll.sum_squares,
            self.only_challenger_correct, self.only_champion_correct,
        )  # fmt: skip

    def agrees_with(self, other: PairedSums, *, tol: float = SUM_TOLERANCE) -> bool:
        """As :meth:`LabelledSums.agrees_with`, joint histogram included."""
        return (
            self.champion.scores == other.champion.scores
            and self.challenger.scores == other.challenger.scores
            and np.array_equal(self.joint_positive, other.joint_positive)
            and np.array_equal(self.joint_negative, other.joint_negative)
            and columns_agree(self.columns(), other.columns(), tol)
        )

    def joint_rows(self) -> list[tuple[int, int, int, int]]:
        """Sparse ``(label, champion bin, challenger bin, count)`` rows."""
        return [
            (label, int(i), int(j), int(joint[i, j]))
            for label, joint in ((1, self.joint_positive), (0, self.joint_negative))
            for i, j in zip(*np.nonzero(joint), strict=True)
        ]

    @classmethod
    def from_columns(
        cls,
        values: Sequence[float],
        champion_bins: Iterable[Sequence[int]],
        challenger_bins: Iterable[Sequence[int]],
        joint_rows: Iterable[Sequence[int]],
        *,
        bins: int = SCORE_BINS,
        joint_bins: int = JOINT_BINS,
    ) -> PairedSums:
        """Back from storage: ``values`` in :data:`PAIRED_SUMS_COLUMNS` order,
        each model's sparse score bins and the sparse joint rows."""
        if len(values) != len(PAIRED_SUMS_COLUMNS):
            raise ValueError(
                f"expected {len(PAIRED_SUMS_COLUMNS)} values "
                f"{PAIRED_SUMS_COLUMNS}, got {len(values)}"
            )
        k = len(LABELLED_SUMS_COLUMNS)
        champion = LabelledSums.from_columns(values[:k], champion_bins, bins)
        challenger = LabelledSums.from_columns(values[k : 2 * k], challenger_bins, bins)
        ds, dq, ls, lq, b, c = values[2 * k :]
        n = champion.n
        table = np.asarray(list(joint_rows), dtype=np.int64).reshape(-1, 4)
        label, i, j, count = table.T
        check_bins(i, joint_bins)
        check_bins(j, joint_bins)
        cell, pos, size = i * joint_bins + j, label == 1, joint_bins * joint_bins
        return cls(
            champion,
            challenger,
            MomentSummary(n, float(ds), float(dq)),
            MomentSummary(n, float(ls), float(lq)),
            int(b),
            int(c),
            np.bincount(cell[pos], count[pos], size)
            .astype(np.int64)
            .reshape(joint_bins, joint_bins),
            np.bincount(cell[~pos], count[~pos], size)
            .astype(np.int64)
            .reshape(joint_bins, joint_bins),
        )

    @property
    def n(self) -> int:
        return self.brier_differences.n

    def brier_difference(self) -> RunningDifference:
        """Paired design: the per-pair differences, for the sequence."""
        return paired_difference(RunningMoments.of(self.brier_differences))

    def auc_difference(self) -> tuple[float, float]:
        """Challenger − champion AUC and its paired DeLong variance.

        Each AUC and its own variance come from the full-resolution
        histograms; the covariance of the two models' placements from the
        coarse joint histogram.
        """
        r1, r2 = self.champion.auc(), self.challenger.auc()
        if r1.error not in (None, ZERO_VARIANCE):
            return math.nan, math.nan
        if self._same_ranking():
            # Identical models: the exact paired variance is 0, but the coarse
            # covariance would not cancel the full-resolution variances.
            return r2.auc - r1.auc, 0.0
        cov = _joint_covariance(self.joint_positive, self.joint_negative)
        var = r1.variance + r2.variance - 2.0 * cov
        if var <= 1e-12 * (r1.variance + r2.variance):
            var = 0.0  # as delong_paired: what is left is rounding noise
        return r2.auc - r1.auc, var

    def _same_ranking(self) -> bool:
        """Both models put every pair in the same bins (e.g. the same model)."""
        off = ~np.eye(self.joint_positive.shape[0], dtype=bool)
        return (
            self.champion.scores == self.challenger.scores
            and not self.joint_positive[off].any()
            and not self.joint_negative[off].any()
        )


def _joint_covariance(
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
