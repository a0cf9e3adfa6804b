"""Session fixtures shared by every test layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.bento_server import train_models
from training.sample import find_sample_csv
from training.train import TrainingReport, train_and_save


def _sample() -> Path:
    sample = find_sample_csv()
    assert sample is not None, "set CHURN_DATA or provide ../shared/data"
    return sample


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary BENTOML_HOME holding quick-trained churn_v1 and churn_v2."""
    home = tmp_path_factory.mktemp("bentoml-home")
    train_models(home, quick=True)
    return home


# Trained once per run and shared by every layer: several modules read the
# same models, and training them again per module cost about a minute.
@pytest.fixture(scope="session")
def full_report() -> TrainingReport:
    """Both models in the full training profile, as served (not saved)."""
    return train_and_save(_sample(), save=False)


@pytest.fixture(scope="session")
def quick_report() -> TrainingReport:
    """Both models in the quick profile, seed 42 (not saved)."""
    return train_and_save(_sample(), quick=True, save=False)
