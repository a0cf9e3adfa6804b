"""Mergeable labelled-quality sums against exact oracles on random data.

Oracles: scikit-learn's exact ROC AUC, our row-level DeLong (itself checked
against published values in test_statistics_comparisons.py) applied to the
bin indices, and direct numpy means.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from ab_router.statistics import (
    ConfusionSummary,
    MomentSummary,
    auc_with_variance,
    delong_paired,
    variant_quality,
)
from ab_router.statistics.labelled_sums import (
    JOINT_BIN_COLUMNS,
    LABELLED_SUMS_COLUMNS,
    PAIRED_SUMS_COLUMNS,
    SCORE_BIN_COLUMNS,
    SCORE_BINS,
    LabelledSums,
    PairedSums,
    ScoreHistogram,
    score_bins,
)
from ab_router.statistics.running import RunningMoments, independent_difference
from ab_router.statistics.summaries import NO_DATA, SINGLE_CLASS


def _scores(
    rng: np.random.Generator, n: int, a: float, b: float
) -> tuple[np.ndarray, np.ndarray]:
    """Labels with rate ≈ 27 % and Beta scores that lean towards the label."""
    y = rng.random(n) < 0.27
    p = np.where(y, rng.beta(a + 1, b, n), rng.beta(a, b + 1, n))
    return p, y


SHAPES = [(0.5, 8.0), (1.0, 2.8), (2.0, 2.0), (5.0, 1.0), (0.3, 0.3)]


@pytest.mark.parametrize(("a", "b"), SHAPES)
def test_binned_auc_is_within_0_001_of_the_exact_value(a: float, b: float) -> None:
    p, y = _scores(np.random.default_rng(int(10 * a + b)), 20_000, a, b)
    h = ScoreHistogram.from_scores(p, y)
    got = h.delong().auc
    exact = roc_auc_score(y, p)
    assert abs(got - exact) <= 0.001
    assert abs(got - exact) <= h.auc_error_bound()


def test_error_bound_is_reached_by_a_worst_case() -> None:
    """All positives just above all negatives inside one bin: the bound is tight."""
    width = 1.0 / SCORE_BINS
    p = np.r_[np.full(50, 0.5 + 0.9 * width), np.full(50, 0.5 + 0.1 * width)]
    y = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    h = ScoreHistogram.from_scores(p, y)
    assert roc_auc_score(y, p) == 1.0
    assert h.delong().auc == 0.5
    assert h.auc_error_bound() == 0.5


@pytest.mark.parametrize(("a", "b"), SHAPES)
def test_binned_delong_is_delong_of_the_bin_indices(a: float, b: float) -> None:
    p, y = _scores(np.random.default_rng(3), 3_000, a, b)
    got = ScoreHistogram.from_scores(p, y).delong()
    exact = auc_with_variance(score_bins(p), y)
    assert got.auc == pytest.approx(exact.auc, rel=1e-12)
    assert got.variance == pytest.approx(exact.variance, rel=1e-9)
    raw = auc_with_variance(p, y)
    assert got.variance == pytest.approx(raw.variance, rel=0.01)


def test_sums_give_the_row_level_quality() -> None:
    rng = np.random.default_rng(4)
    p, y = _scores(rng, 5_000, 1.0, 2.8)
    pred = (p >= 0.4).astype(int)
    s = LabelledSums.from_arrays(p, y, pred)
    q = variant_quality("v1", p, y, pred)
    assert s.n == q.labelled == 5_000
    assert s.brier_score == pytest.approx(q.brier, rel=1e-12)
    assert s.brier.mean == pytest.approx(np.mean((p - y) ** 2), rel=1e-12)
    assert s.log_loss.mean == pytest.approx(q.log_loss, rel=1e-12)
    assert s.confusion == q.confusion
    assert s.mean_probability == pytest.approx(p.mean())
    assert s.observed_rate == pytest.approx(y.mean())
    assert s.auc().auc == pytest.approx(q.roc_auc, abs=0.001)


def _assert_same(x: LabelledSums, y: LabelledSums, **tolerance: float) -> None:
    """Counts and bins equal, float sums within ``tolerance`` (pytest.approx's
    ``rel``/``abs``; default a relative 1e-12)."""
    tol = tolerance or {"rel": 1e-12}
    assert (x.n, x.positives, x.confusion, x.scores) == (
        y.n,
        y.positives,
        y.confusion,
        y.scores,
    )
    for name in ("sum_p", "sum_p2", "sum_py"):
        assert getattr(x, name) == pytest.approx(getattr(y, name), **tol)
    for m, n in ((x.brier, y.brier), (x.log_loss, y.log_loss)):
        assert m.n == n.n
        assert (m.sum, m.sum_squares) == pytest.approx((n.sum, n.sum_squares), **tol)


def test_sums_add_up_across_any_split() -> None:
    rng = np.random.default_rng(5)
    p, y = _scores(rng, 3_000, 2.0, 3.0)
    pred = p >= 0.5
    whole = LabelledSums.from_arrays(p, y, pred)
    cuts = np.sort(rng.choice(3_000, size=4, replace=False))
    parts = [
        LabelledSums.from_arrays(pp, yy, dd)
        for pp, yy, dd in zip(
            np.split(p, cuts), np.split(y, cuts), np.split(pred, cuts), strict=True
        )
    ]
    total = LabelledSums.empty()
    for part in parts:
        total = total + part
    _assert_same(total, whole)
    assert LabelledSums.empty() + whole == whole


def test_degenerate_sums_carry_error_codes() -> None:
    assert LabelledSums.empty().auc().error == NO_DATA
    assert math.isnan(LabelledSums.empty().brier_score)
    one_class = LabelledSums.from_arrays([0.2, 0.4, 0.9], [1, 1, 1], [0, 0, 1])
    assert one_class.auc().error == SINGLE_CLASS
    assert math.isnan(one_class.scores.auc_error_bound())


def test_independent_brier_difference_matches_the_summary_path() -> None:
    rng = np.random.default_rng(6)
    p1, y1 = _scores(rng, 2_000, 1.0, 2.8)
    p2, y2 = _scores(rng, 1_000, 1.5, 2.8)
    s1 = LabelledSums.from_arrays(p1, y1, p1 >= 0.5)
    s2 = LabelledSums.from_arrays(p2, y2, p2 >= 0.5)
    got = s2.brier_difference(s1)
    want = independent_difference(
        RunningMoments.of(MomentSummary.from_values((p1 - y1) ** 2)),
        RunningMoments.of(MomentSummary.from_values((p2 - y2) ** 2)),
    )
    assert float(got.t) == 3_000
    assert float(got.estimate) == pytest.approx(float(want.estimate), rel=1e-12)
    assert float(got.se) == pytest.approx(float(want.se), rel=1e-12)


def _paired(
    seed: int, noise: tuple[float, float], n: int = 4_000
) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    base = rng.normal(0, 1, n) + 1.0 * y
    p1 = 1 / (1 + np.exp(-(base + rng.normal(0, noise[0], n))))
    p2 = 1 / (1 + np.exp(-(base + rng.normal(0, noise[1], n))))
    return p1, p2, y


@pytest.mark.parametrize(
    ("seed", "noise"), [(7, (0.5, 0.7)), (8, (0.3, 0.3)), (9, (0.1, 0.12))]
)
def test_paired_auc_difference_and_variance(
    seed: int, noise: tuple[float, float]
) -> None:
    p1, p2, y = _paired(seed, noise)
    s = PairedSums.from_arrays(p1, p2, y, p1 >= 0.5, p2 >= 0.5)
    diff, var = s.auc_difference()
    exact = delong_paired(p2, p1, y)
    exact_se = (exact.ci_high - exact.ci_low) / (2 * stats.norm.ppf(0.975))
    assert diff == pytest.approx(exact.estimate, abs=0.001)
    assert math.sqrt(var) == pytest.approx(exact_se, rel=0.05)


def test_paired_sums_hold_mcnemar_counts_and_differences() -> None:
    p1, p2, y = _paired(10, (0.5, 0.7), n=1_000)
    c1, c2 = (p1 >= 0.5) == y, (p2 >= 0.5) == y
    s = PairedSums.from_arrays(p1, p2, y, p1 >= 0.5, p2 >= 0.5)
    assert s.only_challenger_correct == int(np.sum(c2 & ~c1))
    assert s.only_champion_correct == int(np.sum(c1 & ~c2))
    d = (p2 - y) ** 2 - (p1 - y) ** 2
    assert s.n == 1_000 and s.brier_differences.mean == pytest.approx(d.mean())
    assert float(s.brier_difference().se) == pytest.approx(
        d.std(ddof=1) / math.sqrt(d.size), rel=1e-9
    )
    d1, d2 = p1 >= 0.5, p2 >= 0.5
    head = PairedSums.from_arrays(p1[:400], p2[:400], y[:400], d1[:400], d2[:400])
    tail = PairedSums.from_arrays(p1[400:], p2[400:], y[400:], d1[400:], d2[400:])
    both = head + tail
    whole = s
    assert both.only_champion_correct == whole.only_champion_correct
    assert np.array_equal(both.joint_positive, whole.joint_positive)
    assert np.array_equal(both.joint_negative, whole.joint_negative)
    assert both.auc_difference() == pytest.approx(whole.auc_difference(), rel=1e-9)


def _random_sums(seed: int, n: int) -> LabelledSums:
    p, y = _scores(np.random.default_rng(seed), n, 1.0, 2.8)
    return LabelledSums.from_arrays(p, y, p >= 0.4)


def test_removing_a_contribution_gives_back_the_sums() -> None:
    a, b = _random_sums(11, 2_000), _random_sums(12, 300)
    back = a + b - b
    _assert_same(back, a, abs=1e-9)
    assert a - a == LabelledSums.empty()
    assert -a + a == LabelledSums.empty()


def test_a_changed_label_is_its_old_contribution_out_and_the_new_one_in() -> None:
    rng = np.random.default_rng(13)
    p, y = _scores(rng, 500, 1.0, 2.8)
    pred = p >= 0.4
    wrong = y.copy()
    wrong[:50] = ~wrong[:50]
    rollup = LabelledSums.from_arrays(p, wrong, pred)
    for i in range(50):  # the relabels arrive one by one, as the ledger sees them
        rollup = (
            rollup
            - LabelledSums.from_arrays(p[i : i + 1], wrong[i : i + 1], pred[i : i + 1])
            + LabelledSums.from_arrays(p[i : i + 1], y[i : i + 1], pred[i : i + 1])
        )
    _assert_close_to(rollup, LabelledSums.from_arrays(p, y, pred), 1e-9)


def _assert_close_to(x: LabelledSums, y: LabelledSums, tol: float) -> None:
    assert (x.n, x.positives, x.confusion, x.scores) == (
        y.n,
        y.positives,
        y.confusion,
        y.scores,
    )
    assert x.columns() == pytest.approx(y.columns(), rel=tol, abs=tol)


def test_paired_sums_subtract() -> None:
    p1, p2, y = _paired(14, (0.5, 0.7), n=1_000)
    whole = PairedSums.from_arrays(p1, p2, y, p1 >= 0.5, p2 >= 0.5)
    part = PairedSums.from_arrays(
        p1[:100], p2[:100], y[:100], p1[:100] >= 0.5, p2[:100] >= 0.5
    )
    back = whole + part - part
    assert back.columns() == pytest.approx(whole.columns(), abs=1e-9)
    assert np.array_equal(back.joint_positive, whole.joint_positive)
    assert (whole - whole).columns() == PairedSums.empty().columns()
    assert whole - whole == PairedSums.empty()


def test_labelled_sums_round_trip_through_columns_and_sparse_bins() -> None:
    s = _random_sums(15, 3_000)
    values = s.columns()
    assert len(values) == len(LABELLED_SUMS_COLUMNS)
    rows = s.scores.bin_rows()
    assert len(rows) < 2 * SCORE_BINS and all(count != 0 for *_, count in rows)
    assert sum(c for label, _, c in rows if label == 1) == s.positives
    assert LabelledSums.from_columns(values, rows) == s
    # A contribution that removes labels has negative counts; they round-trip too.
    removal = -_random_sums(16, 5)
    assert LabelledSums.from_columns(removal.columns(), removal.scores.bin_rows()) == (
        removal
    )
    assert LabelledSums.from_columns(LabelledSums.empty().columns(), []) == (
        LabelledSums.empty()
    )


def test_from_columns_names_what_it_expected() -> None:
    with pytest.raises(ValueError, match="expected 13 values"):
        LabelledSums.from_columns((1, 2, 3), [])
    with pytest.raises(ValueError, match="score bin outside"):
        ScoreHistogram.from_bin_rows([(1, SCORE_BINS, 1)])


def test_paired_sums_round_trip_through_columns() -> None:
    p1, p2, y = _paired(17, (0.5, 0.7), n=2_000)
    s = PairedSums.from_arrays(p1, p2, y, p1 >= 0.5, p2 >= 0.5)
    values = s.columns()
    assert len(values) == len(PAIRED_SUMS_COLUMNS) == 2 * 13 + 6
    back = PairedSums.from_columns(
        values,
        s.champion.scores.bin_rows(),
        s.challenger.scores.bin_rows(),
        s.joint_rows(),
    )
    assert back == s
    assert back.auc_difference() == s.auc_difference()
    assert len(JOINT_BIN_COLUMNS) == len(s.joint_rows()[0])
    assert len(SCORE_BIN_COLUMNS) == len(s.champion.scores.bin_rows()[0])


def test_identical_models_have_zero_paired_auc_variance() -> None:
    p1, _, y = _paired(18, (0.5, 0.7))
    s = PairedSums.from_arrays(p1, p1, y, p1 >= 0.5, p1 >= 0.5)
    assert s.auc_difference() == (0.0, 0.0)


def test_agreement_is_exact_on_counts_and_tolerant_on_float_sums() -> None:
    p, y = _scores(np.random.default_rng(19), 400, 1.0, 2.8)
    pred = p >= 0.4
    whole = LabelledSums.from_arrays(p, y, pred)
    one_by_one = LabelledSums.empty()
    for i in range(400):
        one_by_one = one_by_one + LabelledSums.from_arrays(
            p[i : i + 1], y[i : i + 1], pred[i : i + 1]
        )
    assert one_by_one.agrees_with(whole)
    nudged = replace(whole, sum_p=whole.sum_p * (1 + 1e-6))
    assert not nudged.agrees_with(whole)
    extra = replace(whole, confusion=whole.confusion + ConfusionSummary(tp=1))
    assert not extra.agrees_with(whole)
    moved = LabelledSums.from_arrays(np.r_[p[:-1], 0.999], y, pred)
    assert not moved.agrees_with(whole)
    p1, p2, yy = _paired(20, (0.5, 0.7), n=500)
    s = PairedSums.from_arrays(p1, p2, yy, p1 >= 0.5, p2 >= 0.5)
    halves = PairedSums.from_arrays(
        p1[:250], p2[:250], yy[:250], p1[:250] >= 0.5, p2[:250] >= 0.5
    ) + PairedSums.from_arrays(
        p1[250:], p2[250:], yy[250:], p1[250:] >= 0.5, p2[250:] >= 0.5
    )
    assert halves.agrees_with(s)
    assert not replace(
        s, only_champion_correct=s.only_champion_correct + 1
    ).agrees_with(s)
