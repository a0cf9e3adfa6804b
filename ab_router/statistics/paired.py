"""Fixed-horizon paired comparisons (shadow mode: both models score each row).

- Per-row loss differences ``d = loss_x - loss_y``: paired t-test, i.e. a
  one-sample t-test of ``d`` from its :class:`MomentSummary`.
- Accuracy: McNemar's test on the discordant pairs ``b`` (only x correct) and
  ``c`` (only y correct); the exact binomial version below 25 discordant
  pairs, else the continuity-corrected χ² (Edwards 1948), matching
  ``statsmodels.stats.contingency_tables.mcnemar``. The interval for the
  accuracy difference ``(b - c) / n`` is the Wald interval for paired
  proportions, variance ``((b + c) - (b - c)² / n) / n²``.
"""

from __future__ import annotations

import math

from ab_router.statistics.results import DifferenceResult
from ab_router.statistics.summaries import (
    NO_DATA,
    TOO_FEW_SAMPLES,
    ZERO_VARIANCE,
    MomentSummary,
)

#: Below this many discordant pairs McNemar uses the exact binomial test.
MCNEMAR_EXACT_BELOW = 25


def paired_t_test(
    differences: MomentSummary, *, metric: str = "mean", alpha: float = 0.05
) -> DifferenceResult:
    """Paired t-test of the mean of per-row differences ``x - y``."""
    from scipy import stats  # imported late: see the package docstring

    method = "paired_t"
    d = differences
    if d.n == 0:
        return DifferenceResult.failed(metric, method, NO_DATA, confidence=1 - alpha)
    if d.n < 2:
        return DifferenceResult.failed(
            metric, method, TOO_FEW_SAMPLES, estimate=d.mean, confidence=1 - alpha
        )
    if d.variance <= 0:
        return DifferenceResult.failed(
            metric, method, ZERO_VARIANCE, estimate=d.mean, confidence=1 - alpha
        )
    se = math.sqrt(d.variance / d.n)
    df = d.n - 1
    t = d.mean / se
    p = 2.0 * float(stats.t.sf(abs(t), df))
    q = float(stats.t.ppf(1 - alpha / 2, df))
    return DifferenceResult(
        metric,
        method,
        d.mean,
        d.mean - q * se,
        d.mean + q * se,
        p,
        statistic=t,
        df=float(df),
        confidence=1 - alpha,
    )


def mcnemar_test(
    only_x_correct: int,
    only_y_correct: int,
    n: int,
    *,
    metric: str = "accuracy",
    alpha: float = 0.05,
) -> DifferenceResult:
    """McNemar's test for the accuracy difference ``acc_x - acc_y`` on n pairs."""
    from scipy import stats  # imported late: see the package docstring

    b, c = only_x_correct, only_y_correct
    if n == 0:
        return DifferenceResult.failed(metric, "mcnemar", NO_DATA, confidence=1 - alpha)
    estimate = (b - c) / n
    if b + c == 0:
        return DifferenceResult.failed(
            metric, "mcnemar", ZERO_VARIANCE, estimate=estimate, confidence=1 - alpha
        )
    if b + c < MCNEMAR_EXACT_BELOW:
        method = "mcnemar_exact"
        statistic = float(min(b, c))
        p = min(1.0, 2.0 * float(stats.binom.cdf(min(b, c), b + c, 0.5)))
    else:
        method = "mcnemar_chi2_corrected"
        statistic = (abs(b - c) - 1.0) ** 2 / (b + c)
        p = float(stats.chi2.sf(statistic, 1))
    var = max((b + c) - (b - c) ** 2 / n, 0.0) / (n * n)
    q = float(stats.norm.ppf(1 - alpha / 2))
    half = q * math.sqrt(var)
    return DifferenceResult(
        metric,
        method,
        estimate,
        estimate - half,
        estimate + half,
        p,
        statistic=statistic,
        df=1.0,
        confidence=1 - alpha,
    )
