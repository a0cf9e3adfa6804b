"""Sample-ratio mismatch (SRM): do exposure counts match the configured split?

Pearson's χ² goodness-of-fit test of the observed assignment counts against
``total × weight / Σweights`` over the variants with weight > 0 (degrees of
freedom = that number − 1), as ``scipy.stats.chisquare``. Traffic to a variant
whose weight is 0 (or that is not configured at all) cannot happen under a
correct assignment, so it is an alarm by itself, with p-value 0.

The default threshold p < 0.001 follows common practice (Fabijan et al. 2019,
"Diagnosing Sample Ratio Mismatch in Online Controlled Experiments", KDD):
with the check repeated on every dashboard refresh a 0.05 threshold would
cry wolf. An SRM means assignment or logging is broken, which biases every
comparison, so :mod:`ab_router.statistics.decision` refuses to name a winner.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ab_router.statistics.summaries import NO_DATA, NOT_APPLICABLE

DEFAULT_SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class SrmResult:
    """Outcome of the SRM check; ``alarm`` is what callers act on."""

    observed: dict[str, int]
    expected: dict[str, float]
    statistic: float
    df: int
    p_value: float
    alarm: bool
    threshold: float
    unexpected_variants: tuple[str, ...] = field(default_factory=tuple)
    error: str | None = None


def srm_test(
    counts: Mapping[str, int],
    weights: Mapping[str, float],
    *,
    threshold: float = DEFAULT_SRM_THRESHOLD,
) -> SrmResult:
    """χ² test of ``counts`` (exposures per assigned variant) against ``weights``."""
    from scipy import stats  # imported late: see the package docstring

    active = [v for v, w in weights.items() if w > 0]
    observed = {v: int(counts.get(v, 0)) for v in active}
    unexpected = tuple(
        sorted(v for v, c in counts.items() if c > 0 and weights.get(v, 0.0) <= 0)
    )
    for v in unexpected:
        observed[v] = int(counts[v])
    total_active = sum(observed[v] for v in active)
    weight_sum = sum(weights[v] for v in active)
    expected = {v: total_active * weights[v] / weight_sum for v in active}
    for v in unexpected:
        expected[v] = 0.0

    df = max(len(active) - 1, 0)
    if unexpected:
        return SrmResult(
            observed, expected, math.inf, df, 0.0, True, threshold, unexpected
        )
    # One variant takes all traffic: nothing is randomised, no ratio to check.
    error = (
        NOT_APPLICABLE if len(active) < 2 else NO_DATA if total_active == 0 else None
    )
    if error is not None:
        nan = math.nan
        return SrmResult(
            observed, expected, nan, df, nan, False, threshold, error=error
        )
    obs = np.array([observed[v] for v in active], dtype=float)
    exp = np.array([expected[v] for v in active], dtype=float)
    statistic = float(np.sum((obs - exp) ** 2 / exp))
    p = float(stats.chi2.sf(statistic, df))
    return SrmResult(observed, expected, statistic, df, p, p < threshold, threshold)
