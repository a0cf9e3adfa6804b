"""Fixed-horizon comparisons of two independent samples (split and canary).

- Means of per-row losses (Brier, log loss): Welch's t-test with the
  Welch–Satterthwaite degrees of freedom, from :class:`MomentSummary` only.
- Proportions (accuracy): difference with a Wald interval (unpooled variance)
  and the pooled two-proportion z-test p-value, as ``statsmodels``'
  ``confint_proportions_2indep(method="wald")`` and ``proportions_ztest``.

These are valid for one look at a pre-planned sample size. For a decision
taken while labels keep arriving use :mod:`ab_router.statistics.sequential`.
All differences are ``x - y``.
"""

from __future__ import annotations

import math

from ab_router.statistics.results import DifferenceResult
from ab_router.statistics.summaries import (
    NO_DATA,
    TOO_FEW_SAMPLES,
    ZERO_VARIANCE,
    MomentSummary,
    ProportionSummary,
)


def welch_test(
    x: MomentSummary, y: MomentSummary, *, metric: str = "mean", alpha: float = 0.05
) -> DifferenceResult:
    """Welch's unequal-variance t-test of ``mean(x) - mean(y)``."""
    from scipy import stats  # imported late: see the package docstring

    method = "welch_t"
    if x.n == 0 or y.n == 0:
        return DifferenceResult.failed(metric, method, NO_DATA, confidence=1 - alpha)
    estimate = x.mean - y.mean
    if x.n < 2 or y.n < 2:
        return DifferenceResult.failed(
            metric, method, TOO_FEW_SAMPLES, estimate=estimate, confidence=1 - alpha
        )
    vx, vy = x.variance / x.n, y.variance / y.n
    se2 = vx + vy
    if se2 <= 0:
        return DifferenceResult.failed(
            metric, method, ZERO_VARIANCE, estimate=estimate, confidence=1 - alpha
        )
    df = se2 * se2 / (vx * vx / (x.n - 1) + vy * vy / (y.n - 1))
    se = math.sqrt(se2)
    t = estimate / se
    p = 2.0 * float(stats.t.sf(abs(t), df))
    q = float(stats.t.ppf(1 - alpha / 2, df))
    return DifferenceResult(
        metric,
        method,
        estimate,
        estimate - q * se,
        estimate + q * se,
        p,
        statistic=t,
        df=df,
        confidence=1 - alpha,
    )


def two_proportion_test(
    x: ProportionSummary,
    y: ProportionSummary,
    *,
    metric: str = "proportion",
    alpha: float = 0.05,
) -> DifferenceResult:
    """Difference of two independent proportions ``p_x - p_y``.

    Interval: Wald with unpooled variance. p-value: pooled z-test, which is
    the score test of equal proportions.
    """
    from scipy import stats  # imported late: see the package docstring

    method = "two_proportion_z"
    if x.n == 0 or y.n == 0:
        return DifferenceResult.failed(metric, method, NO_DATA, confidence=1 - alpha)
    px, py = x.proportion, y.proportion
    estimate = px - py
    pooled = (x.successes + y.successes) / (x.n + y.n)
    pooled_var = pooled * (1 - pooled) * (1 / x.n + 1 / y.n)
    if pooled_var <= 0:
        return DifferenceResult.failed(
            metric, method, ZERO_VARIANCE, estimate=estimate, confidence=1 - alpha
        )
    z = estimate / math.sqrt(pooled_var)
    p = 2.0 * float(stats.norm.sf(abs(z)))
    se = math.sqrt(px * (1 - px) / x.n + py * (1 - py) / y.n)
    q = float(stats.norm.ppf(1 - alpha / 2))
    return DifferenceResult(
        metric,
        method,
        estimate,
        estimate - q * se,
        estimate + q * se,
        p,
        statistic=z,
        confidence=1 - alpha,
    )
