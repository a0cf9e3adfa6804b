"""Fixed-horizon comparisons and SRM against scipy/statsmodels/numpy oracles."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportions_ztest,
)

from ab_router.statistics import (
    NO_DATA,
    SINGLE_CLASS,
    TOO_FEW_SAMPLES,
    ZERO_VARIANCE,
    MomentSummary,
    ProportionSummary,
    auc_with_variance,
    delong_independent,
    delong_paired,
    mcnemar_test,
    paired_t_test,
    srm_test,
    two_proportion_test,
    welch_test,
)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_welch_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.exponential(0.2, 150)
    y = rng.exponential(0.25, 90) + 0.01
    r = welch_test(MomentSummary.from_values(x), MomentSummary.from_values(y))
    ref = stats.ttest_ind(x, y, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert r.error is None
    assert r.estimate == pytest.approx(x.mean() - y.mean())
    assert r.statistic == pytest.approx(ref.statistic, rel=1e-9)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-7)
    assert r.df == pytest.approx(ref.df, rel=1e-9)
    assert (r.ci_low, r.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-8)


def test_welch_degenerate() -> None:
    empty = MomentSummary()
    one = MomentSummary.from_values([0.3])
    flat = MomentSummary.from_values([0.2, 0.2, 0.2])
    assert welch_test(empty, flat).error == NO_DATA
    assert welch_test(one, flat).error == TOO_FEW_SAMPLES
    r = welch_test(flat, MomentSummary.from_values([0.1, 0.1]))
    assert r.error == ZERO_VARIANCE
    assert r.estimate == pytest.approx(0.1)
    assert math.isnan(r.p_value)


@pytest.mark.parametrize(
    ("s1", "n1", "s2", "n2"), [(412, 600, 380, 590), (30, 40, 7, 25)]
)
def test_two_proportions_match_statsmodels(s1: int, n1: int, s2: int, n2: int) -> None:
    r = two_proportion_test(ProportionSummary(n1, s1), ProportionSummary(n2, s2))
    z, p = proportions_ztest([s1, s2], [n1, n2])
    low, high = confint_proportions_2indep(
        s1, n1, s2, n2, method="wald", compare="diff"
    )
    assert r.estimate == pytest.approx(s1 / n1 - s2 / n2)
    assert r.statistic == pytest.approx(z)
    assert r.p_value == pytest.approx(p)
    assert (r.ci_low, r.ci_high) == pytest.approx((low, high))


def test_two_proportions_degenerate() -> None:
    assert two_proportion_test(ProportionSummary(), ProportionSummary(3, 1)).error == (
        NO_DATA
    )
    same = two_proportion_test(ProportionSummary(10, 10), ProportionSummary(8, 8))
    assert same.error == ZERO_VARIANCE


def test_paired_t_matches_scipy() -> None:
    rng = np.random.default_rng(7)
    a = rng.random(300)
    b = a + rng.normal(0.02, 0.1, 300)
    r = paired_t_test(MomentSummary.from_values(b - a))
    ref = stats.ttest_rel(b, a)
    ci = ref.confidence_interval(0.95)
    assert r.statistic == pytest.approx(ref.statistic, rel=1e-8)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-6)
    assert (r.ci_low, r.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-8)
    assert paired_t_test(MomentSummary.from_values([0.1] * 5)).error == ZERO_VARIANCE


@pytest.mark.parametrize(("b", "c"), [(40, 22), (9, 3), (0, 4), (60, 60)])
def test_mcnemar_matches_statsmodels(b: int, c: int) -> None:
    n = 500
    r = mcnemar_test(b, c, n)
    exact = b + c < 25
    # statsmodels' table: rows = x correct/wrong, cols = y correct/wrong.
    table = np.array([[n - b - c - 50, b], [c, 50]])
    ref = mcnemar(table, exact=exact, correction=True)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert r.estimate == pytest.approx((b - c) / n)
    d = np.r_[np.ones(b), -np.ones(c), np.zeros(n - b - c)]
    half = stats.norm.ppf(0.975) * d.std(ddof=0) / math.sqrt(n)
    assert (r.ci_low, r.ci_high) == pytest.approx((d.mean() - half, d.mean() + half))


def test_mcnemar_no_discordant_pairs() -> None:
    assert mcnemar_test(0, 0, 100).error == ZERO_VARIANCE
    assert mcnemar_test(0, 0, 0).error == NO_DATA


def _naive_delong(scores: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """O(n²) structural components straight from the definition (oracle)."""
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    psi = (pos[:, :, None] > neg[:, None, :]) + 0.5 * (
        pos[:, :, None] == neg[:, None, :]
    )
    return psi.mean(axis=2), psi.mean(axis=1)


def _scores(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = (rng.random(n) < 0.3).astype(int)
    s = np.round(0.3 * y + rng.random(n), 2)  # rounding creates ties
    return s, y


def test_auc_and_delong_variance_match_definition() -> None:
    rng = np.random.default_rng(11)
    s, y = _scores(rng, 250)
    r = auc_with_variance(s, y)
    v10, v01 = _naive_delong(s[None, :], y)
    assert r.auc == pytest.approx(roc_auc_score(y, s))
    m1, m0 = int(y.sum()), int((1 - y).sum())
    assert r.variance == pytest.approx(
        v10.var(ddof=1) / m1 + v01.var(ddof=1) / m0, rel=1e-10
    )
    u = stats.mannwhitneyu(s[y == 1], s[y == 0]).statistic
    assert r.auc == pytest.approx(u / (m1 * m0))


def test_delong_independent() -> None:
    rng = np.random.default_rng(12)
    s1, y1 = _scores(rng, 300)
    s2, y2 = _scores(rng, 200)
    r = delong_independent(s1, y1, s2, y2)
    a1, a2 = auc_with_variance(s1, y1), auc_with_variance(s2, y2)
    assert r.estimate == pytest.approx(roc_auc_score(y1, s1) - roc_auc_score(y2, s2))
    se = math.sqrt(a1.variance + a2.variance)
    assert r.p_value == pytest.approx(2 * stats.norm.sf(abs(r.estimate) / se))
    assert r.ci_high - r.ci_low == pytest.approx(2 * stats.norm.ppf(0.975) * se)


def test_delong_paired_matches_definition() -> None:
    rng = np.random.default_rng(13)
    s1, y = _scores(rng, 300)
    s2 = np.round(s1 + rng.normal(0, 0.3, 300), 2)
    r = delong_paired(s1, s2, y)
    v10, v01 = _naive_delong(np.vstack([s1, s2]), y)
    cov = np.cov(v10) / v10.shape[1] + np.cov(v01) / v01.shape[1]
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    assert r.estimate == pytest.approx(roc_auc_score(y, s1) - roc_auc_score(y, s2))
    assert r.statistic == pytest.approx(r.estimate / math.sqrt(var), rel=1e-9)
    # Correlated scores: the paired variance is below the independent one.
    indep = auc_with_variance(s1, y).variance + auc_with_variance(s2, y).variance
    assert var < indep


def test_auc_degenerate() -> None:
    assert auc_with_variance([0.2, 0.4], [1, 1]).error == SINGLE_CLASS
    assert auc_with_variance([], []).error == NO_DATA
    assert delong_paired([0.1, 0.2], [0.3, 0.1], [0, 0]).error == SINGLE_CLASS
    x, yx = [0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]
    assert delong_independent(x, yx, [], []).error == NO_DATA
    assert delong_independent(x, yx, [0.1, 0.9], [0, 1]).error == TOO_FEW_SAMPLES
    same = delong_paired([0.1, 0.2, 0.7, 0.9], [0.1, 0.2, 0.7, 0.9], [0, 0, 1, 1])
    assert same.error == ZERO_VARIANCE


@pytest.mark.parametrize(
    ("counts", "weights"),
    [
        ({"v1": 5120, "v2": 4880}, {"v1": 0.5, "v2": 0.5}),
        ({"v1": 9100, "v2": 900}, {"v1": 0.9, "v2": 0.1}),
        ({"a": 300, "b": 340, "c": 310}, {"a": 1, "b": 1, "c": 1}),
        ({"v1": 800, "v2": 200}, {"v1": 0.5, "v2": 0.5}),
    ],
)
def test_srm_matches_scipy_chisquare(
    counts: dict[str, int], weights: dict[str, float]
) -> None:
    r = srm_test(counts, weights)
    total = sum(counts.values())
    wsum = sum(weights.values())
    obs = [counts[v] for v in weights]
    exp = [total * weights[v] / wsum for v in weights]
    ref = stats.chisquare(obs, exp)
    assert r.statistic == pytest.approx(ref.statistic)
    assert r.p_value == pytest.approx(ref.pvalue)
    assert r.alarm == (ref.pvalue < 0.001)
    assert r.df == len(weights) - 1


def test_srm_zero_weight_variant_with_traffic_is_an_alarm() -> None:
    r = srm_test({"v1": 1000, "v2": 3}, {"v1": 1.0, "v2": 0.0})
    assert r.alarm and r.p_value == 0.0
    assert r.unexpected_variants == ("v2",)
    unknown = srm_test({"v1": 500, "v2": 500, "v3": 1}, {"v1": 0.5, "v2": 0.5})
    assert unknown.alarm and unknown.unexpected_variants == ("v3",)


def test_srm_degenerate_and_threshold() -> None:
    assert srm_test({}, {"v1": 0.5, "v2": 0.5}).error == NO_DATA
    assert not srm_test({}, {"v1": 0.5, "v2": 0.5}).alarm
    single = srm_test({"v1": 100}, {"v1": 1.0, "v2": 0.0})
    assert single.error is not None and not single.alarm
    counts = {"v1": 530, "v2": 470}  # p ≈ 0.058
    assert not srm_test(counts, {"v1": 0.5, "v2": 0.5}).alarm
    assert srm_test(counts, {"v1": 0.5, "v2": 0.5}, threshold=0.1).alarm
