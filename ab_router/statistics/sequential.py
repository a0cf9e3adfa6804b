r"""Anytime-valid inference for the primary metric, the Brier-score difference.

Why: a fixed-horizon t-test is valid for one look at a planned sample size.
The service shows the comparison after every new label, and people stop when
it looks significant; peeking like that pushes the false-positive rate of a
nominal 5 % test to 25–40 % (``python -m ab_router simulate`` shows it). A
*confidence sequence* is a sequence of intervals that covers the true value
at all times simultaneously, so it may be checked after every label and the
experiment stopped at any moment without inflating the error rate.

Method: the asymptotic confidence sequence of Waudby-Smith, Arnold, Wu,
Howard & Ramdas (2024), "Time-uniform central limit theory and asymptotic
confidence sequences", *Annals of Statistics* 52(6) (arXiv:2103.06476), which
uses the two-sided normal-mixture boundary of Robbins (1970) as presented in
Howard, Ramdas, McAuliffe & Sekhon (2021), "Time-uniform, nonparametric,
nonasymptotic confidence sequences", *Annals of Statistics* 49(2). For the
mean ``μ`` of i.i.d. rows with running mean ``μ̂_t`` and standard deviation
``σ̂_t`` after ``t`` rows, the interval

    μ̂_t ± σ̂_t · sqrt( 2(tρ² + 1) / (t²ρ²) · log( sqrt(tρ² + 1) / α ) )

covers ``μ`` for all ``t`` at once with probability ≥ 1 − α (asymptotically).
With the standard error ``se_t = σ̂_t / √t`` the half-width is ``c_t · se_t``
with ``c_t = sqrt( (tρ² + 1)/(tρ²) · 2 log( sqrt(tρ² + 1)/α ) )``; compare
``c = 1.96`` for a single fixed-horizon look at α = 0.05.

Tuning: ``ρ² = (−2 log α + log(−2 log α + 1)) / t*`` makes the boundary
tightest around ``t*`` = the planned number of labels
(``DecisionConfig.planned_labels``); any fixed ρ is valid, it only moves
where the sequence is narrowest. ρ must not be chosen from the data.

Anytime-valid p-value: the smallest α at which 0 leaves the sequence,
``p_t = min(1, sqrt(tρ² + 1) · exp(−z_t² tρ² / (2(tρ² + 1))))`` with
``z_t = μ̂_t / se_t`` (the reciprocal of the normal-mixture likelihood ratio).

Applied to the Brier difference Δ = Brier(challenger) − Brier(champion)
(negative: the challenger is better):

- shadow mode (paired): rows ``d_i = (p2_i − y_i)² − (p1_i − y_i)²`` on the
  same requests; ``t`` = number of labelled pairs.
- split/canary (independent): ``Δ̂ = mean₂ − mean₁``,
  ``se² = s₂²/n₂ + s₁²/n₁``, ``t = n₁ + n₂``. Under Bernoulli assignment with
  fixed weights the difference of means is asymptotically the running mean
  of the AIPW pseudo-outcomes Waudby-Smith et al. (2024) use for randomised
  experiments, whose variance is ``t · se²``; so the same boundary applies
  with ``t`` the total number of labels.

Assumptions: labels arrive in an order unrelated to their losses, weights are
fixed within the analysed epoch, and there are enough labels for the central
limit theorem (no verdict before ``DecisionConfig.min_labels`` per variant).
The A/A simulation in ``tests/unit/test_simulate.py`` checks the resulting
false-positive rate under continuous monitoring. The guarantee is asymptotic,
so we measured it (400 seeded runs each). Generic i.i.d. rows, looked at
after every row from row 100 to 4 000: the sequence missed the mean in 2 %
of runs for normal rows, 1.25 % for exponential, 5 % for Bernoulli(0.1) and
8 % for very heavy-tailed squared exponentials (raise ``min_labels`` if the
losses look like that). Brier differences of two synthetic churn models,
looked at every 10 labels: 0.25–1 % (split, 4–5 k labels), 3 % (split,
20 k labels), 1–1.75 % (shadow); the same data peeked at with a fixed 95 %
test gave 30–48 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ab_router.statistics.summaries import NO_DATA, TOO_FEW_SAMPLES, ZERO_VARIANCE

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

METHOD = "asymptotic_confidence_sequence_normal_mixture"


def mixture_rho(planned_t: float, alpha: float) -> float:
    """ρ that makes the normal-mixture boundary tightest at ``planned_t`` rows."""
    if planned_t <= 0 or not 0 < alpha < 1:
        raise ValueError("planned_t must be > 0 and alpha in (0, 1)")
    la = -2.0 * math.log(alpha)
    return math.sqrt((la + math.log(la + 1.0)) / planned_t)


def boundary_factor(t: ArrayLike, rho: float, alpha: float) -> NDArray[np.float64]:
    """``c_t``: half-width of the confidence sequence in standard errors."""
    tr = np.asarray(t, dtype=float) * rho * rho
    with np.errstate(divide="ignore", invalid="ignore"):
        c2 = (tr + 1.0) / tr * 2.0 * np.log(np.sqrt(tr + 1.0) / alpha)
    return np.sqrt(np.where(tr > 0, c2, np.inf))


def anytime_p_value(z: ArrayLike, t: ArrayLike, rho: float) -> NDArray[np.float64]:
    """Anytime-valid p-value for ``z = estimate / se`` after ``t`` rows."""
    zz = np.asarray(z, dtype=float)
    tr = np.asarray(t, dtype=float) * rho * rho
    log_p = 0.5 * np.log1p(tr) - zz * zz * tr / (2.0 * (tr + 1.0))
    return np.minimum(1.0, np.exp(np.minimum(log_p, 0.0)))


def bounds(
    estimate: ArrayLike, se: ArrayLike, t: ArrayLike, rho: float, alpha: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Vectorised lower and upper ends of the confidence sequence."""
    est = np.asarray(estimate, dtype=float)
    half = boundary_factor(t, rho, alpha) * np.asarray(se, dtype=float)
    return est - half, est + half


@dataclass(frozen=True)
class SequentialResult:
    """The confidence sequence for a difference at the current number of labels."""

    metric: str
    estimate: float
    lower: float
    upper: float
    p_value: float
    se: float
    t: int
    rho: float
    alpha: float
    planned_labels: int
    method: str = METHOD
    error: str | None = None


def _not_computable(estimate: float, se: float, t: int) -> str | None:
    """The error code when no interval can be given, else None."""
    if t <= 0:
        return NO_DATA
    if math.isnan(estimate) or math.isnan(se):
        return TOO_FEW_SAMPLES
    if se <= 0:
        return ZERO_VARIANCE
    return None


def confidence_sequence(
    estimate: float,
    se: float,
    t: int,
    *,
    alpha: float,
    planned_labels: int,
    metric: str = "brier_difference",
) -> SequentialResult:
    """Anytime-valid interval and p-value from an estimate and its standard error.

    ``se`` is the usual standard error of ``estimate`` after ``t`` rows
    (``σ̂/√t`` for a mean, ``sqrt(s₁²/n₁ + s₂²/n₂)`` for a difference of means).
    """
    rho = mixture_rho(planned_labels, alpha)
    error = _not_computable(estimate, se, t)
    lo = hi = p = math.nan
    if error is None:
        lower, upper = bounds(estimate, se, t, rho, alpha)
        lo, hi = float(lower), float(upper)
        p = float(anytime_p_value(estimate / se, t, rho))
    return SequentialResult(
        metric, estimate, lo, hi, p, se, t, rho, alpha, planned_labels, error=error
    )
