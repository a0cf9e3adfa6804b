"""Find the shared 6,000-row sample CSV for test fixtures and demos.

The sample is never copied into the repository; it lives next to the checkout
(``../shared/data/``) on developer machines and in CI, or wherever
``CHURN_DATA`` points.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from training.settings import DataSettings

SAMPLE_NAME: Final = "telco-customer-churn.sample.csv"
REPO_ROOT: Final = Path(__file__).resolve().parents[1]
SHARED_SAMPLE: Final = REPO_ROOT.parent / "shared" / "data" / SAMPLE_NAME


def find_sample_csv(settings: DataSettings | None = None) -> Path | None:
    """``CHURN_DATA`` if it names a file, else the shared sample, else ``None``."""
    settings = settings if settings is not None else DataSettings()
    for candidate in (settings.data, SHARED_SAMPLE):
        if candidate is not None and candidate.is_file():
            return candidate
    return None
