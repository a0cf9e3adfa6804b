"""The CSV loader rejects data that does not match the schema, by line and column."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Any

import pytest

from churn_features.schema import (
    BLANK_TOTAL_CHARGES_VALUE,
    EXAMPLE_CUSTOMER,
    FEATURE_ORDER,
    ID_COLUMN,
    TARGET_COLUMN,
)
from training.data import read_csv
from training.errors import DataReadError, DataValidationError
from training.validation import MAX_REPORTED_PROBLEMS

HEADER = [ID_COLUMN, *FEATURE_ORDER, TARGET_COLUMN]


def customer(i: int, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {ID_COLUMN: f"C{i:04d}", **EXAMPLE_CUSTOMER}
    row[TARGET_COLUMN] = "Yes" if i % 3 == 0 else "No"
    row.update(overrides)
    return row


def write_csv(
    path: Path, rows: list[dict[str, Any]], header: list[str] = HEADER
) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def load_error(path: Path) -> DataValidationError:
    with pytest.raises(DataValidationError) as caught:
        read_csv(path, str(path))
    return caught.value


def test_valid_file_loads_typed_in_feature_order(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ok.csv", [customer(i) for i in range(1, 7)])
    data = read_csv(path, "test file")
    assert list(data.frame.columns) == [*FEATURE_ORDER, TARGET_COLUMN, ID_COLUMN]
    assert data.rows == 6
    assert data.frame[TARGET_COLUMN].tolist() == [0, 0, 1, 0, 0, 1]
    assert data.frame["tenure"].dtype.kind == "f"
    assert data.frame["MonthlyCharges"].tolist() == [85.0] * 6
    assert data.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert data.source == "test file"


def test_missing_column_is_reported_on_the_header_line(tmp_path: Path) -> None:
    header = [c for c in HEADER if c not in ("Contract", "tenure")]
    path = write_csv(tmp_path / "bad.csv", [customer(1)], header)
    error = load_error(path)
    assert {(p.line, p.column) for p in error.problems} == {
        (1, "Contract"),
        (1, "tenure"),
    }
    assert "line 1, column 'tenure'" in str(error)


def test_unknown_category_names_line_and_column(tmp_path: Path) -> None:
    rows = [customer(1), customer(2), customer(3, Contract="Three year")]
    error = load_error(write_csv(tmp_path / "bad.csv", rows))
    # Header is line 1, so the third customer is line 4.
    assert [(p.line, p.column) for p in error.problems] == [(4, "Contract")]
    assert "line 4, column 'Contract'" in str(error)
    assert "'Three year'" in str(error)


def test_non_numeric_value_names_line_and_column(tmp_path: Path) -> None:
    rows = [customer(1, MonthlyCharges="abc"), customer(2)]
    error = load_error(write_csv(tmp_path / "bad.csv", rows))
    assert [(p.line, p.column) for p in error.problems] == [(2, "MonthlyCharges")]
    assert "not a finite number" in str(error)


@pytest.mark.parametrize(
    ("column", "value"),
    [("tenure", 601), ("tenure", -1), ("SeniorCitizen", 2), ("TotalCharges", 1e7)],
)
def test_out_of_range_value_names_line_and_column(
    tmp_path: Path, column: str, value: float
) -> None:
    rows = [customer(1), customer(2, **{column: value})]
    error = load_error(write_csv(tmp_path / "bad.csv", rows))
    assert [(p.line, p.column) for p in error.problems] == [(3, column)]
    assert "out of range" in str(error)


def test_fractional_integer_feature_is_rejected(tmp_path: Path) -> None:
    error = load_error(write_csv(tmp_path / "bad.csv", [customer(1, tenure=2.5)]))
    assert [(p.line, p.column) for p in error.problems] == [(2, "tenure")]


def test_infinite_value_is_rejected(tmp_path: Path) -> None:
    rows = [customer(1, MonthlyCharges="inf")]
    error = load_error(write_csv(tmp_path / "bad.csv", rows))
    assert [(p.line, p.column) for p in error.problems] == [(2, "MonthlyCharges")]


def test_blank_total_charges_with_zero_tenure_becomes_schema_value(
    tmp_path: Path,
) -> None:
    # The raw IBM file writes the blank as a single space.
    rows = [customer(1), customer(2, tenure=0, TotalCharges=" ")]
    data = read_csv(write_csv(tmp_path / "ok.csv", rows), "test")
    assert data.frame["TotalCharges"].tolist() == [85.0, BLANK_TOTAL_CHARGES_VALUE]


def test_blank_total_charges_with_positive_tenure_is_an_error(tmp_path: Path) -> None:
    rows = [customer(1), customer(2, tenure=5, TotalCharges=" ")]
    error = load_error(write_csv(tmp_path / "bad.csv", rows))
    assert [(p.line, p.column) for p in error.problems] == [(3, "TotalCharges")]
    assert "tenure is 0" in str(error)


def test_blank_in_other_numeric_column_is_an_error(tmp_path: Path) -> None:
    rows = [customer(1, MonthlyCharges="")]
    error = load_error(write_csv(tmp_path / "bad.csv", rows))
    assert [(p.line, p.column) for p in error.problems] == [(2, "MonthlyCharges")]


def test_unknown_target_is_an_error(tmp_path: Path) -> None:
    error = load_error(write_csv(tmp_path / "bad.csv", [customer(1, Churn="Maybe")]))
    assert [(p.line, p.column) for p in error.problems] == [(2, TARGET_COLUMN)]


def test_all_problems_are_reported_in_line_order(tmp_path: Path) -> None:
    rows = [
        customer(1, tenure="x"),
        customer(2),
        customer(3, gender="Other", MonthlyCharges=-5),
    ]
    error = load_error(write_csv(tmp_path / "bad.csv", rows))
    assert [(p.line, p.column) for p in error.problems] == [
        (2, "tenure"),
        (4, "gender"),
        (4, "MonthlyCharges"),
    ]
    assert error.total == 3


def test_problem_list_is_capped_but_total_is_counted(tmp_path: Path) -> None:
    count = MAX_REPORTED_PROBLEMS + 7
    rows = [customer(i, gender="?") for i in range(1, count + 1)]
    error = load_error(write_csv(tmp_path / "bad.csv", rows))
    assert len(error.problems) == MAX_REPORTED_PROBLEMS
    assert error.total == count
    assert "and 7 more" in str(error)
    assert "\n" not in str(error)


def test_header_only_file_is_an_error(tmp_path: Path) -> None:
    error = load_error(write_csv(tmp_path / "empty.csv", []))
    assert "no data rows" in str(error)


def test_unparseable_file_is_a_read_error(tmp_path: Path) -> None:
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\xff\xfe\x00\x00garbage")
    with pytest.raises(DataReadError, match="not a readable CSV"):
        read_csv(path, str(path))
