"""How many labels a comparison of the Brier difference needs.

Both functions take ``unit_variance`` ``σ²`` defined by ``se² = σ² / t`` with
``t`` the total number of labels: for paired rows (shadow) the variance of
the per-row difference; for independent samples with allocation shares
``q₁, q₂`` of the labels, ``s₁²/q₁ + s₂²/q₂``.

- :func:`fixed_horizon_labels`: the textbook normal-approximation sample size
  ``t = σ² (z₁₋α/₂ + z_power)² / mde²`` for one look (as statsmodels'
  ``NormalIndPower`` for equal groups).
- :func:`anytime_labels` the number of labels at which the anytime-valid
  confidence sequence of :mod:`ab_router.statistics.sequential`, evaluated at
  that single time, excludes 0 with probability ``power`` when the true
  difference is ``mde``: the smallest ``t`` with
  ``mde / se_t ≥ c_t + z_power``. Stopping at the first crossing can only
  come earlier, so this is a conservative estimate; it is larger than the
  fixed-horizon number, the price of being allowed to look continuously.
"""

from __future__ import annotations

import math

from ab_router.statistics.sequential import boundary_factor, mixture_rho

#: Beyond this many labels we report "not reachable" rather than a number.
MAX_LABELS = 10**9


def fixed_horizon_labels(
    unit_variance: float, mde: float, *, alpha: float = 0.05, power: float = 0.8
) -> int | None:
    """Total labels for a two-sided fixed-horizon z-test; None if undefined."""
    from scipy import stats  # imported late: see the package docstring

    if not unit_variance > 0 or not mde > 0:
        return None
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return math.ceil(unit_variance * z * z / (mde * mde))


def anytime_labels(
    unit_variance: float,
    mde: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    planned_labels: int,
) -> int | None:
    """Total labels for the confidence sequence to detect ``mde`` (see module)."""
    from scipy import optimize, stats  # imported late: see the package docstring

    if not unit_variance > 0 or not mde > 0:
        return None
    rho = mixture_rho(planned_labels, alpha)
    zp = float(stats.norm.ppf(power))
    sd = math.sqrt(unit_variance)

    def gap(log_t: float) -> float:
        t = math.exp(log_t)
        return mde * math.sqrt(t) / sd - (float(boundary_factor(t, rho, alpha)) + zp)

    lo, hi = 0.0, math.log(MAX_LABELS)
    if gap(hi) < 0:
        return None
    if gap(lo) >= 0:
        return 1
    root = optimize.brentq(gap, lo, hi, xtol=1e-10)
    return math.ceil(math.exp(root))
