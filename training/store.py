"""Save a trained variant to the BentoML model store (``$BENTOML_HOME``)."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Any

import numpy as np
import sklearn
from sklearn.pipeline import Pipeline

from churn_features.reference import REFERENCE_METADATA_KEY, ReferenceDistributions
from churn_features.schema import FEATURE_ORDER, SCHEMA_VERSION
from training.evaluation import Evaluation
from training.pipelines import Profile, Variant


@dataclass(frozen=True)
class TrainedModel:
    """A fitted variant with everything its store entry records."""

    variant: Variant
    pipeline: Pipeline
    evaluation: Evaluation
    profile: Profile
    seed: int
    trained_at: str
    training_seconds: float
    reference: ReferenceDistributions


def model_metadata(model: TrainedModel) -> dict[str, Any]:
    """The metadata stored with the model.

    BentoML accepts only plain values (str, int, float, bool, lists, dicts,
    dates); ``None`` is rejected, so every entry here is always set. The
    timestamp is an ISO-8601 string rather than a datetime so it reads back the
    same from the YAML store on every BentoML version.
    """
    return {
        "variant": model.variant.variant,
        "algorithm": model.variant.algorithm,
        "metrics": model.evaluation.as_metadata(),
        "decision_threshold": float(model.evaluation.decision_threshold),
        "feature_schema_version": SCHEMA_VERSION,
        "feature_order": list(FEATURE_ORDER),
        "library_versions": {
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "trained_at": model.trained_at,
        "training_seconds": round(float(model.training_seconds), 3),
        "data_sha256": model.evaluation.data_sha256,
        # The service may refuse quick-profile models outside tests.
        "training_profile": model.profile.value,
        "seed": model.seed,
        # Drift detection compares live requests and scores with these.
        REFERENCE_METADATA_KEY: model.reference.to_metadata(),
    }


def save_to_store(model: TrainedModel) -> str:
    """Save under ``churn_v1``/``churn_v2`` with variant/algorithm labels.

    Returns the new tag as ``name:version``. BentoML is imported here so that
    ``--no-save`` runs and the rest of the package never pay for it.
    """
    import bentoml

    saved = bentoml.sklearn.save_model(
        model.variant.model_name,
        model.pipeline,
        # The service batches customers and calls predict_proba.
        signatures={
            "predict_proba": {"batchable": True, "batch_dim": 0},
            "predict": {"batchable": True, "batch_dim": 0},
        },
        labels=model.variant.labels(),
        metadata=model_metadata(model),
    )
    return str(saved.tag)
