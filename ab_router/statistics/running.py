"""Running challenger − champion differences of per-row losses, vectorised.

The one implementation behind the sequential statistic's inputs: the
estimate, its standard error and the number of labels ``t``, after every
label (the report's curve), at chosen checkpoints of many simulated runs at
once (the simulation), or at a single point from mergeable summaries (the
live summary). Cumulative sums run along the last axis; nothing loops in
Python per label.

One function per design (see :mod:`.design`):

- :func:`paired_difference`: the mean of per-row differences ``d``,
  ``se = σ̂_d / √t``, ``t`` = pairs;
- :func:`independent_difference`: ``mean₂ − mean₁``,
  ``se² = s₂²/n₂ + s₁²/n₁``, ``t = n₁ + n₂``.

Variances follow :attr:`.summaries.MomentSummary.variance` exactly (NaN below
two rows, cancellation noise clipped to 0), so the last point of a running
curve and the summary agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ab_router.statistics.sequential import bounds, mixture_rho

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from ab_router.statistics.summaries import MomentSummary

# Same relative tolerance as MomentSummary.variance: below it the centred sum
# of squares is cancellation noise of equal rows, so the variance is 0.
_CANCELLATION = 1e-12


def _take(x: NDArray[np.float64], at: NDArray[np.intp] | None) -> NDArray[np.float64]:
    """``x`` at positions ``at`` of its last axis (checkpoints); all if None."""
    return x if at is None else x[..., at]


@dataclass(frozen=True)
class RunningMoments:
    """Count, sum and sum of squares of a per-row metric, as (broadcastable) arrays."""

    n: NDArray[np.float64]
    sum: NDArray[np.float64]
    sum_squares: NDArray[np.float64]

    @classmethod
    def of(cls, m: MomentSummary) -> RunningMoments:
        """The single point held by a mergeable summary."""
        return cls(np.asarray(float(m.n)), np.asarray(m.sum), np.asarray(m.sum_squares))

    @classmethod
    def cumulative(
        cls, x: NDArray[np.float64], at: NDArray[np.intp] | None
    ) -> RunningMoments:
        """Moments after each row along the last axis (only at ``at``, if given)."""
        n = np.arange(1, x.shape[-1] + 1, dtype=float)
        s, q = np.cumsum(x, axis=-1), np.cumsum(x * x, axis=-1)
        return cls(_take(n, at), _take(s, at), _take(q, at))

    @property
    def mean(self) -> NDArray[np.float64]:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.sum / self.n

    @property
    def variance(self) -> NDArray[np.float64]:
        """Unbiased sample variance, as :attr:`MomentSummary.variance`."""
        n, q = self.n, self.sum_squares
        with np.errstate(divide="ignore", invalid="ignore"):
            centred = q - self.sum * self.sum / n
            var = centred / (n - 1)
        noise = centred <= _CANCELLATION * np.maximum(np.abs(q), 1.0)
        return np.where(n < 2, np.nan, np.where(noise, 0.0, var))


def split_cumulative(
    x: NDArray[np.float64], challenger: NDArray[np.bool_], at: NDArray[np.intp] | None
) -> tuple[RunningMoments, RunningMoments]:
    """Running moments of the champion's and the challenger's rows of ``x``.

    Rows are in one stream (label order); ``challenger`` marks the
    challenger's. The champion's sums are the totals minus the challenger's.
    """
    t = _take(np.arange(1, x.shape[-1] + 1, dtype=float), at)
    n2 = _take(np.cumsum(challenger, axis=-1).astype(float), at)
    s2 = _take(np.cumsum(np.where(challenger, x, 0.0), axis=-1), at)
    q2 = _take(np.cumsum(np.where(challenger, x * x, 0.0), axis=-1), at)
    s1 = _take(np.cumsum(x, axis=-1), at) - s2
    q1 = _take(np.cumsum(x * x, axis=-1), at) - q2
    return RunningMoments(t - n2, s1, q1), RunningMoments(n2, s2, q2)


@dataclass(frozen=True)
class RunningDifference:
    """Challenger − champion estimate and standard error after ``t`` labels."""

    t: NDArray[np.float64]
    estimate: NDArray[np.float64]
    se: NDArray[np.float64]
    champion_labels: NDArray[np.float64]
    challenger_labels: NDArray[np.float64]

    def ready(self, min_labels: int) -> NDArray[np.bool_]:
        """Where both variants have at least ``min_labels`` labels (the warm-up)."""
        fewest = np.minimum(self.champion_labels, self.challenger_labels)
        return np.broadcast_to(fewest >= min_labels, np.shape(self.estimate))

    def sequence(
        self, alpha: float, planned_labels: int
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Lower and upper ends of the anytime-valid confidence sequence."""
        rho = mixture_rho(planned_labels, alpha)
        with np.errstate(invalid="ignore"):
            return bounds(self.estimate, self.se, self.t, rho, alpha)


def paired_difference(d: RunningMoments) -> RunningDifference:
    """Paired design: moments of the per-row differences challenger − champion."""
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(d.variance / d.n)
    return RunningDifference(d.n, d.mean, se, d.n, d.n)


def independent_difference(
    champion: RunningMoments, challenger: RunningMoments
) -> RunningDifference:
    """Independent design: moments of each variant's own rows."""
    m1, m2 = champion, challenger
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(m1.variance / m1.n + m2.variance / m2.n)
    return RunningDifference(m1.n + m2.n, m2.mean - m1.mean, se, m1.n, m2.n)


def running_paired(
    differences: NDArray[np.float64], at: NDArray[np.intp] | None = None
) -> RunningDifference:
    """:func:`paired_difference` after every row of ``differences`` (or at ``at``)."""
    return paired_difference(RunningMoments.cumulative(differences, at))


def running_independent(
    losses: NDArray[np.float64],
    challenger: NDArray[np.bool_],
    at: NDArray[np.intp] | None = None,
) -> RunningDifference:
    """:func:`independent_difference` after every row of one stream of losses."""
    return independent_difference(*split_cumulative(losses, challenger, at))
