"""Check a raw CSV table against ``churn_features.schema`` and type its columns.

The raw table is read with every cell as a string, so this module sees exactly
what the file says. It collects every problem (up to a cap) before raising, so
one run shows what to fix instead of one problem per run.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from churn_features.schema import (
    BLANK_TOTAL_CHARGES_VALUE,
    CATEGORICAL_FEATURES,
    CUSTOMER_ID_MAX_LENGTH,
    FEATURE_ORDER,
    ID_COLUMN,
    NUMERIC_FEATURES,
    TARGET_COLUMN,
    TARGET_POSITIVE,
    TARGET_VALUES,
    NumericFeature,
)
from training.errors import DataProblem, DataValidationError

# Enough to see a pattern; a file with thousands of bad rows is the wrong file.
MAX_REPORTED_PROBLEMS: Final = 20

# The header is line 1 and the DataFrame index starts at 0, so the customer at
# index i sits on line i + 2 (files with quoted line breaks would shift this; the
# Telco data has none).
_FIRST_DATA_LINE: Final = 2

REQUIRED_COLUMNS: Final = (ID_COLUMN, *FEATURE_ORDER, TARGET_COLUMN)
OUTPUT_COLUMNS: Final = (*FEATURE_ORDER, TARGET_COLUMN, ID_COLUMN)


class _Collector:
    """Counts every problem but keeps only the first ``cap``."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.kept: list[DataProblem] = []
        self.total = 0

    def add(self, line: int, column: str, message: str) -> None:
        self.total += 1
        if len(self.kept) < self.cap:
            self.kept.append(DataProblem(line, column, message))

    def add_rows(self, mask: pd.Series, raw: pd.Series, column: str, why: str) -> None:
        for index in np.flatnonzero(mask.to_numpy()):
            value = raw.iloc[index]
            self.add(int(index) + _FIRST_DATA_LINE, column, f"{why} (got {value!r})")


def validate_frame(
    raw: pd.DataFrame, source: str, cap: int = MAX_REPORTED_PROBLEMS
) -> pd.DataFrame:
    """Validate a raw all-string table and return the typed training table.

    The result has columns ``FEATURE_ORDER`` + target + id: categories as
    strings, numbers as float64 (``SeniorCitizen``/``tenure`` too, which is what
    the API sends), the target as int 0/1. Raises ``DataValidationError`` listing
    up to ``cap`` problems by CSV line (header = line 1) and column.
    """
    problems = _Collector(cap)
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    for column in missing:
        problems.add(1, column, "column is missing from the header")
    if missing:
        raise DataValidationError(source, problems.kept, problems.total)
    if raw.empty:
        problems.add(_FIRST_DATA_LINE, ID_COLUMN, "the file has no data rows")
        raise DataValidationError(source, problems.kept, problems.total)

    # Row-major order (line, then column) reads naturally in the message, so
    # problems are gathered per column and sorted before the cap is applied.
    collected = _Collector(cap=len(raw) * len(REQUIRED_COLUMNS))
    out: dict[str, pd.Series] = {}
    numbers = {f.name: _parse_numbers(raw[f.name]) for f in NUMERIC_FEATURES}
    for feature in CATEGORICAL_FEATURES:
        column = raw[feature.name]
        unknown = ~column.isin(feature.categories)
        collected.add_rows(
            unknown,
            column,
            feature.name,
            f"unknown category, expected one of {list(feature.categories)}",
        )
        out[feature.name] = column
    for numeric in NUMERIC_FEATURES:
        out[numeric.name] = _check_numeric(
            numeric,
            raw[numeric.name],
            numbers[numeric.name],
            numbers["tenure"],
            collected,
        )
    target = raw[TARGET_COLUMN]
    collected.add_rows(
        ~target.isin(TARGET_VALUES),
        target,
        TARGET_COLUMN,
        f"unknown target, expected one of {list(TARGET_VALUES)}",
    )
    ids = raw[ID_COLUMN]
    bad_id = (ids.str.strip() == "") | (ids.str.len() > CUSTOMER_ID_MAX_LENGTH)
    collected.add_rows(
        bad_id,
        ids,
        ID_COLUMN,
        f"customer id must be 1 to {CUSTOMER_ID_MAX_LENGTH} characters",
    )

    for problem in sorted(collected.kept, key=lambda p: (p.line, _order(p.column))):
        problems.add(problem.line, problem.column, problem.message)
    if problems.total:
        raise DataValidationError(source, problems.kept, problems.total)

    out[TARGET_COLUMN] = (target == TARGET_POSITIVE).astype(np.int64)
    out[ID_COLUMN] = ids
    return pd.DataFrame(out, columns=list(OUTPUT_COLUMNS)).reset_index(drop=True)


def _parse_numbers(raw: pd.Series) -> pd.Series:
    # Blank and non-numeric both become NaN here; _check_numeric tells them apart.
    return pd.to_numeric(raw.str.strip(), errors="coerce").astype(np.float64)


def _check_numeric(
    feature: NumericFeature,
    raw: pd.Series,
    values: pd.Series,
    tenure: pd.Series,
    problems: _Collector,
) -> pd.Series:
    blank = raw.str.strip() == ""
    if feature.blank_allowed:
        # Only customers not yet billed (tenure 0) may lack a total; see
        # BLANK_TOTAL_CHARGES_VALUE in the schema.
        fillable = blank & (tenure == 0)
        values = values.mask(fillable, BLANK_TOTAL_CHARGES_VALUE)
        problems.add_rows(
            blank & ~fillable,
            raw,
            feature.name,
            "blank is only allowed when tenure is 0",
        )
    else:
        problems.add_rows(blank, raw, feature.name, "blank value")
    non_numeric = ~blank & (values.isna() | np.isinf(values))
    problems.add_rows(non_numeric, raw, feature.name, "not a finite number")
    finite = values.notna() & ~np.isinf(values)
    out_of_range = finite & ((values < feature.minimum) | (values > feature.maximum))
    problems.add_rows(
        out_of_range,
        raw,
        feature.name,
        f"out of range [{feature.minimum:g}, {feature.maximum:g}]",
    )
    if feature.integer:
        fractional = finite & ~out_of_range & (values != np.floor(values))
        problems.add_rows(fractional, raw, feature.name, "must be a whole number")
    return values


_COLUMN_ORDER: Final = {name: i for i, name in enumerate(REQUIRED_COLUMNS)}


def _order(column: str) -> int:
    return _COLUMN_ORDER.get(column, len(_COLUMN_ORDER))
