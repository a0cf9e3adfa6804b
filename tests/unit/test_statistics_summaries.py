"""Mergeable summaries against numpy and scikit-learn oracles."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, precision_score, recall_score

from ab_router.statistics import ConfusionSummary, MomentSummary, ProportionSummary

finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(finite, min_size=2, max_size=60), st.integers(min_value=0, max_value=60)
)
def test_moment_summary_merges_to_whole(values: list[float], cut: int) -> None:
    cut = min(cut, len(values))
    whole = MomentSummary.from_values(values)
    merged = MomentSummary.from_values(values[:cut]) + MomentSummary.from_values(
        values[cut:]
    )
    assert merged.n == whole.n == len(values)
    assert merged.mean == pytest.approx(np.mean(values), rel=1e-9, abs=1e-9)
    assert merged.variance == pytest.approx(np.var(values, ddof=1), rel=1e-6, abs=1e-6)


def test_moment_summary_degenerate() -> None:
    empty = MomentSummary()
    assert empty.n == 0 and math.isnan(empty.mean) and math.isnan(empty.variance)
    one = MomentSummary.from_values([3.0])
    assert one.mean == 3.0 and math.isnan(one.variance)
    constant = MomentSummary.from_values([0.1] * 1000)
    assert constant.variance == 0.0  # no negative noise from cancellation
    assert empty + one == one


def test_proportion_summary() -> None:
    x = np.array([1, 0, 1, 1, 0])
    p = ProportionSummary.from_values(x) + ProportionSummary.from_values([1, 1])
    assert (p.n, p.successes) == (7, 5)
    assert p.proportion == pytest.approx(5 / 7)
    assert math.isnan(ProportionSummary().proportion)


def test_confusion_summary_matches_sklearn() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    pred = np.where(rng.random(500) < 0.7, y, 1 - y)
    half = 217
    c = ConfusionSummary.from_arrays(y[:half], pred[:half]) + (
        ConfusionSummary.from_arrays(y[half:], pred[half:])
    )
    assert c.n == 500
    assert c.accuracy == pytest.approx(accuracy_score(y, pred))
    assert c.precision == pytest.approx(precision_score(y, pred))
    assert c.recall == pytest.approx(recall_score(y, pred))
    assert c.observed_rate == pytest.approx(y.mean())
    assert c.predicted_rate == pytest.approx(pred.mean())
    assert c.correct.successes == int(np.sum(y == pred))


def test_confusion_summary_no_positive_predictions() -> None:
    c = ConfusionSummary.from_arrays([0, 1, 0], [0, 0, 0])
    assert math.isnan(c.precision)
    assert c.recall == 0.0


def test_moments_and_confusion_counts_subtract() -> None:
    x = np.random.default_rng(21).normal(0.2, 1.0, 1_000)
    a, b = MomentSummary.from_values(x[:700]), MomentSummary.from_values(x[700:])
    back = a + b - b
    assert back.n == a.n
    assert (back.sum, back.sum_squares) == pytest.approx(
        (a.sum, a.sum_squares), abs=1e-9
    )
    assert -a + a == MomentSummary()
    c = ConfusionSummary.from_arrays([1, 0, 1, 1], [1, 1, 0, 1])
    d = ConfusionSummary.from_arrays([0, 0], [0, 1])
    assert c + d - d == c and d - d == ConfusionSummary()
    assert -c == ConfusionSummary(-c.tp, -c.fp, -c.tn, -c.fn)
