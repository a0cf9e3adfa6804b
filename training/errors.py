"""Typed errors for training: each names the source, row or column it is about.

The CLI prints ``str(error)`` as one line and exits non-zero, so messages must
be complete on their own (no traceback is shown for these).
"""

from __future__ import annotations

from dataclasses import dataclass


class TrainingError(Exception):
    """Base class for the errors the CLI reports without a traceback."""


class DataUnavailableError(TrainingError):
    """No data file could be found or downloaded."""


class ChecksumMismatchError(DataUnavailableError):
    """A downloaded file's sha256 differs from the expected one."""

    def __init__(self, url: str, expected: str, actual: str) -> None:
        self.url = url
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"download from {url} has sha256 {actual}, expected {expected}; "
            "the file was not kept (check CHURN_DATA_URL / CHURN_DATA_SHA256, "
            "or pass --data PATH)"
        )


class DataReadError(TrainingError):
    """The file is not a CSV that pandas can parse (wrong format or encoding)."""


@dataclass(frozen=True)
class DataProblem:
    """One problem in the CSV.

    ``line`` is the 1-based line of the CSV file with the header as line 1, so
    the first customer is line 2 (what an editor shows).
    """

    line: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column!r}: {self.message}"


class DataValidationError(TrainingError):
    """The CSV does not match ``churn_features.schema``.

    ``problems`` holds up to the validator's cap; ``total`` counts all of them.
    """

    def __init__(self, source: str, problems: list[DataProblem], total: int) -> None:
        self.source = source
        self.problems = tuple(problems)
        self.total = total
        shown = "; ".join(str(p) for p in self.problems)
        more = total - len(self.problems)
        suffix = f"; ... and {more} more" if more > 0 else ""
        super().__init__(
            f"{source}: {total} problem(s) in the data (line numbers count the "
            f"header as line 1): {shown}{suffix}"
        )
