"""Score schema-code rows with one trained pipeline, without pandas.

The pipeline's own preprocessor is replaced by the ``FastEncoder`` built from
it, so the estimator sees exactly the columns it was trained on. Tree
ensembles are scored by ``FlatTreeEnsemble`` (exact, ~100× faster than
scikit-learn on the small batches a model service sees; large batches go back
to scikit-learn, which is faster there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from churn_features.encoding import MODEL_STEP, FastEncoder

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

DEFAULT_THRESHOLD = 0.5


class ModelScorer:
    def __init__(self, pipeline: Pipeline, threshold: float = DEFAULT_THRESHOLD):
        # Imported here: flat_trees needs scikit-learn, which only a process
        # that loads a model pays for (not the arbiter, nor a services entry).
        from serving.model_runtime.flat_trees import FlatTreeEnsemble

        self.encoder = FastEncoder.from_pipeline(pipeline)
        self.estimator: Any = pipeline.named_steps[MODEL_STEP]
        if hasattr(self.estimator, "n_jobs"):
            # Batches are small; joblib's thread start-up costs more than it saves.
            self.estimator.n_jobs = 1
        self.threshold = float(threshold)
        self._churn_column = list(self.estimator.classes_).index(1)
        try:
            self._predictor: Any = FlatTreeEnsemble.from_estimator(self.estimator)
        except TypeError:
            self._predictor = self.estimator  # not a supported tree ensemble

    def score(self, codes: NDArray[np.float64]) -> NDArray[np.float64]:
        """``(n, 19)`` codes → ``(n, 2)`` of [churn probability, prediction]."""
        features = self.encoder.encode(codes)
        probability = self._predictor.predict_proba(features)[:, self._churn_column]
        prediction = (probability >= self.threshold).astype(np.float64)
        return np.column_stack([probability, prediction])
