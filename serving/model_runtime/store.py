"""Find, describe and load the served models in BentoML's model store."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import bentoml

from churn_features.reference import REFERENCE_METADATA_KEY
from serving.model_runtime.scorer import DEFAULT_THRESHOLD, ModelScorer
from serving.settings import SettingsError

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

TRAIN_HINT = "train them with: python -m training --data PATH (or make train)"


def require_models(tags: Iterable[str]) -> None:
    """Stop the start naming each missing tag and how to create it."""
    missing = []
    for tag in tags:
        try:
            bentoml.models.get(tag)
        except bentoml.exceptions.NotFound:
            missing.append(tag)
        except (ValueError, bentoml.exceptions.BentoMLException) as error:
            raise SettingsError(f"invalid model tag {tag!r}: {error}") from None
    if missing:
        raise SettingsError(
            f"model(s) {', '.join(missing)} not found in the BentoML model store "
            f"({_store_path()}); {TRAIN_HINT}"
        )


def _store_path() -> str:
    from bentoml._internal.configuration.containers import BentoMLContainer

    return str(BentoMLContainer.bentoml_home.get())


def load_scorer(model: Any) -> ModelScorer:
    """Load a stored pipeline once per worker and wrap it for fast scoring."""
    pipeline = bentoml.sklearn.load_model(model)
    threshold = float(model.info.metadata.get("decision_threshold", DEFAULT_THRESHOLD))
    return ModelScorer(pipeline, threshold)


def load_pipeline(tag: str) -> Pipeline:
    """The stored scikit-learn pipeline of ``tag`` (the explainers need it)."""
    pipeline: Pipeline = bentoml.sklearn.load_model(tag)
    return pipeline


def resolve_tag(tag: str) -> str:
    """The full tag ``tag`` names in the store now (``latest`` resolved)."""
    return str(bentoml.models.get(tag).tag)


def describe_model(tag: str) -> dict[str, Any]:
    """Tag, algorithm, stored metrics, threshold and the training reference
    distributions (None for a model trained before they were stored), without
    loading the model."""
    model = bentoml.models.get(tag)
    metadata = model.info.metadata
    return {
        "tag": str(model.tag),
        "algorithm": model.info.labels.get("algorithm", "unknown"),
        "variant": model.info.labels.get("variant"),
        "decision_threshold": metadata.get("decision_threshold", DEFAULT_THRESHOLD),
        "metrics": metadata.get("metrics", {}),
        "trained_at": metadata.get("trained_at"),
        "feature_schema_version": metadata.get("feature_schema_version"),
        REFERENCE_METADATA_KEY: metadata.get(REFERENCE_METADATA_KEY),
    }
