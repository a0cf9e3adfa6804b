r"""Labelled quality as mergeable sufficient statistics (issue #12, section 2).

Everything the live view needs about labelled rows, held in frozen
dataclasses with ``__add__`` (gbstats style): a label's transaction adds one
row's worth, workers, replicas and time windows add up, and reading the
experiment costs O(variants × bins), not O(labels).

Per variant, :class:`LabelledSums`:

- ``n``, ``Σy``, ``Σp``, ``Σp²``, ``Σp·y`` (Brier mean, calibration);
- Brier and log-loss :class:`MomentSummary` (sum and sum of squares of the
  per-row losses: Welch tests and the confidence sequence need the
  variance, which ``Σp², Σp·y`` alone do not give); the log-loss sum is
  ``log_loss.sum``;
- confusion counts of the prediction recorded with the exposure (its own
  threshold);
- a :class:`ScoreHistogram`: counts of scores per bin, by label.

ROC AUC from the histogram: scores in the same bin count as ties (one half),
which is exact for the binned scores. Against the raw scores the error is
at most half the share of positive–negative pairs that share a bin,

    |AUC_binned − AUC| ≤ ½ Σ_b pos_b · neg_b / (P · N),

which :meth:`ScoreHistogram.auc_error_bound` reports from the counts alone.
For smooth score densities ``f₊, f₋`` and ``B`` equal bins on [0, 1] the
bound is about ``½ ∫ f₊ f₋ / B``: with ``B`` = 4 096 it stays below 0.001
while ``∫ f₊ f₋ ≤ 8``, and the error actually seen is far smaller because
orderings inside a bin cancel (about 1e-5 on the random data of the tests).
DeLong's variance uses the placements of each bin (fraction of negatives
below plus half the ties), so it is DeLong's variance of the binned scores,
exactly.

Shadow mode, :class:`PairedSums`: both variants' sums on the same pairs,
per-pair Brier and log-loss differences, McNemar's discordant counts, and a
coarse joint histogram (64 × 64 bins by label) for the covariance of the two
models' placements that the paired DeLong variance needs; a full-resolution
joint histogram would cost 4 096² counts.

Storage: the ledger's rollup tables use the column names of
:data:`LABELLED_SUMS_COLUMNS`, :data:`PAIRED_SUMS_COLUMNS` and the sparse
bin rows (:data:`SCORE_BIN_COLUMNS`, :data:`JOINT_BIN_COLUMNS`);
``columns()`` / ``bin_rows()`` give the values to add, ``from_columns``
reads them back. Every sum negates, so a changed label's old contribution
is subtracted (``new − old``), and ``agrees_with`` compares a rollup with a
recomputation (counts exact, float sums within :data:`SUM_TOLERANCE`).

The anytime-valid decision reads the same sums:
:meth:`LabelledSums.brier_difference` / :meth:`PairedSums.brier_difference`
give the :class:`~.running.RunningDifference` the summary feeds to
:func:`~.sequential.confidence_sequence`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ab_router.statistics.auc import AucResult, label_error
from ab_router.statistics.quality import LOG_LOSS_EPS, brier_losses, log_losses
from ab_router.statistics.running import (
    RunningDifference,
    RunningMoments,
    independent_difference,
    paired_difference,
)
from ab_router.statistics.summaries import (
    ZERO_VARIANCE,
    ConfusionSummary,
    MomentSummary,
)

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

#: Equal-width score bins on [0, 1] per label (see the module docstring).
SCORE_BINS = 4096
#: Bins per model of the shadow-mode joint histogram (covariance only).
JOINT_BINS = 64

#: Scalar columns of one variant's labelled sums, in the order of
#: :meth:`LabelledSums.columns` / :meth:`LabelledSums.from_columns`. The
#: ledger's rollup table uses these names, so the two cannot drift apart.
#: ``n`` is also the count of both loss moments (every labelled row has both
#: losses), so it is stored once.
LABELLED_SUMS_COLUMNS = (
    "n", "positives", "sum_p", "sum_p2", "sum_py",
    "brier_sum", "brier_sum_sq", "logloss_sum", "logloss_sum_sq",
    "tp", "fp", "tn", "fn",
)  # fmt: skip
#: Relative (and, near 0, absolute) tolerance on float sums when rollups are
#: compared with a recomputation; counts must match exactly.
SUM_TOLERANCE = 1e-9
#: Columns of a sparse score-bin row: label (0/1), bin in [0, bins), count.
SCORE_BIN_COLUMNS = ("label", "bin", "count")
#: Scalar columns of shadow-mode paired sums (:meth:`PairedSums.columns`):
#: both models' labelled sums, prefixed, then the per-pair differences
#: (challenger − champion; their count is ``champion_n``) and McNemar's
#: discordant counts.
PAIRED_SUMS_COLUMNS = (
    *(f"champion_{c}" for c in LABELLED_SUMS_COLUMNS),
    *(f"challenger_{c}" for c in LABELLED_SUMS_COLUMNS),
    "bdiff_sum", "bdiff_sum_sq", "ldiff_sum", "ldiff_sum_sq",
    "mcnemar_b", "mcnemar_c",
)  # fmt: skip
#: Columns of a sparse joint-bin row of the paired sums.
JOINT_BIN_COLUMNS = ("label", "bin1", "bin2", "count")


def score_bins(scores: ArrayLike, bins: int = SCORE_BINS) -> NDArray[np.intp]:
    """Bin index of each score; 1.0 falls in the last bin."""
    p = np.asarray(scores, dtype=float)
    return np.clip((p * bins).astype(np.intp), 0, bins - 1)


def _columns_agree(
    mine: Sequence[int | float], theirs: Sequence[int | float], tol: float
) -> bool:
    return all(
        a == b
        if isinstance(a, int) and isinstance(b, int)
        else math.isclose(a, b, rel_tol=tol, abs_tol=tol)
        for a, b in zip(mine, theirs, strict=True)
    )


def _check_bins(index: NDArray[np.int64], bins: int) -> None:
    if index.size and (index.min() < 0 or index.max() >= bins):
        raise ValueError(f"score bin outside [0, {bins}): {index.min()}..{index.max()}")


@dataclass(frozen=True, eq=False)
class ScoreHistogram:
    """Counts of scores per bin among positive and among negative rows."""

    positive: NDArray[np.int64]
    negative: NDArray[np.int64]

    @classmethod
    def empty(cls, bins: int = SCORE_BINS) -> ScoreHistogram:
        return cls(np.zeros(bins, np.int64), np.zeros(bins, np.int64))

    @classmethod
    def from_scores(
        cls, scores: ArrayLike, labels: ArrayLike, bins: int = SCORE_BINS
    ) -> ScoreHistogram:
        b = score_bins(scores, bins)
        y = np.asarray(labels).astype(bool)
        return cls(
            np.bincount(b[y], minlength=bins).astype(np.int64),
            np.bincount(b[~y], minlength=bins).astype(np.int64),
        )

    @classmethod
    def from_bin_rows(
        cls, rows: Iterable[Sequence[int]], bins: int = SCORE_BINS
    ) -> ScoreHistogram:
        """From sparse ``(label, bin, count)`` rows (:data:`SCORE_BIN_COLUMNS`)."""
        table = np.asarray(list(rows), dtype=np.int64).reshape(-1, 3)
        label, index, count = table.T
        _check_bins(index, bins)
        pos = label == 1
        return cls(
            np.bincount(index[pos], count[pos], bins).astype(np.int64),
            np.bincount(index[~pos], count[~pos], bins).astype(np.int64),
        )

    def bin_rows(self) -> list[tuple[int, int, int]]:
        """Sparse ``(label, bin, count)`` rows of the non-zero bins, label 1
        first; counts are negative in a contribution that removes labels."""
        return [
            (label, int(b), int(counts[b]))
            for label, counts in ((1, self.positive), (0, self.negative))
            for b in np.flatnonzero(counts)
        ]

    @property
    def bins(self) -> int:
        return int(self.positive.size)

    def __add__(self, other: ScoreHistogram) -> ScoreHistogram:
        return ScoreHistogram(
            self.positive + other.positive, self.negative + other.negative
        )

    def __neg__(self) -> ScoreHistogram:
        return ScoreHistogram(-self.positive, -self.negative)

    def __sub__(self, other: ScoreHistogram) -> ScoreHistogram:
        return self + -other

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ScoreHistogram)
            and np.array_equal(self.positive, other.positive)
            and np.array_equal(self.negative, other.negative)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable arrays inside

    def placements(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """DeLong's placements per bin: for a positive, the share of negatives
        scored lower (ties one half); for a negative, of positives scored higher."""
        pos, neg = self.positive.astype(float), self.negative.astype(float)
        neg_below = np.cumsum(neg) - neg
        pos_above = pos.sum() - np.cumsum(pos)
        with np.errstate(divide="ignore", invalid="ignore"):
            v10 = (neg_below + 0.5 * neg) / neg.sum()
            v01 = (pos_above + 0.5 * pos) / pos.sum()
        return v10, v01

    def auc_error_bound(self) -> float:
        """Largest possible |binned AUC − AUC of the raw scores|."""
        n1, n0 = int(self.positive.sum()), int(self.negative.sum())
        if n1 == 0 or n0 == 0:
            return math.nan
        same_bin = float(np.dot(self.positive.astype(float), self.negative))
        return 0.5 * same_bin / (n1 * n0)

    def delong(self) -> AucResult:
        """ROC AUC and DeLong variance of the binned scores."""
        n1, n0 = int(self.positive.sum()), int(self.negative.sum())
        error = label_error(n1, n0)
        if error is not None:
            return AucResult(math.nan, math.nan, n1, n0, error)
        v10, v01 = self.placements()
        auc = float(np.dot(self.positive, v10) / n1)
        var = (
            _weighted_var(v10, self.positive) / n1
            + _weighted_var(v01, self.negative) / n0
        )
        return AucResult(auc, var, n1, n0, ZERO_VARIANCE if var <= 0 else None)


def _weighted_var(x: NDArray[np.float64], counts: NDArray[np.int64]) -> float:
    """Sample variance (ddof=1) of ``x[b]`` repeated ``counts[b]`` times."""
    return _weighted_cov(x, x, counts)


def _weighted_cov(
    x: NDArray[np.float64], y: NDArray[np.float64], counts: NDArray[np.int64]
) -> float:
    n = float(counts.sum())
    w = counts.astype(float)
    shown = w > 0  # placements of empty bins may be NaN; they weigh nothing
    x, y, w = x[shown], y[shown], w[shown]
    mx, my = np.dot(w, x) / n, np.dot(w, y) / n
    return float(np.dot(w, (x - mx) * (y - my)) / (n - 1))


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
        return self.scores == other.scores and _columns_agree(
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
            and _columns_agree(self.columns(), other.columns(), tol)
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
        _check_bins(i, joint_bins)
        _check_bins(j, joint_bins)
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
    cov10 = _weighted_cov(v10_1[rows], v10_2[cols], flat_pos)
    cov01 = _weighted_cov(v01_1[rows], v01_2[cols], flat_neg)
    return cov10 / n1 + cov01 / n0
