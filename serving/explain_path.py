"""``POST /explain``: per-feature SHAP contributions for one customer.

The body is the ``/predict`` customer, validated by the same model, so bad
input gets the same 4xx. Which variants answer is a query parameter
(``?variants=all``), not a body field: the customer body rejects unknown
fields, and a wrapper object would make ``/explain`` take a different body
from ``/predict``. Without it the variant the customer is assigned to
answers (the sticky hash for a ``customerID``, a fresh draw otherwise; the
champion in shadow mode, as for ``/predict``).

An explanation is not an exposure: nothing is written to the ledger and no
prediction metric moves. Explainers are built on the first ``/explain`` a
worker serves, not at start: importing shap costs seconds (numba, llvmlite),
which every worker start would otherwise pay whether or not anyone asks.
For the same reason ``serving.explanations`` (scikit-learn) is imported only
when the first explainer is built.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ab_router.assignment import assign
from ab_router.errors import AbRouterError
from ab_router.records import Mode
from churn_features.encoding import schema_codes
from churn_features.schema import ID_COLUMN
from serving.api_models import ExplainResponse, VariantExplanation
from serving.http_errors import InvalidQueryError
from serving.metrics import ServiceMetrics
from serving.state_cache import StateCache

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from serving.explanations import TreeExplanations

# Loads a variant's fitted pipeline by model tag (the BentoML store in service.py).
PipelineLoader = Callable[[str], "Pipeline"]
# How many features each answer lists in ``top_towards_churn``.
TOP_FEATURES = 5


class VariantsChoice(StrEnum):
    ASSIGNED = "assigned"
    ALL = "all"


class ExplanationsUnavailableError(AbRouterError):
    """The optional ``explain`` extra (shap) is not installed in this image."""

    status = 501
    code = "explanations_unavailable"


def no_pipelines(tag: str) -> Pipeline:
    """The loader of an entry built without access to the model store."""
    raise ExplanationsUnavailableError(
        f"this entry cannot load model {tag} to explain it"
    )


def parse_variants(value: str | None) -> VariantsChoice:
    """The ``variants`` query parameter; names it when it is not understood."""
    if value is None:
        return VariantsChoice.ASSIGNED
    try:
        return VariantsChoice(value)
    except ValueError:
        raise InvalidQueryError(
            f"variants must be 'assigned' or 'all', got {value!r}", field="variants"
        ) from None


class ExplanationPath:
    def __init__(
        self,
        state: StateCache,
        tags: Mapping[str, str],
        load: PipelineLoader,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.state = state
        self.metrics = metrics
        self.tags = dict(tags)
        self._load = load
        self._explainers: dict[str, TreeExplanations] = {}
        self._lock = threading.Lock()

    async def explain(
        self, customer: Mapping[str, Any], variants: VariantsChoice
    ) -> ExplainResponse:
        try:
            answer = await self._explain(customer, variants)
        except AbRouterError as exc:
            self._count("client_error" if exc.status < 500 else "server_error")
            raise
        except Exception:
            self._count("server_error")
            raise
        self._count("success")
        return answer

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.requests.labels("explain", outcome).inc()

    async def _explain(
        self, customer: Mapping[str, Any], variants: VariantsChoice
    ) -> ExplainResponse:
        state = self.state.current()
        config = state.config
        assigned = assign(customer.get(ID_COLUMN), config, state.effective_weights)
        variant = config.champion if config.mode is Mode.SHADOW else assigned.variant
        chosen = sorted(self.tags) if variants is VariantsChoice.ALL else [variant]
        codes = np.asarray([schema_codes(customer)], dtype=np.float64)
        # Off the event loop: the forest's Tree SHAP takes milliseconds.
        answers = await asyncio.to_thread(
            lambda: [self._explain_one(v, codes) for v in chosen]
        )
        return ExplainResponse(
            experiment=config.name,
            epoch=state.epoch,
            assigned_variant=variant,
            explanations=answers,
        )

    def _explain_one(
        self, variant: str, codes: NDArray[np.float64]
    ) -> VariantExplanation:
        (explanation,) = self.explainer(variant).explain(codes)
        ranked = [name for name, value in explanation.ranked() if value > 0]
        return VariantExplanation(
            variant=variant,
            model_tag=self.tags[variant],
            space=explanation.space.value,
            base_value=explanation.base_value,
            contributions=explanation.contributions,
            output=explanation.output,
            churn_probability=explanation.probability,
            top_towards_churn=ranked[:TOP_FEATURES],
        )

    def explainer(self, variant: str) -> TreeExplanations:
        """The variant's explainer, built once per worker on first use."""
        from serving.explanations import TreeExplanations  # see the module docstring

        with self._lock:
            if variant not in self._explainers:
                pipeline = self._load(self.tags[variant])
                try:
                    self._explainers[variant] = TreeExplanations(pipeline)
                except ImportError as exc:
                    raise ExplanationsUnavailableError(
                        "explanations need the 'explain' extra (shap): "
                        "pip install 'churn-ab[explain]'"
                    ) from exc
            return self._explainers[variant]
