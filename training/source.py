"""Decide which data file to train on: --data, then CHURN_DATA, then download."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from training.download import fetch
from training.errors import DataUnavailableError
from training.settings import DataSettings


@dataclass(frozen=True)
class DataSource:
    """A local file to read and a human description of where it came from."""

    path: Path
    description: str


def resolve_source(explicit: Path | None, settings: DataSettings) -> DataSource:
    """Pick the data file by precedence: explicit path > ``CHURN_DATA`` > download.

    A named file that does not exist is an error rather than a reason to fall
    back to the download: the user asked for that file.
    """
    if explicit is not None:
        return DataSource(_existing(explicit, "--data"), f"--data {explicit}")
    if settings.data is not None:
        return DataSource(
            _existing(settings.data, "CHURN_DATA"), f"CHURN_DATA={settings.data}"
        )
    path = fetch(
        settings.data_url,
        settings.data_sha256,
        settings.cache_dir,
        settings.download_timeout_seconds,
    )
    return DataSource(path, f"download {settings.data_url} (cached at {path})")


def _existing(path: Path, origin: str) -> Path:
    if not path.is_file():
        why = "is a directory" if path.is_dir() else "does not exist"
        raise DataUnavailableError(f"data file {path} (from {origin}) {why}")
    return path
