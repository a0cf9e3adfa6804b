"""Shadow mode's labelled pairs as mergeable sums (:class:`PairedSums`).

Both variants' sums on the same pairs, per-pair Brier and log-loss
differences, McNemar's discordant counts, and a coarse joint histogram
(:data:`JOINT_BINS` × :data:`JOINT_BINS` by label) for the covariance of the
two models' placements that the paired DeLong variance needs; a
full-resolution joint histogram would cost 4 096² counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ab_router.statistics.joint_histogram import (
    joint_from_rows,
    joint_from_scores,
    only_diagonal,
    paired_auc_difference,
)
from ab_router.statistics.quality import LOG_LOSS_EPS, brier_losses, log_losses
from ab_router.statistics.running import (
    RunningDifference,
    RunningMoments,
    paired_difference,
)
from ab_router.statistics.score_histogram import SCORE_BINS
from ab_router.statistics.summaries import MomentSummary
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
        return cls(
            LabelledSums.from_arrays(p1, y, champion_pred, eps=eps, bins=bins),
            LabelledSums.from_arrays(p2, y, challenger_pred, eps=eps, bins=bins),
            MomentSummary.from_values(brier_losses(p2, y) - brier_losses(p1, y)),
            MomentSummary.from_values(
                log_losses(p2, y, eps=eps) - log_losses(p1, y, eps=eps)
            ),
            int(np.count_nonzero(c2 & ~c1)),
            int(np.count_nonzero(c1 & ~c2)),
            *joint_from_scores(p1, p2, y.astype(bool), joint_bins),
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
        return cls(
            champion,
            challenger,
            MomentSummary(n, float(ds), float(dq)),
            MomentSummary(n, float(ls), float(lq)),
            int(b),
            int(c),
            *joint_from_rows(table, joint_bins),
        )

    @property
    def n(self) -> int:
        return self.brier_differences.n

    def brier_difference(self) -> RunningDifference:
        """Paired design: the per-pair differences, for the sequence."""
        return paired_difference(RunningMoments.of(self.brier_differences))

    def auc_difference(self) -> tuple[float, float]:
        """Challenger − champion AUC and its paired DeLong variance
        (:func:`~ab_router.statistics.joint_histogram.paired_auc_difference`)."""
        joint = (self.joint_positive, self.joint_negative)
        same_ranking = self.champion.scores == self.challenger.scores and (
            only_diagonal(*joint)
        )
        return paired_auc_difference(
            self.champion.auc(), self.challenger.auc(), same_ranking, joint
        )
