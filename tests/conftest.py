"""Session fixtures shared by every test layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.bento_server import train_models


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary BENTOML_HOME holding quick-trained churn_v1 and churn_v2."""
    home = tmp_path_factory.mktemp("bentoml-home")
    train_models(home, quick=True)
    return home
