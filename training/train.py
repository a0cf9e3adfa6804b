"""Train, evaluate and (optionally) save both variants: the one call fixtures use."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sklearn.model_selection import train_test_split

from churn_features.schema import FEATURE_ORDER, TARGET_COLUMN
from training.data import TrainingData, load_training_data
from training.evaluation import Evaluation, evaluate
from training.pipelines import VARIANTS, Profile, Variant, build_pipeline
from training.reference import training_reference
from training.settings import DataSettings
from training.store import TrainedModel, save_to_store
from training.threshold import out_of_fold_probabilities, rate_matching_threshold

logger = logging.getLogger(__name__)

TEST_FRACTION = 0.2
FOLDS = {Profile.FULL: 5, Profile.QUICK: 3}


@dataclass(frozen=True)
class TrainingReport:
    """What one training run produced.

    ``tags`` maps variant ("v1"/"v2") to the saved BentoML tag; it is empty
    when saving was turned off.
    """

    source: str
    data_sha256: str
    rows: int
    profile: Profile
    seed: int
    models: tuple[TrainedModel, ...]
    tags: dict[str, str]
    total_seconds: float

    def evaluations(self) -> dict[str, Evaluation]:
        """Per-variant held-out metrics, keyed "v1", "v2"."""
        return {m.variant.variant: m.evaluation for m in self.models}

    def model(self, variant: str) -> TrainedModel:
        """The trained model for "v1" or "v2"."""
        for model in self.models:
            if model.variant.variant == variant:
                return model
        raise KeyError(f"no trained model for variant {variant!r}")


class _Stopwatch:
    """Logs stage lines with the time since the run started."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def stage(self, message: str) -> None:
        logger.info("[%6.1fs] %s", self.elapsed(), message)


def split_indices(
    target: NDArray[np.int64], seed: int
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Row positions of the training and the held-out test split (stratified)."""
    train_index, test_index = train_test_split(
        np.arange(target.size),
        test_size=TEST_FRACTION,
        stratify=target,
        random_state=seed,
    )
    return np.asarray(train_index), np.asarray(test_index)


def train_variant(
    variant: Variant,
    data: TrainingData,
    *,
    profile: Profile,
    seed: int,
    clock: _Stopwatch,
) -> TrainedModel:
    """Fit one variant on the training split, pick its threshold, score the test."""
    frame = data.frame
    target = frame[TARGET_COLUMN].to_numpy(dtype=np.int64)
    train_index, test_index = split_indices(target, seed)
    features = frame[list(FEATURE_ORDER)]
    x_train, y_train = features.iloc[train_index], target[train_index]
    x_test, y_test = features.iloc[test_index], target[test_index]

    started = time.perf_counter()
    pipeline = build_pipeline(variant, profile, seed)
    folds = FOLDS[profile]
    clock.stage(f"{variant.variant}: {folds}-fold out-of-fold predictions")
    oof = out_of_fold_probabilities(pipeline, x_train, y_train, folds, seed)
    threshold = rate_matching_threshold(oof, float(y_train.mean()))
    reference = training_reference(x_train, oof)
    clock.stage(f"{variant.variant}: fitting on {len(x_train)} rows")
    pipeline.fit(x_train, y_train)
    training_seconds = time.perf_counter() - started
    trained_at = datetime.now(UTC).isoformat(timespec="seconds")

    probabilities = pipeline.predict_proba(x_test)[:, 1]
    evaluation = evaluate(
        y_test,
        probabilities,
        decision_threshold=threshold,
        training_rows=len(x_train),
        data_sha256=data.sha256,
    )
    clock.stage(
        f"{variant.variant}: test ROC AUC {evaluation.roc_auc:.4f}, threshold "
        f"{threshold:.3f}, predicted positive rate "
        f"{evaluation.predicted_positive_rate:.3f} (base {evaluation.base_rate:.3f})"
    )
    return TrainedModel(
        variant=variant,
        pipeline=pipeline,
        evaluation=evaluation,
        profile=profile,
        seed=seed,
        trained_at=trained_at,
        training_seconds=training_seconds,
        reference=reference,
    )


def train_and_save(
    data: Path | None,
    *,
    quick: bool = False,
    save: bool = True,
    seed: int = 42,
    settings: DataSettings | None = None,
) -> TrainingReport:
    """Load the data, train v1 and v2, evaluate them, save them unless ``save=False``.

    ``data`` overrides ``CHURN_DATA`` and the download (see ``DataSettings``).
    Saving goes to BentoML's store under ``$BENTOML_HOME``. Raises
    ``TrainingError`` subclasses for data problems.
    """
    clock = _Stopwatch()
    profile = Profile.QUICK if quick else Profile.FULL
    clock.stage("loading data")
    loaded = load_training_data(data, settings)
    clock.stage(f"loaded {loaded.rows} rows from {loaded.source}")
    models = tuple(
        train_variant(v, loaded, profile=profile, seed=seed, clock=clock)
        for v in VARIANTS
    )
    tags: dict[str, str] = {}
    if save:
        for model in models:
            tags[model.variant.variant] = save_to_store(model)
            clock.stage(f"saved {tags[model.variant.variant]}")
    return TrainingReport(
        source=loaded.source,
        data_sha256=loaded.sha256,
        rows=loaded.rows,
        profile=profile,
        seed=seed,
        models=models,
        tags=tags,
        total_seconds=clock.elapsed(),
    )
