"""``python -m training --quick`` saves both variants with their labels and metadata.

Runs the real command in a subprocess so its ``BENTOML_HOME`` is a fresh temp
directory no matter what this test process has already configured (BentoML
caches the home directory on first use).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from churn_features.schema import EXAMPLE_CUSTOMER, FEATURE_ORDER, SCHEMA_VERSION
from training.sample import REPO_ROOT, find_sample_csv

EXPECTED_LABELS = {
    "churn_v1": {"variant": "v1", "algorithm": "random_forest"},
    "churn_v2": {"variant": "v2", "algorithm": "gradient_boosting"},
}


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    sample = find_sample_csv()
    if sample is None:
        pytest.skip("shared sample CSV not found (set CHURN_DATA or ../shared/data)")
    home = tmp_path_factory.mktemp("bentoml_home")
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "True"}
    result = subprocess.run(
        [sys.executable, "-m", "training", "--data", str(sample), "--quick"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return home, sample, result.stdout + result.stderr


def load_store_model(home: Path, name: str) -> Any:
    # An explicit store, not BENTOML_HOME: this process may have cached another.
    from bentoml._internal.models import ModelStore

    return ModelStore(str(home / "models")).get(f"{name}:latest")


def test_cli_shows_progress_and_the_table(trained_home: tuple[Path, Path, str]) -> None:
    _, _, output = trained_home
    assert "v1: fitting on 4800 rows" in output
    assert "roc_auc" in output
    assert "saved v1: churn_v1:" in output
    assert "saved v2: churn_v2:" in output


@pytest.mark.parametrize("name", ["churn_v1", "churn_v2"])
def test_saved_model_has_labels_and_metadata(
    trained_home: tuple[Path, Path, str], name: str
) -> None:
    home, sample, _ = trained_home
    model = load_store_model(home, name)
    info = model.info
    assert dict(info.labels) == EXPECTED_LABELS[name]
    meta = info.metadata
    assert meta["variant"] == EXPECTED_LABELS[name]["variant"]
    assert meta["algorithm"] == EXPECTED_LABELS[name]["algorithm"]
    assert meta["feature_schema_version"] == SCHEMA_VERSION
    assert meta["data_sha256"] == hashlib.sha256(sample.read_bytes()).hexdigest()
    assert isinstance(meta["decision_threshold"], float)
    assert meta["decision_threshold"] == meta["metrics"]["decision_threshold"]
    assert meta["metrics"]["test_rows"] == 1200
    assert 0.5 < meta["metrics"]["roc_auc"] <= 1.0
    assert set(meta["library_versions"]) == {"scikit-learn", "numpy", "python"}
    trained_at = datetime.fromisoformat(meta["trained_at"])
    assert trained_at.utcoffset() == UTC.utcoffset(None)
    assert meta["training_seconds"] > 0
    assert meta["training_profile"] == "quick"


@pytest.mark.parametrize("name", ["churn_v1", "churn_v2"])
def test_saved_pipeline_loads_and_predicts(
    trained_home: tuple[Path, Path, str], name: str
) -> None:
    import bentoml

    home, _, _ = trained_home
    pipeline = bentoml.sklearn.load_model(load_store_model(home, name))
    frame = pd.DataFrame([EXAMPLE_CUSTOMER], columns=list(FEATURE_ORDER))
    probabilities = pipeline.predict_proba(frame)
    assert probabilities.shape == (1, 2)
    assert np.isclose(probabilities.sum(), 1.0)


@pytest.mark.parametrize("name", ["churn_v1", "churn_v2"])
def test_saved_model_carries_its_reference_distributions(
    trained_home: tuple[Path, Path, str], name: str
) -> None:
    from churn_features.reference import (
        REFERENCE_METADATA_KEY,
        ReferenceDistributions,
    )

    home, _, _ = trained_home
    meta = load_store_model(home, name).info.metadata
    reference = ReferenceDistributions.from_metadata(meta[REFERENCE_METADATA_KEY])
    assert reference.rows == meta["metrics"]["training_rows"] == 4800
    assert reference.score_rows == 4800
    assert reference.feature("Contract").categories == (
        "Month-to-month",
        "One year",
        "Two year",
    )
    assert reference.feature("tenure").bins >= 8
    # Concept drift compares labelled windows with these held-out values.
    assert 0.0 < meta["metrics"]["brier_score"] < 0.25
    assert 0.5 < meta["metrics"]["roc_auc"] <= 1.0
