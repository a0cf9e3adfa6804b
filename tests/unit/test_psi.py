"""PSI, its smoothing, and mergeable live bin counts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ab_router.statistics.psi import (
    SMOOTHING_ALPHA,
    DriftCounts,
    bin_codes,
    drift_report,
    population_stability_index,
)
from ab_router.statistics.summaries import NO_DATA
from churn_features.reference import ReferenceDistributions, reference_from_codes
from churn_features.schema import FEATURE_ORDER
from tests.unit.test_reference import synthetic_codes

TENURE = FEATURE_ORDER.index("tenure")
CONTRACT = FEATURE_ORDER.index("Contract")


def oracle_psi(expected: list[float], actual: list[float], alpha: float) -> float:
    # Written out bin by bin, independently of the vectorised implementation.
    k = len(expected)
    n_e, n_a = sum(expected), sum(actual)
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        p = (e + alpha) / (n_e + k * alpha)
        q = (a + alpha) / (n_a + k * alpha)
        total += (q - p) * math.log(q / p)
    return total


@pytest.fixture(scope="module")
def reference() -> ReferenceDistributions:
    codes = synthetic_codes(4000, seed=5)
    return reference_from_codes(codes, np.random.default_rng(6).beta(1, 3, 4000))


def test_psi_matches_a_hand_computed_value() -> None:
    # p = (40.5, 30.5, 20.5, 10.5)/102 and q = (10.5, 20.5, 30.5, 40.5)/102.
    p = np.array([40.5, 30.5, 20.5, 10.5]) / 102
    q = p[::-1]
    by_hand = float(np.sum((q - p) * np.log(q / p)))
    assert population_stability_index([40, 30, 20, 10], [10, 20, 30, 40]) == (
        pytest.approx(by_hand, rel=1e-12)
    )
    # (30/102)·ln(40.5/10.5)·2 + (10/102)·ln(30.5/20.5)·2
    assert by_hand == pytest.approx(0.8720, abs=1e-4)


@pytest.mark.parametrize("seed", range(5))
def test_psi_matches_the_oracle_on_random_counts(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 12))
    expected = rng.integers(0, 500, k).astype(float).tolist()
    actual = rng.integers(0, 50, k).astype(float).tolist()
    for alpha in (SMOOTHING_ALPHA, 1.0, 1e-3):
        assert population_stability_index(expected, actual, alpha=alpha) == (
            pytest.approx(oracle_psi(expected, actual, alpha), rel=1e-12, abs=1e-15)
        )


def test_identical_counts_have_zero_psi_and_small_windows_a_small_bias() -> None:
    assert population_stability_index([10, 20, 30], [10, 20, 30]) == 0.0
    # The same shares from 6 live rows: the pseudo-counts pull the small window
    # towards uniform, a bias that is small and fades with the window.
    small = population_stability_index([10, 20, 30], [1, 2, 3])
    larger = population_stability_index([10, 20, 30], [100, 200, 300])
    assert 0 < larger < small < 0.01


def test_empty_bins_on_either_side_keep_psi_finite() -> None:
    for expected, actual in (
        ([100, 0, 0], [0, 0, 100]),
        ([0, 50, 50], [100, 0, 0]),
        ([1e6, 0], [0, 1e6]),
    ):
        value = population_stability_index(expected, actual)
        assert math.isfinite(value)
        assert value > 1.0


def test_no_live_rows_is_nan_not_a_number() -> None:
    assert math.isnan(population_stability_index([10, 20], [0, 0]))
    assert math.isnan(population_stability_index([0, 0], [10, 20]))


@pytest.mark.parametrize(
    ("expected", "actual", "alpha"),
    [([1, 2], [1, 2, 3], 0.5), ([], [], 0.5), ([1, 2], [1, 2], 0.0), ([1], [-1], 1)],
)
def test_programming_errors_raise(
    expected: list[float], actual: list[float], alpha: float
) -> None:
    with pytest.raises(ValueError):
        population_stability_index(expected, actual, alpha=alpha)


def test_binning_counts_every_row_in_exactly_one_bin_per_feature(
    reference: ReferenceDistributions,
) -> None:
    codes = synthetic_codes(321, seed=9)
    counts = bin_codes(reference, codes, np.linspace(0, 1, 321))
    assert counts.rows == 321
    assert counts.scored == 321
    for feature, live in zip(reference.features, counts.features, strict=True):
        assert len(live) == feature.bins
        assert sum(live) == 321
    assert sum(counts.score) == 321


def test_binning_boundaries_edge_below_min_above_max(
    reference: ReferenceDistributions,
) -> None:
    tenure = reference.feature("tenure")
    assert tenure.bins == 10
    edges = tenure.edges  # type: ignore[union-attr]
    codes = np.repeat(synthetic_codes(1, seed=1), 5, axis=0)
    codes[:, TENURE] = [edges[0], edges[0] + 1, -5.0, 1e6, edges[-1]]
    live = bin_codes(reference, codes).features[TENURE]
    expected = [0] * 10
    for index in (0, 1, 0, 9, 8):  # on edge -> lower, below -> first, above -> last
        expected[index] += 1
    assert list(live) == expected


def test_categorical_codes_count_per_category(
    reference: ReferenceDistributions,
) -> None:
    codes = np.repeat(synthetic_codes(1), 6, axis=0)
    codes[:, CONTRACT] = [0, 0, 0, 2, 2, 1]
    assert bin_codes(reference, codes).features[CONTRACT] == (3, 1, 2)


@pytest.mark.parametrize("bad", [3.0, -1.0, 0.5, math.nan])
def test_bad_category_codes_are_refused_naming_the_feature(
    reference: ReferenceDistributions, bad: float
) -> None:
    codes = synthetic_codes(3)
    codes[1, CONTRACT] = bad
    with pytest.raises(ValueError, match="Contract"):
        bin_codes(reference, codes)


def test_non_finite_numbers_are_refused_naming_the_feature(
    reference: ReferenceDistributions,
) -> None:
    codes = synthetic_codes(3)
    codes[2, TENURE] = math.inf
    with pytest.raises(ValueError, match="tenure"):
        bin_codes(reference, codes)


def test_counts_add_up_like_one_big_batch(reference: ReferenceDistributions) -> None:
    codes = synthetic_codes(900, seed=11)
    scores = np.random.default_rng(12).uniform(size=900)
    parts = [
        bin_codes(reference, codes[i : i + 300], scores[i : i + 300])
        for i in range(0, 900, 300)
    ]
    merged = parts[0] + parts[1] + parts[2]
    assert merged == bin_codes(reference, codes, scores)
    assert parts[0] + (parts[1] + parts[2]) == merged
    assert DriftCounts.empty(reference) + merged == merged


def test_counts_against_another_reference_do_not_add(
    reference: ReferenceDistributions,
) -> None:
    other = reference_from_codes(synthetic_codes(500), np.full(500, 0.5))
    assert other.score.bins == 1
    with pytest.raises(ValueError, match="different references"):
        DriftCounts.empty(reference) + DriftCounts.empty(other)
    with pytest.raises(ValueError, match="another reference"):
        drift_report(reference, DriftCounts.empty(other))


def test_report_is_no_data_without_rows_and_features_only_without_scores(
    reference: ReferenceDistributions,
) -> None:
    empty = drift_report(reference, DriftCounts.empty(reference))
    assert all(r.error == NO_DATA and math.isnan(r.psi) for r in empty.features)
    assert empty.score.error == NO_DATA
    unscored = drift_report(reference, bin_codes(reference, synthetic_codes(200)))
    assert unscored.score.error == NO_DATA
    assert all(r.error is None and r.rows == 200 for r in unscored.features)


def test_report_psi_uses_reference_shares_times_rows(
    reference: ReferenceDistributions,
) -> None:
    codes = synthetic_codes(400, seed=13)
    codes[:, CONTRACT] = 0  # everyone month-to-month
    report = drift_report(reference, bin_codes(reference, codes))
    shares = np.asarray(reference.feature("Contract").shares) * reference.rows
    expected = oracle_psi(shares.tolist(), [400.0, 0.0, 0.0], SMOOTHING_ALPHA)
    assert report.feature("Contract").psi == pytest.approx(expected, rel=1e-12)
    assert report.feature("Contract").psi > 0.3
    assert report.feature("gender").psi < 0.1


def test_scores_must_match_the_rows(reference: ReferenceDistributions) -> None:
    with pytest.raises(ValueError, match="3 rows but 2 scores"):
        bin_codes(reference, synthetic_codes(3), [0.1, 0.2])
    with pytest.raises(ValueError, match="score"):
        bin_codes(reference, synthetic_codes(2), [0.1, math.nan])
