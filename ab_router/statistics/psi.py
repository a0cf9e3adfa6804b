"""Population Stability Index of live requests against a model's training reference.

``PSI = Σ_i (q_i - p_i) · ln(q_i / p_i)`` over the bins of one feature, with
``p`` the training (reference) shares and ``q`` the live shares. Common reading
(Siddiqi 2006, "Credit Risk Scorecards"): below 0.1 stable, 0.1 to 0.2 a
moderate shift, above 0.2 a shift worth a look, above 0.3 a large one.

Empty bins: a live bin with no requests (or a training bin with no rows) would
make ``ln(q/p)`` infinite. Both count vectors are smoothed additively (Laplace
/ Jeffreys, ``α = 0.5`` pseudo-count per bin) before taking shares::

    p_i = (P_i + α) / (N + k α)      q_i = (Q_i + α) / (n + k α)

with ``P_i = share_i · N`` the training count of bin ``i`` out of ``N`` rows,
``Q_i`` the live count out of ``n`` and ``k`` the number of bins. Every share
is then strictly positive, so PSI is finite and ≥ 0. The pseudo-counts weigh
most in small windows, where they pull both sides towards uniform. A window
with no live rows has no PSI at all: the result is NaN with the ``no_data``
error code, never 0 or a made-up number.

Live counts live in ``DriftCounts``, a frozen dataclass with ``__add__`` holding
only per-bin integers, so workers, replicas and time windows combine exactly
and reading drift costs the same whatever the traffic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np

from ab_router.statistics.summaries import NO_DATA
from churn_features.reference import (
    SCORE_NAME,
    CategoricalReference,
    NumericReference,
    ReferenceDistributions,
    bin_numeric,
)
from churn_features.schema import FEATURE_ORDER

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

#: Pseudo-count added to every bin of both distributions (see module docstring).
SMOOTHING_ALPHA: Final = 0.5
#: A PSI above this is a shift worth a look, above the critical one a large
#: one (the reading above). The same numbers as the monitoring mixin's
#: ``psiWarningThreshold`` and ``psiCriticalThreshold``, so the experiment page
#: and the alerts agree; a test keeps them equal.
PSI_WARNING_THRESHOLD: Final = 0.2
PSI_CRITICAL_THRESHOLD: Final = 0.3
#: Requests a window needs before its PSI is alerted on (the mixin's
#: ``driftMinRequests``): smaller windows read high from sampling noise alone.
DRIFT_MIN_REQUESTS: Final = 500


def population_stability_index(
    reference_counts: ArrayLike,
    live_counts: ArrayLike,
    *,
    alpha: float = SMOOTHING_ALPHA,
) -> float:
    """PSI of ``live_counts`` against ``reference_counts`` with additive smoothing.

    Counts may be fractional on the reference side (shares × rows). Returns NaN
    when either side has no rows; raises ``ValueError`` for mismatched bins or
    a non-positive ``alpha`` (programming errors, not data).
    """
    expected = np.asarray(reference_counts, dtype=np.float64).ravel()
    actual = np.asarray(live_counts, dtype=np.float64).ravel()
    if expected.shape != actual.shape or expected.size == 0:
        raise ValueError(
            f"PSI needs the same non-zero number of bins, got {expected.size} "
            f"reference and {actual.size} live"
        )
    if not alpha > 0:
        raise ValueError(f"smoothing alpha must be > 0, got {alpha}")
    if (expected < 0).any() or (actual < 0).any():
        raise ValueError("bin counts must be >= 0")
    if expected.sum() <= 0 or actual.sum() <= 0:
        return math.nan
    bins = expected.size
    p = (expected + alpha) / (expected.sum() + bins * alpha)
    q = (actual + alpha) / (actual.sum() + bins * alpha)
    return float(np.sum((q - p) * np.log(q / p)))


@dataclass(frozen=True)
class DriftCounts:
    """Live bin counts of every feature (``FEATURE_ORDER``) and of the score.

    ``features[j][i]`` counts requests whose feature ``j`` fell in bin ``i`` of
    the model's reference; ``score[i]`` counts scores in score bin ``i``.
    ``rows`` counts binned requests, ``scored`` binned scores (the same number
    when both come from one batch, kept apart so a caller may bin either).
    Counts from different references (another model version) do not add.
    """

    features: tuple[tuple[int, ...], ...]
    score: tuple[int, ...]
    rows: int = 0
    scored: int = 0

    def __post_init__(self) -> None:
        if len(self.features) != len(FEATURE_ORDER):
            raise ValueError(
                f"need counts for {len(FEATURE_ORDER)} features, "
                f"got {len(self.features)}"
            )

    @classmethod
    def empty(cls, reference: ReferenceDistributions) -> DriftCounts:
        """All-zero counts with the bins of ``reference``."""
        return cls(
            features=tuple((0,) * f.bins for f in reference.features),
            score=(0,) * reference.score.bins,
        )

    def __add__(self, other: DriftCounts) -> DriftCounts:
        if self.layout != other.layout:
            raise ValueError("drift counts binned against different references")
        return DriftCounts(
            features=tuple(
                tuple(a + b for a, b in zip(mine, theirs, strict=True))
                for mine, theirs in zip(self.features, other.features, strict=True)
            ),
            score=tuple(a + b for a, b in zip(self.score, other.score, strict=True)),
            rows=self.rows + other.rows,
            scored=self.scored + other.scored,
        )

    @property
    def layout(self) -> tuple[tuple[int, ...], int]:
        """Number of bins per feature and of score bins: what must match to add."""
        return tuple(len(f) for f in self.features), len(self.score)


def bin_codes(
    reference: ReferenceDistributions,
    codes: ArrayLike,
    scores: ArrayLike | None = None,
) -> DriftCounts:
    """Bin a batch of ``(n, 19)`` schema-code rows (and their scores) by ``reference``.

    Rows are what the model services receive (``churn_features.encoding``):
    categories as schema indices, numbers as they are. Vectorised: one
    ``searchsorted`` or ``bincount`` per feature, whatever ``n``. Raises
    ``ValueError`` naming the feature for a non-finite value or a category code
    outside the schema, which validated requests never contain.
    """
    matrix = np.asarray(codes, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != len(FEATURE_ORDER):
        raise ValueError(f"codes must be (n, {len(FEATURE_ORDER)}), got {matrix.shape}")
    counts = [
        _bin_feature(reference_feature, matrix[:, position])
        for position, reference_feature in enumerate(reference.features)
    ]
    score_counts = (0,) * reference.score.bins
    scored = 0
    if scores is not None:
        values = np.asarray(scores, dtype=np.float64).ravel()
        if values.size != matrix.shape[0]:
            raise ValueError(f"{matrix.shape[0]} rows but {values.size} scores")
        score_counts = _bin_feature(reference.score, values)
        scored = int(values.size)
    return DriftCounts(tuple(counts), score_counts, int(matrix.shape[0]), scored)


def _bin_feature(
    reference: NumericReference | CategoricalReference, column: NDArray[np.float64]
) -> tuple[int, ...]:
    if not np.isfinite(column).all():
        raise ValueError(f"{reference.name}: non-finite value")
    if isinstance(reference, NumericReference):
        index = bin_numeric(np.asarray(reference.edges, dtype=np.float64), column)
    else:
        index = column.astype(np.intp)
        if index.size and (
            index.min() < 0
            or index.max() >= reference.bins
            or not np.array_equal(index, column)
        ):
            raise ValueError(
                f"{reference.name}: category code outside 0..{reference.bins - 1}"
            )
    return tuple(int(c) for c in np.bincount(index, minlength=reference.bins))


@dataclass(frozen=True)
class PsiResult:
    """PSI of one feature (or the score) and the live rows it rests on."""

    name: str
    psi: float
    rows: int
    error: str | None = None


@dataclass(frozen=True)
class DriftReport:
    """PSI of every feature, in ``FEATURE_ORDER``, and of the score."""

    features: tuple[PsiResult, ...]
    score: PsiResult

    def feature(self, name: str) -> PsiResult:
        for result in self.features:
            if result.name == name:
                return result
        raise KeyError(name)


def drift_report(
    reference: ReferenceDistributions,
    counts: DriftCounts,
    *,
    alpha: float = SMOOTHING_ALPHA,
) -> DriftReport:
    """PSI per feature and for the score; ``no_data`` where nothing was binned."""
    if counts.layout != DriftCounts.empty(reference).layout:
        raise ValueError("drift counts were binned against another reference")
    features = tuple(
        _psi_result(f.name, f.shares, reference.rows, live, counts.rows, alpha)
        for f, live in zip(reference.features, counts.features, strict=True)
    )
    score = _psi_result(
        SCORE_NAME,
        reference.score.shares,
        reference.score_rows,
        counts.score,
        counts.scored,
        alpha,
    )
    return DriftReport(features, score)


def _psi_result(
    name: str,
    shares: tuple[float, ...],
    reference_rows: int,
    live: tuple[int, ...],
    rows: int,
    alpha: float,
) -> PsiResult:
    if rows == 0:
        return PsiResult(name, math.nan, 0, NO_DATA)
    expected = np.asarray(shares, dtype=np.float64) * reference_rows
    return PsiResult(
        name, population_stability_index(expected, live, alpha=alpha), rows
    )
