"""Properties of the request model, generated from the schema itself.

Valid customers drawn from the schema's ranges and categories must validate
(through the JSON path the server uses) and encode into finite values; every
mutation out of range, of the wrong type or to an unknown category must be
rejected with the mutated field named in the error's ``loc``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from churn_features.customer import Customer
from churn_features.encoding import (
    FastEncoder,
    build_preprocessor,
    records_to_codes,
    schema_codes,
)
from churn_features.schema import (
    CATEGORICAL_BY_NAME,
    CATEGORICAL_FEATURES,
    CUSTOMER_ID_MAX_LENGTH,
    EXAMPLE_CUSTOMER,
    FEATURE_ORDER,
    ID_COLUMN,
    NUMERIC_BY_NAME,
    NUMERIC_FEATURES,
)

PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _numeric_value(name: str) -> st.SearchStrategy[Any]:
    feature = NUMERIC_BY_NAME[name]
    low, high = feature.minimum, feature.maximum
    if feature.integer:
        return st.integers(int(low), int(high))
    # A JSON integer is a valid number for a float feature too.
    return st.floats(low, high, allow_nan=False, allow_infinity=False) | st.integers(
        int(low), int(high)
    )


def _feature_value(name: str) -> st.SearchStrategy[Any]:
    categorical = CATEGORICAL_BY_NAME.get(name)
    if categorical is not None:
        return st.sampled_from(categorical.categories)
    return _numeric_value(name)


customer_ids = st.none() | st.text(min_size=1, max_size=CUSTOMER_ID_MAX_LENGTH)


@st.composite
def valid_customers(draw: st.DrawFn) -> dict[str, Any]:
    customer = {name: draw(_feature_value(name)) for name in FEATURE_ORDER}
    customer_id = draw(customer_ids)
    if customer_id is not None:
        customer[ID_COLUMN] = customer_id
    return customer


def validate_json(payload: dict[str, Any]) -> dict[str, Any]:
    """Validate the way the server does: from JSON text (NaN tokens allowed)."""
    text = json.dumps(payload, allow_nan=True)
    return Customer.model_validate_json(text).model_dump()


@pytest.fixture(scope="module")
def fast_encoder_and_preprocessor() -> tuple[FastEncoder, Any]:
    # Fit on one row per category so every one-hot column exists.
    rows = []
    widest = max(len(f.categories) for f in CATEGORICAL_FEATURES)
    for i in range(widest):
        row: dict[str, Any] = {}
        for name in FEATURE_ORDER:
            categorical = CATEGORICAL_BY_NAME.get(name)
            if categorical is not None:
                row[name] = categorical.categories[i % len(categorical.categories)]
            else:
                row[name] = float(NUMERIC_BY_NAME[name].minimum + i)
        rows.append(row)
    preprocessor = build_preprocessor().fit(pd.DataFrame(rows))
    return FastEncoder.from_preprocessor(preprocessor), preprocessor


@PROPERTY_SETTINGS
@given(customer=valid_customers())
def test_schema_customers_validate_and_encode_to_finite_codes(
    customer: dict[str, Any],
) -> None:
    validated = validate_json(customer)
    codes = schema_codes(validated)
    assert len(codes) == len(FEATURE_ORDER)
    assert all(math.isfinite(c) for c in codes)
    for position, name in enumerate(FEATURE_ORDER):
        categorical = CATEGORICAL_BY_NAME.get(name)
        if categorical is not None:
            # The code is the category's index: decoding gives the input back.
            assert categorical.categories[int(codes[position])] == customer[name]
        else:
            assert codes[position] == pytest.approx(float(customer[name]))


@PROPERTY_SETTINGS
@given(customers=st.lists(valid_customers(), min_size=1, max_size=20))
def test_batches_encode_to_finite_columns_matching_the_pipeline(
    customers: list[dict[str, Any]],
    fast_encoder_and_preprocessor: tuple[FastEncoder, Any],
) -> None:
    encoder, preprocessor = fast_encoder_and_preprocessor
    validated = [validate_json(c) for c in customers]
    codes = records_to_codes(validated)
    assert codes.shape == (len(customers), len(FEATURE_ORDER))
    assert np.isfinite(codes).all()
    encoded = encoder.encode(codes)
    assert np.isfinite(encoded).all()
    frame = pd.DataFrame(validated)[list(FEATURE_ORDER)]
    np.testing.assert_allclose(encoded, preprocessor.transform(frame), rtol=1e-12)


# -- mutations -----------------------------------------------------------------


def _bad_numeric_values(name: str) -> st.SearchStrategy[Any]:
    feature = NUMERIC_BY_NAME[name]
    low, high = feature.minimum, feature.maximum
    choices: list[st.SearchStrategy[Any]] = [
        st.floats(max_value=low, exclude_max=True, allow_nan=False)
        .filter(math.isfinite)
        .filter(lambda v: v < low),
        st.floats(min_value=high, exclude_min=True, allow_nan=False),
        st.integers(max_value=int(low) - 1),
        st.integers(min_value=int(high) + 1),
        st.just(float("nan")),
        st.sampled_from([float("inf"), float("-inf")]),
        st.booleans(),
        st.none(),
        _numeric_value(name).map(str),  # "85.0": a string, not a number
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=1),
    ]
    if feature.integer:
        choices.append(
            st.floats(low, high, allow_nan=False).filter(lambda v: v != int(v))
        )
    return st.one_of(choices)


def _bad_category_values(name: str) -> st.SearchStrategy[Any]:
    categories = CATEGORICAL_BY_NAME[name].categories
    wrong_case = st.sampled_from(categories).flatmap(
        lambda c: st.sampled_from(
            [v for v in (c.lower(), c.upper(), c.swapcase()) if v != c] or [c + "x"]
        )
    )
    return st.one_of(
        st.text(max_size=30).filter(lambda v: v not in categories),
        wrong_case,
        st.sampled_from(categories).map(lambda c: f" {c}"),
        st.integers(),
        st.booleans(),
        st.none(),
    )


@st.composite
def mutated_customers(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A valid customer with one field broken; returns it and the field name."""
    customer = draw(valid_customers())
    kind = draw(st.sampled_from(["value", "missing", "extra", "customer_id"]))
    if kind == "missing":
        name = draw(st.sampled_from(FEATURE_ORDER))
        del customer[name]
        return customer, name
    if kind == "extra":
        known = {*FEATURE_ORDER, ID_COLUMN}
        name = draw(st.text(min_size=1, max_size=20).filter(lambda k: k not in known))
        customer[name] = draw(st.integers() | st.text(max_size=5))
        return customer, name
    if kind == "customer_id":
        customer[ID_COLUMN] = draw(
            st.just("")
            | st.text(
                min_size=CUSTOMER_ID_MAX_LENGTH + 1,
                max_size=CUSTOMER_ID_MAX_LENGTH + 50,
            )
            | st.integers()
            | st.booleans()
            | st.lists(st.text(max_size=3), max_size=2)
        )
        return customer, ID_COLUMN
    name = draw(st.sampled_from(FEATURE_ORDER))
    bad = (
        _bad_category_values(name)
        if name in CATEGORICAL_BY_NAME
        else _bad_numeric_values(name)
    )
    customer[name] = draw(bad)
    return customer, name


@PROPERTY_SETTINGS
@given(mutated=mutated_customers())
def test_every_mutation_is_rejected_naming_the_field(
    mutated: tuple[dict[str, Any], str],
) -> None:
    customer, name = mutated
    with pytest.raises(ValidationError) as raised:
        validate_json(customer)
    locations = [error["loc"] for error in raised.value.errors()]
    assert any(loc and loc[0] == name for loc in locations), locations


@pytest.mark.parametrize("feature", NUMERIC_FEATURES, ids=lambda f: f.name)
@pytest.mark.parametrize("end", ["minimum", "maximum"])
def test_numeric_bounds_are_inclusive(feature: Any, end: str) -> None:
    # The generators above rely on the schema's ranges being inclusive.
    bound = getattr(feature, end)
    value = int(bound) if feature.integer else float(bound)
    customer = {**EXAMPLE_CUSTOMER, feature.name: value}
    assert validate_json(customer)[feature.name] == value
