"""One variant's labelled quality as mergeable sums (:class:`LabelledSums`).

See :mod:`.labelled_sums` for what the sums hold and why.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ab_router.statistics.auc import AucResult
from ab_router.statistics.quality import LOG_LOSS_EPS, brier_losses, log_losses
from ab_router.statistics.running import (
    RunningDifference,
    RunningMoments,
    independent_difference,
)
from ab_router.statistics.score_histogram import SCORE_BINS, ScoreHistogram
from ab_router.statistics.summaries import ConfusionSummary, MomentSummary
from ab_router.statistics.sums_storage import (
    LABELLED_SUMS_COLUMNS,
    SUM_TOLERANCE,
    columns_agree,
)

if TYPE_CHECKING:
    from numpy.typing import ArrayLike


@dataclass(frozen=True, eq=False)
class LabelledSums:
    """Mergeable labelled-quality statistics of one variant (see the module)."""

    n: int
    positives: int
    sum_p: float
    sum_p2: float
    sum_py: float
    brier: MomentSummary
    log_loss: MomentSummary
    confusion: ConfusionSummary
    scores: ScoreHistogram

    @classmethod
    def empty(cls, bins: int = SCORE_BINS) -> LabelledSums:
        return cls(
            0,
            0,
            0.0,
            0.0,
            0.0,
            MomentSummary(),
            MomentSummary(),
            ConfusionSummary(),
            ScoreHistogram.empty(bins),
        )

    @classmethod
    def from_arrays(
        cls,
        probabilities: ArrayLike,
        labels: ArrayLike,
        predictions: ArrayLike,
        *,
        eps: float = LOG_LOSS_EPS,
        bins: int = SCORE_BINS,
    ) -> LabelledSums:
        """The sums of labelled rows (what a label's transaction adds)."""
        p = np.asarray(probabilities, dtype=float).ravel()
        y = np.asarray(labels, dtype=float).ravel()
        return cls(
            n=int(p.size),
            positives=int(np.count_nonzero(y)),
            sum_p=float(p.sum()),
            sum_p2=float(np.dot(p, p)),
            sum_py=float(np.dot(p, y)),
            brier=MomentSummary.from_values(brier_losses(p, y)),
            log_loss=MomentSummary.from_values(log_losses(p, y, eps=eps)),
            confusion=ConfusionSummary.from_arrays(y, predictions),
            scores=ScoreHistogram.from_scores(p, y, bins),
        )

    def __add__(self, other: LabelledSums) -> LabelledSums:
        return LabelledSums(
            self.n + other.n,
            self.positives + other.positives,
            self.sum_p + other.sum_p,
            self.sum_p2 + other.sum_p2,
            self.sum_py + other.sum_py,
            self.brier + other.brier,
            self.log_loss + other.log_loss,
            self.confusion + other.confusion,
            self.scores + other.scores,
        )

    def __neg__(self) -> LabelledSums:
        """The contribution that takes these rows out (a changed label)."""
        return LabelledSums(
            -self.n,
            -self.positives,
            -self.sum_p,
            -self.sum_p2,
            -self.sum_py,
            -self.brier,
            -self.log_loss,
            -self.confusion,
            -self.scores,
        )

    def __sub__(self, other: LabelledSums) -> LabelledSums:
        return self + -other

    def columns(self) -> tuple[int | float, ...]:
        """The scalar fields in :data:`LABELLED_SUMS_COLUMNS` order (the
        ledger's UPSERT adds these); the bins are :meth:`ScoreHistogram.bin_rows`."""
        b, ll, c = self.brier, self.log_loss, self.confusion
        return (
            self.n, self.positives, self.sum_p, self.sum_p2, self.sum_py,
            b.sum, b.sum_squares, ll.sum, ll.sum_squares, c.tp, c.fp, c.tn, c.fn,
        )  # fmt: skip

    def agrees_with(self, other: LabelledSums, *, tol: float = SUM_TOLERANCE) -> bool:
        """Counts and bins equal, float sums within ``tol`` (relative, and
        absolute near 0): what ``rollups --verify`` checks, because sums
        built label by label, with relabels subtracted, differ from a
        recomputation in the last bits."""
        return self.scores == other.scores and columns_agree(
            self.columns(), other.columns(), tol
        )

    @classmethod
    def from_columns(
        cls,
        values: Sequence[float],
        bin_rows: Iterable[Sequence[int]],
        bins: int = SCORE_BINS,
    ) -> LabelledSums:
        """Back from storage: ``values`` in :data:`LABELLED_SUMS_COLUMNS` order,
        ``bin_rows`` sparse ``(label, bin, count)``. O(columns + bin rows)."""
        if len(values) != len(LABELLED_SUMS_COLUMNS):
            raise ValueError(
                f"expected {len(LABELLED_SUMS_COLUMNS)} values "
                f"{LABELLED_SUMS_COLUMNS}, got {len(values)}"
            )
        n, pos, sp, sp2, spy, bs, bq, ls, lq, tp, fp, tn, fn = values
        return cls(
            int(n),
            int(pos),
            float(sp),
            float(sp2),
            float(spy),
            MomentSummary(int(n), float(bs), float(bq)),
            MomentSummary(int(n), float(ls), float(lq)),
            ConfusionSummary(int(tp), int(fp), int(tn), int(fn)),
            ScoreHistogram.from_bin_rows(bin_rows, bins),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelledSums):
            return NotImplemented
        mine = (self.n, self.positives, self.sum_p, self.sum_p2, self.sum_py)
        theirs = (other.n, other.positives, other.sum_p, other.sum_p2, other.sum_py)
        return (
            mine == theirs
            and (self.brier, self.log_loss, self.confusion)
            == (other.brier, other.log_loss, other.confusion)
            and self.scores == other.scores
        )

    __hash__ = None  # type: ignore[assignment]  # mutable arrays inside

    @property
    def brier_score(self) -> float:
        """Mean Brier score from Σp², Σp·y and Σy (y² = y for 0/1 labels)."""
        if self.n == 0:
            return math.nan
        return (self.sum_p2 - 2.0 * self.sum_py + self.positives) / self.n

    @property
    def mean_probability(self) -> float:
        return self.sum_p / self.n if self.n else math.nan

    @property
    def observed_rate(self) -> float:
        return self.positives / self.n if self.n else math.nan

    def auc(self) -> AucResult:
        return self.scores.delong()

    def brier_difference(self, champion: LabelledSums) -> RunningDifference:
        """Independent design: this (challenger) − ``champion``, for the sequence."""
        return independent_difference(
            RunningMoments.of(champion.brier), RunningMoments.of(self.brier)
        )
