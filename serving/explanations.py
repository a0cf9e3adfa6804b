"""Per-prediction explanations: SHAP values of each input feature, exact.

``shap.TreeExplainer`` (path-dependent Tree SHAP, Lundberg et al. 2020,
"From local explanations to global understanding with explainable AI for
trees", Nature Machine Intelligence 2:56–67) computes exact Shapley values for
tree ensembles in the space the trees add up in:

* v1, random forest: the forest averages its trees' leaf class shares, so the
  explained output is the **probability** of churn itself;
* v2, gradient boosting: the stages add up raw scores, so the explained output
  is the **log-odds** of churn; the probability is ``sigmoid(log_odds)``.
  Explaining the probability instead would need SHAP's interventional mode
  with a background sample: slower, and additive only against that sample.

In both, ``base_value + Σ contributions == output`` to rounding (checked on
every row of the sample to 1e-6, and on every call: an explanation that did
not add up would be a bug, not an answer). shap walks scikit-learn trees with
float32 inputs, as scikit-learn does, so values next to a split follow the
served branch (a test pins this). The model sees one-hot columns; a
feature's contribution is the sum over its columns, so the 19 contributions
line up with the request's 19 fields.

The explainer is built once per worker from the loaded pipeline; ``shap`` is
the optional ``explain`` extra, imported only when an explainer is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.pipeline import Pipeline

from churn_features.encoding import MODEL_STEP, FastEncoder
from churn_features.schema import FEATURE_ORDER
from serving.model_runtime.flat_trees import FlatTreeEnsemble

#: How far base + contributions may sit from the model output before the
#: explanation is refused; exact Tree SHAP is off by ~1e-15.
ADDITIVITY_TOLERANCE: Final = 1e-6


class OutputSpace(StrEnum):
    """What the contributions add up to."""

    PROBABILITY = "probability"
    LOG_ODDS = "log_odds"


class ExplanationError(RuntimeError):
    """An explanation whose parts do not add up to the model output."""


@dataclass(frozen=True)
class Explanation:
    """One customer's explanation.

    ``contributions`` maps each of the 19 features (``FEATURE_ORDER``) to its
    share of ``output - base_value`` in ``space``; positive pushes towards
    churn. ``output`` is the model output in ``space`` and ``probability`` the
    churn probability the model gives (equal to ``output`` for probability).
    """

    space: OutputSpace
    base_value: float
    contributions: dict[str, float]
    output: float
    probability: float

    def ranked(self) -> list[tuple[str, float]]:
        """Features from the strongest push towards churn to the strongest away."""
        return sorted(self.contributions.items(), key=lambda kv: kv[1], reverse=True)


def feature_grouping(encoder: FastEncoder) -> NDArray[np.float64]:
    """``(width, 19)`` 0/1 matrix: model column -> the input feature it came from.

    Column SHAP values times this matrix sum each feature's one-hot columns.
    """
    grouping = np.zeros((encoder.width, len(FEATURE_ORDER)), dtype=np.float64)
    for position, lookup in zip(
        encoder.category_inputs, encoder.category_columns, strict=True
    ):
        grouping[lookup[lookup >= 0], position] = 1.0
    grouping[encoder.numeric_outputs, encoder.numeric_inputs] = 1.0
    if not np.array_equal(grouping.sum(axis=1), np.ones(encoder.width)):
        raise ValueError("every model column must come from exactly one feature")
    return grouping


class TreeExplanations:
    """Exact per-feature SHAP explanations for one fitted churn pipeline."""

    def __init__(self, pipeline: Pipeline) -> None:
        import shap  # the optional "explain" extra; see the module docstring

        self._encoder = FastEncoder.from_pipeline(pipeline)
        self._grouping = feature_grouping(self._encoder)
        model = pipeline.named_steps[MODEL_STEP]
        if isinstance(model, RandomForestClassifier):
            self.space = OutputSpace.PROBABILITY
        elif isinstance(model, GradientBoostingClassifier):
            self.space = OutputSpace.LOG_ODDS
        else:
            raise TypeError(f"no exact explainer for {type(model).__name__}")
        self._model: Any = model
        # The probability /predict serves, from the same flat trees, and ~100×
        # faster than the forest's own predict_proba on one row.
        self._scorer = FlatTreeEnsemble.from_estimator(model)
        self._explainer = shap.TreeExplainer(model)
        self._positive = list(model.classes_).index(1)

    @property
    def base_value(self) -> float:
        expected = np.ravel(self._explainer.expected_value)
        # Forests have one expected value per class, boosting one log-odds.
        return float(expected[self._positive] if expected.size > 1 else expected[0])

    def explain(self, codes: ArrayLike) -> list[Explanation]:
        """Explain each ``(n, 19)`` schema-code row (``churn_features.encoding``)."""
        features = self._encoder.encode(np.asarray(codes, dtype=np.float64))
        # Our own check below is the additivity check; shap's would re-predict.
        values = np.asarray(
            self._explainer.shap_values(features, check_additivity=False)
        )
        if values.ndim == 3:  # (rows, columns, classes) for the forest
            values = values[:, :, self._positive]
        contributions = values @ self._grouping
        probability = self._scorer.predict_proba(features)[:, self._positive]
        if self.space is OutputSpace.PROBABILITY:
            output = probability
        else:
            output = np.asarray(self._model.decision_function(features)).ravel()
        base = self.base_value
        gap = np.abs(base + contributions.sum(axis=1) - output)
        if gap.size and float(gap.max()) > ADDITIVITY_TOLERANCE:
            raise ExplanationError(
                f"SHAP contributions miss the {self.space.value} output by "
                f"{float(gap.max()):.2e}"
            )
        return [
            Explanation(
                space=self.space,
                base_value=base,
                contributions=dict(zip(FEATURE_ORDER, map(float, row), strict=True)),
                output=float(out),
                probability=float(p),
            )
            for row, out, p in zip(contributions, output, probability, strict=True)
        ]
