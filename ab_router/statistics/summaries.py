"""Mergeable summaries: the only state the statistics need for means and rates.

Following GrowthBook's gbstats, a metric is reduced per variant to a few sums
(``n``, ``sum``, ``sum_squares`` or counts) held in frozen dataclasses with
``__add__``, so summaries from several workers, shards or time windows combine
exactly without shipping raw rows. ``MomentSummary`` and ``ConfusionSummary``
also negate and subtract, so a changed label's old contribution can be taken
out of a rollup. Everything derived from them (means,
variances, rates) is a property, and degenerate inputs yield NaN rather than
an exception; the comparisons built on them turn that into an error code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

#: Error codes carried by result objects instead of raising.
NO_DATA = "no_data"
TOO_FEW_SAMPLES = "too_few_samples"
ZERO_VARIANCE = "zero_variance"
SINGLE_CLASS = "single_class"
NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True)
class MomentSummary:
    """``n``, sum and sum of squares of a real-valued per-row metric."""

    n: int = 0
    sum: float = 0.0
    sum_squares: float = 0.0

    def __add__(self, other: MomentSummary) -> MomentSummary:
        return MomentSummary(
            self.n + other.n,
            self.sum + other.sum,
            self.sum_squares + other.sum_squares,
        )

    def __neg__(self) -> MomentSummary:
        """The contribution that removes this one (a changed label)."""
        return MomentSummary(-self.n, -self.sum, -self.sum_squares)

    def __sub__(self, other: MomentSummary) -> MomentSummary:
        return self + -other

    @classmethod
    def from_values(cls, values: ArrayLike) -> MomentSummary:
        x = np.asarray(values, dtype=float).ravel()
        return cls(int(x.size), float(x.sum()), float(np.dot(x, x)))

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n > 0 else math.nan

    @property
    def variance(self) -> float:
        """Unbiased sample variance (ddof=1); NaN below two rows.

        Computed from the raw sums, so it is clipped at 0 against the tiny
        negative values cancellation can produce when all rows are equal.
        """
        if self.n < 2:
            return math.nan
        centred = self.sum_squares - self.sum * self.sum / self.n
        scale = max(abs(self.sum_squares), 1.0)
        if centred <= 1e-12 * scale:
            return 0.0
        return centred / (self.n - 1)

    @property
    def std(self) -> float:
        v = self.variance
        return math.sqrt(v) if not math.isnan(v) else math.nan


@dataclass(frozen=True)
class ProportionSummary:
    """Number of rows and of successes for a 0/1 metric."""

    n: int = 0
    successes: int = 0

    def __add__(self, other: ProportionSummary) -> ProportionSummary:
        return ProportionSummary(self.n + other.n, self.successes + other.successes)

    @classmethod
    def from_values(cls, values: ArrayLike) -> ProportionSummary:
        x = np.asarray(values).ravel()
        return cls(int(x.size), int(np.count_nonzero(x)))

    @property
    def proportion(self) -> float:
        return self.successes / self.n if self.n > 0 else math.nan


@dataclass(frozen=True)
class ConfusionSummary:
    """Confusion-matrix counts of 0/1 predictions against 0/1 labels."""

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    def __add__(self, other: ConfusionSummary) -> ConfusionSummary:
        return ConfusionSummary(
            self.tp + other.tp,
            self.fp + other.fp,
            self.tn + other.tn,
            self.fn + other.fn,
        )

    def __neg__(self) -> ConfusionSummary:
        return ConfusionSummary(-self.tp, -self.fp, -self.tn, -self.fn)

    def __sub__(self, other: ConfusionSummary) -> ConfusionSummary:
        return self + -other

    @classmethod
    def from_arrays(cls, labels: ArrayLike, predictions: ArrayLike) -> ConfusionSummary:
        y = np.asarray(labels).astype(bool).ravel()
        p = np.asarray(predictions).astype(bool).ravel()
        tp = int(np.count_nonzero(y & p))
        fp = int(np.count_nonzero(~y & p))
        fn = int(np.count_nonzero(y & ~p))
        return cls(tp=tp, fp=fp, tn=int(y.size) - tp - fp - fn, fn=fn)

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def correct(self) -> ProportionSummary:
        return ProportionSummary(self.n, self.tp + self.tn)

    @property
    def accuracy(self) -> float:
        return _ratio(self.tp + self.tn, self.n)

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def observed_rate(self) -> float:
        """Share of rows whose label is 1 (the observed churn rate)."""
        return _ratio(self.tp + self.fn, self.n)

    @property
    def predicted_rate(self) -> float:
        """Share of rows predicted 1 at the variant's threshold."""
        return _ratio(self.tp + self.fp, self.n)


def _ratio(num: int, den: int) -> float:
    return num / den if den > 0 else math.nan
