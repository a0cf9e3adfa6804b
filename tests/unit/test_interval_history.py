"""The page's curve: past snapshots' intervals at bounded resolution."""

from __future__ import annotations

import math

from ab_router.statistics.sequential import SequentialResult
from serving.interval_history import IntervalHistory

EPOCH = ("churn", 1, "independent")


def result(t: int, estimate: float = 0.0) -> SequentialResult:
    return SequentialResult(
        metric="brier", estimate=estimate, lower=estimate - 1.0 / (1 + t),
        upper=estimate + 1.0 / (1 + t), p_value=0.5, se=0.1, t=t, rho=1.0,
        alpha=0.05, planned_labels=1000,
    )  # fmt: skip


def test_points_stay_bounded_spread_and_end_at_the_latest_interval() -> None:
    history = IntervalHistory(max_points=50)
    for t in range(0, 100_000, 7):
        history.add(EPOCH, result(t, estimate=t / 1e6))
    history.add(EPOCH, result(100_003, estimate=0.25))
    curve = history.curve()
    assert 25 <= curve.t.size <= 50  # thinned, not collapsed
    assert curve.t[0] < 100_003 / 25  # the early part is still drawn
    assert (curve.t[1:] > curve.t[:-1]).all()
    assert curve.t[-1] == 100_003
    assert curve.estimate[-1] == 0.25
    assert curve.lower[-1] == 0.25 - 1.0 / 100_004
    # One point per step of labels: the gaps are about even.
    gaps = curve.t[1:-1] - curve.t[:-2]
    assert gaps.max() <= 2 * history.step


def test_a_new_label_count_in_the_same_step_replaces_the_last_point() -> None:
    history = IntervalHistory(max_points=4)
    for t in (10, 20, 30, 40):
        history.add(EPOCH, result(t))
    history.add(EPOCH, result(40, estimate=0.5))  # a changed label: same t
    assert history.curve().t.tolist() == [10, 20, 30, 40]
    assert history.curve().estimate[-1] == 0.5


def test_a_new_epoch_starts_a_new_curve_and_nan_is_kept_as_nan() -> None:
    history = IntervalHistory(max_points=10)
    history.add(EPOCH, result(100))
    nan = SequentialResult(
        metric="brier", estimate=math.nan, lower=math.nan, upper=math.nan,
        p_value=math.nan, se=math.nan, t=0, rho=1.0, alpha=0.05,
        planned_labels=1000,
    )  # fmt: skip
    history.add(("churn", 2, "independent"), nan)
    curve = history.curve()
    assert curve.t.tolist() == [0]
    assert math.isnan(curve.lower[0])
