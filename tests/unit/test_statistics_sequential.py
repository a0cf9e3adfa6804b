"""Anytime-valid confidence sequence, power calculations and the decision rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, stats
from statsmodels.stats.power import NormalIndPower

from ab_router.statistics import (
    NO_DATA,
    ZERO_VARIANCE,
    DecisionConfig,
    SequentialResult,
    SrmResult,
    Verdict,
    anytime_labels,
    anytime_p_value,
    boundary_factor,
    confidence_sequence,
    decide,
    fixed_horizon_labels,
    mixture_rho,
)
from ab_router.statistics.sequential import bounds


def test_rho_is_near_optimal_at_planned_size() -> None:
    alpha, planned = 0.05, 10_000
    rho = mixture_rho(planned, alpha)
    best = optimize.minimize_scalar(
        lambda r: float(boundary_factor(planned, r, alpha)),
        bounds=(rho / 10, rho * 10),
        method="bounded",
    )
    assert float(boundary_factor(planned, rho, alpha)) <= best.fun * 1.01


def test_sequence_is_wider_than_a_single_fixed_look() -> None:
    t = np.array([10, 100, 1_000, 10_000, 1_000_000])
    c = boundary_factor(t, mixture_rho(10_000, 0.05), 0.05)
    assert np.all(c > stats.norm.ppf(0.975))


def test_p_value_is_dual_to_the_interval() -> None:
    rng = np.random.default_rng(5)
    rho = mixture_rho(5_000, 0.05)
    est = rng.normal(0, 0.02, 2_000)
    se = rng.uniform(0.002, 0.01, 2_000)
    t = rng.integers(50, 20_000, 2_000)
    lo, hi = bounds(est, se, t, rho, 0.05)
    excluded = (lo > 0) | (hi < 0)
    p = anytime_p_value(est / se, t, rho)
    near = np.abs(p - 0.05) < 1e-9
    assert np.array_equal(excluded[~near], (p <= 0.05)[~near])
    assert excluded.any() and (~excluded).any()


def test_confidence_sequence_degenerate() -> None:
    assert confidence_sequence(0.0, 0.1, 0, alpha=0.05, planned_labels=100).error == (
        NO_DATA
    )
    r = confidence_sequence(0.01, 0.0, 50, alpha=0.05, planned_labels=100)
    assert r.error == ZERO_VARIANCE and r.estimate == 0.01


def test_time_uniform_coverage_under_continuous_monitoring() -> None:
    """Skewed i.i.d. rows: the sequence misses the mean at *any* look ≤ α.

    The same data peeked at with a fixed 95 % interval misses far more often,
    which shows this test can tell the two apart. (Exponential rows, skewness
    2; much heavier tails need a longer warm-up, see the module docstring.)
    """
    rng = np.random.default_rng(2024)
    runs, horizon, warmup, alpha = 400, 4_000, 100, 0.05
    x = 1.0 + rng.exponential(1.0, (runs, horizon))  # mean 2
    n = np.arange(1, horizon + 1, dtype=float)
    s, q = np.cumsum(x, axis=1), np.cumsum(x * x, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = s / n
        se = np.sqrt((q - s * s / n) / (n - 1) / n)
    rho = mixture_rho(2_000, alpha)
    lo, hi = bounds(mean, se, n, rho, alpha)
    look = n >= warmup
    miss = (((lo > 2.0) | (hi < 2.0)) & look).any(axis=1).mean()
    naive = ((np.abs(mean - 2.0) > 1.96 * se) & look).any(axis=1).mean()
    assert miss <= alpha + 2.33 * math.sqrt(alpha * (1 - alpha) / runs)
    assert naive > 2 * alpha


@pytest.mark.parametrize("sd", [0.1, 0.3])
def test_fixed_horizon_labels_match_statsmodels(sd: float) -> None:
    mde = 0.01
    per_group = NormalIndPower().solve_power(
        effect_size=mde / sd, alpha=0.05, power=0.8, ratio=1.0
    )
    # Independent halves: unit variance s²/0.5 + s²/0.5 = 4 s², total = 2 × group.
    total = fixed_horizon_labels(4 * sd * sd, mde)
    assert total == pytest.approx(2 * per_group, rel=1e-3)
    one_sample = NormalIndPower().solve_power(
        effect_size=mde / sd, alpha=0.05, power=0.8, ratio=0.0
    )
    assert fixed_horizon_labels(sd * sd, mde) == pytest.approx(one_sample, rel=1e-3)
    assert fixed_horizon_labels(0.0, mde) is None


def test_anytime_labels_is_the_smallest_sufficient_size() -> None:
    var, mde, alpha, power, planned = 0.1, 0.01, 0.05, 0.8, 10_000
    t = anytime_labels(var, mde, alpha=alpha, power=power, planned_labels=planned)
    assert t is not None
    rho = mixture_rho(planned, alpha)
    z = stats.norm.ppf(power)

    def enough(n: int) -> bool:
        return mde / math.sqrt(var / n) >= float(boundary_factor(n, rho, alpha)) + z

    assert enough(t) and not enough(t - 1)
    fixed = fixed_horizon_labels(var, mde, alpha=alpha, power=power)
    assert fixed is not None and t > fixed
    assert anytime_labels(var, 1e-9, alpha=alpha, power=power, planned_labels=10) is (
        None
    )


def _seq(est: float, lo: float, hi: float, t: int = 4_000) -> SequentialResult:
    return SequentialResult(
        "brier_difference", est, lo, hi, 0.5, 0.003, t, 0.03, 0.05, 10_000
    )


_SRM_OK = SrmResult({"v1": 2000, "v2": 2000}, {}, 0.0, 1, 1.0, False, 0.001)
_SRM_BAD = SrmResult({"v1": 2600, "v2": 1400}, {}, 360.0, 1, 1e-80, True, 0.001)
_LAB = {"v1": 2000, "v2": 2000}


def _decide(seq: SequentialResult, srm: SrmResult = _SRM_OK, **labelled: int):
    cfg = DecisionConfig(mde=0.01)
    return decide(seq, srm, labelled or _LAB, 0.1, cfg, champion="v1", challenger="v2")


def test_decision_verdicts() -> None:
    win = _decide(_seq(-0.02, -0.03, -0.01))
    assert win.verdict == Verdict.CHALLENGER_BETTER and win.winner == "v2"
    lose = _decide(_seq(0.02, 0.01, 0.03))
    assert lose.verdict == Verdict.CHAMPION_BETTER and lose.winner == "v1"
    same = _decide(_seq(0.001, -0.008, 0.009))
    assert same.verdict == Verdict.NO_MEANINGFUL_DIFFERENCE and same.winner is None
    wait = _decide(_seq(0.002, -0.015, 0.019))
    assert wait.verdict == Verdict.KEEP_COLLECTING
    assert wait.more_labels_needed is not None and wait.more_labels_needed > 0
    assert f"about {wait.more_labels_needed} more labels" in wait.message


def test_srm_alarm_blocks_a_winner() -> None:
    d = _decide(_seq(-0.02, -0.03, -0.01), _SRM_BAD)
    assert d.verdict == Verdict.SRM_ALARM and d.winner is None
    assert "sample ratio mismatch" in d.message


def test_no_verdict_before_min_labels() -> None:
    d = _decide(_seq(-0.05, -0.09, -0.01, t=150), v1=100, v2=50)
    assert d.verdict == Verdict.KEEP_COLLECTING and "v2: 50" in d.message


def test_more_labels_needed_follows_the_power_calculation() -> None:
    d = _decide(_seq(0.0, -0.03, 0.03, t=500))
    assert d.labels_needed_total == anytime_labels(
        0.1, 0.01, alpha=0.05, power=0.8, planned_labels=10_000
    )
    assert d.more_labels_needed == d.labels_needed_total - 500


@pytest.mark.parametrize(
    "kwargs",
    [
        {"alpha": 0.0},
        {"mde": -0.1},
        {"power": 1.0},
        {"min_labels": 1},
        {"srm_threshold": 2.0},
        {"planned_labels": 0},
    ],
)
def test_config_validation(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        DecisionConfig(**kwargs)  # type: ignore[arg-type]
