"""Load the training table: resolve the source, read the CSV, validate it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from training.download import file_sha256
from training.errors import DataReadError
from training.settings import DataSettings
from training.source import resolve_source
from training.validation import validate_frame


@dataclass(frozen=True)
class TrainingData:
    """A validated training table and where it came from.

    ``frame`` has columns ``FEATURE_ORDER`` + ``Churn`` (0/1) + ``customerID``.
    ``sha256`` is the checksum of the file as read, stored with the models so a
    metric can always be traced to its data.
    """

    frame: pd.DataFrame
    sha256: str
    rows: int
    source: str


def read_csv(path: Path, source: str) -> TrainingData:
    """Read and validate one CSV file."""
    try:
        # Every cell as a string so validation sees exactly what the file says
        # (pandas would otherwise turn " " or "abc" silently into NaN/object).
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataReadError(f"{source}: not a readable CSV file ({e})") from e
    frame = validate_frame(raw, source)
    return TrainingData(
        frame=frame, sha256=file_sha256(path), rows=len(frame), source=source
    )


def load_training_data(
    explicit: Path | None = None, settings: DataSettings | None = None
) -> TrainingData:
    """Load the data by precedence: ``explicit`` > ``CHURN_DATA`` > download."""
    settings = settings if settings is not None else DataSettings()
    source = resolve_source(explicit, settings)
    return read_csv(source.path, source.description)
