"""Reference distributions: the binning rule, quantile edges and the metadata codec."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from churn_features.reference import (
    REFERENCE_FORMAT,
    CategoricalReference,
    NumericReference,
    ReferenceDistributions,
    ReferenceFormatError,
    bin_numeric,
    categorical_reference,
    numeric_reference,
    quantile_edges,
    reference_from_codes,
)
from churn_features.schema import CATEGORICAL_BY_NAME, FEATURE_ORDER


def synthetic_codes(rows: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    columns = []
    for name in FEATURE_ORDER:
        if name in CATEGORICAL_BY_NAME:
            k = len(CATEGORICAL_BY_NAME[name].categories)
            columns.append(rng.integers(0, k, rows).astype(float))
        elif name == "SeniorCitizen":
            columns.append((rng.random(rows) < 0.16).astype(float))
        elif name == "tenure":
            columns.append(rng.integers(0, 73, rows).astype(float))
        else:
            columns.append(np.round(rng.uniform(18, 120, rows), 2))
    return np.column_stack(columns)


def test_a_value_on_an_edge_goes_to_the_lower_bin() -> None:
    edges = np.array([1.0, 2.0, 5.0])
    values = [1.0, 1.001, 2.0, 2.001, 5.0, 5.001]
    assert bin_numeric(edges, values).tolist() == [0, 1, 1, 2, 2, 3]


def test_values_beyond_the_training_range_land_in_the_outer_bins() -> None:
    edges = np.array([1.0, 2.0])
    assert bin_numeric(edges, [-1e9, -1.0, 3.0, 1e9]).tolist() == [0, 0, 2, 2]


def test_quantile_edges_of_one_to_a_hundred() -> None:
    # inverted_cdf: the 0.1 quantile of 1..100 is the 10th value, 10; the bins
    # (-inf, 10], (10, 20], ... (90, inf) then hold ten values each.
    reference = numeric_reference("x", np.arange(1, 101, dtype=float))
    assert reference.edges == tuple(float(v) for v in range(10, 100, 10))
    assert reference.shares == (0.1,) * 10


def test_a_mass_at_the_minimum_keeps_its_own_bin() -> None:
    values = np.r_[np.zeros(900), np.arange(1, 101, dtype=float)]
    reference = numeric_reference("x", values)
    assert reference.edges == (0.0,)
    assert reference.shares == (0.9, 0.1)


def test_every_training_bin_holds_rows_and_shares_sum_to_one() -> None:
    rng = np.random.default_rng(1)
    for values in (
        rng.normal(size=997),
        rng.integers(0, 73, 5000).astype(float),
        np.round(rng.exponential(50, 3000), 2),
        np.r_[np.zeros(900), rng.uniform(size=100)],  # a heavy point mass
    ):
        reference = numeric_reference("x", values)
        assert min(reference.shares) > 0
        assert sum(reference.shares) == pytest.approx(1.0)
        assert 2 <= reference.bins <= 10


def test_a_zero_one_feature_gets_two_bins_not_empty_ones() -> None:
    values = np.r_[np.zeros(84), np.ones(16)]
    reference = numeric_reference("SeniorCitizen", values)
    assert reference.edges == (0.0,)
    assert reference.shares == (0.84, 0.16)


def test_a_constant_feature_gets_one_bin() -> None:
    reference = numeric_reference("x", np.full(50, 3.0))
    assert quantile_edges(np.full(50, 3.0)) == ()
    assert reference.edges == ()
    assert reference.shares == (1.0,)


def test_categorical_shares_follow_schema_order() -> None:
    codes = np.array([0, 0, 0, 2, 1, 0, 2, 2, 0, 0], dtype=float)
    reference = categorical_reference("Contract", codes)
    assert reference.categories == ("Month-to-month", "One year", "Two year")
    assert reference.shares == (0.6, 0.1, 0.3)


def test_a_category_code_outside_the_schema_is_rejected() -> None:
    with pytest.raises(ValueError, match="Contract"):
        categorical_reference("Contract", np.array([0.0, 3.0]))


def test_quantile_edges_refuse_empty_or_non_finite_values() -> None:
    with pytest.raises(ValueError):
        quantile_edges(np.array([]))
    with pytest.raises(ValueError):
        quantile_edges(np.array([1.0, np.nan]))


def test_references_from_codes_cover_every_feature_and_the_score() -> None:
    codes = synthetic_codes(2000)
    scores = np.random.default_rng(2).beta(1, 3, 1500)
    reference = reference_from_codes(codes, scores)
    assert tuple(f.name for f in reference.features) == FEATURE_ORDER
    assert reference.rows == 2000
    assert reference.score_rows == 1500
    assert reference.score.bins == 10
    assert isinstance(reference.feature("tenure"), NumericReference)
    assert isinstance(reference.feature("Contract"), CategoricalReference)


def test_the_metadata_codec_round_trips_through_json() -> None:
    reference = reference_from_codes(
        synthetic_codes(1000), np.random.default_rng(3).uniform(size=1000)
    )
    stored = json.loads(json.dumps(reference.to_metadata()))
    assert ReferenceDistributions.from_metadata(stored) == reference


def test_metadata_holds_only_plain_values() -> None:
    # BentoML metadata accepts only plain Python values, not numpy scalars.
    def plain(value: Any) -> bool:
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return type(value) in (str, int, float, bool)

    reference = reference_from_codes(synthetic_codes(300), np.linspace(0, 1, 300))
    assert plain(reference.to_metadata())


def _stored() -> dict[str, Any]:
    reference = reference_from_codes(synthetic_codes(300), np.linspace(0, 1, 300))
    return json.loads(json.dumps(reference.to_metadata()))


@pytest.mark.parametrize(
    ("mutate", "names"),
    [
        (lambda d: d.update(format=REFERENCE_FORMAT + 1), "format"),
        (lambda d: d["features"].pop("tenure"), "tenure"),
        (lambda d: d["features"]["tenure"].update(kind="categorical"), "tenure"),
        (lambda d: d["features"]["Contract"]["shares"].pop(), "Contract"),
        (
            lambda d: d["features"]["Contract"].update(
                categories=["Monthly", "One year", "Two year"]
            ),
            "Contract",
        ),
        (
            lambda d: d["features"]["MonthlyCharges"]["edges"].reverse(),
            "MonthlyCharges",
        ),
        (lambda d: d["score"]["shares"].__setitem__(0, 5.0), "score"),
        (lambda d: d["score"].update(edges="0.5"), "score"),
        (lambda d: d.update(rows=0), "rows"),
        (lambda d: d.pop("score_rows"), "score_rows"),
    ],
)
def test_bad_metadata_is_refused_naming_the_field(mutate: Any, names: str) -> None:
    stored = _stored()
    mutate(stored)
    with pytest.raises(ReferenceFormatError, match=names):
        ReferenceDistributions.from_metadata(stored)
