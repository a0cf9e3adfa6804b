"""Predictions: assign, score (through the ModelRouter), record, count.

Free of BentoML: the service hands in one async scorer per variant (its model
service's batchable API), so this runs the same in tests with real models
loaded in-process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ab_router.assignment import Assignment, assign
from ab_router.errors import LedgerUnavailableError
from ab_router.ledger import Ledger
from ab_router.records import Exposure, Mode
from ab_router.state import ExperimentState
from churn_features.encoding import schema_codes
from churn_features.schema import ID_COLUMN
from serving.coalescing import CallCoalescer
from serving.drift_recorder import DriftRecorder
from serving.metrics import ServiceMetrics
from serving.model_router import ModelRouter, Scorer
from serving.request_ids import new_request_ids
from serving.settings import EntrySettings
from serving.state_cache import StateCache

logger = logging.getLogger("churn_ab.predictor")

__all__ = ["Prediction", "Predictor", "Scorer"]


@dataclass(frozen=True)
class _Answered:
    """What every row of one request shares."""

    state: ExperimentState
    latency_ms: float
    created_at: float


@dataclass(frozen=True)
class Prediction:
    request_id: str
    model_version: str
    prediction: int
    churn_probability: float
    will_churn: bool
    confidence: float
    latency_ms: float
    experiment: str
    epoch: int
    assigned_variant: str
    fallback: bool
    assignment_unit: str


class Predictor:
    def __init__(
        self,
        *,
        ledger: Ledger,
        state: StateCache,
        scorers: Mapping[str, Scorer],
        settings: EntrySettings,
        metrics: ServiceMetrics | None = None,
        drift: DriftRecorder | None = None,
    ) -> None:
        self.ledger = ledger
        self.state = state
        self.models = ModelRouter(scorers, settings, metrics)
        self.metrics = metrics
        self.drift = drift
        self._background: set[asyncio.Task[None]] = set()
        # Requests that finish scoring while a commit runs share the next one.
        self._commits: CallCoalescer[Sequence[Exposure], None] = CallCoalescer(
            self._commit_together, max_in_flight=1
        )

    async def predict(
        self, customers: Sequence[Mapping[str, Any]], started: float
    ) -> list[Prediction]:
        """Answer validated customers; every answer is in the ledger first."""
        state = self.state.current()
        weights = state.effective_weights
        assignments = [
            _assign_one(customer.get(ID_COLUMN), state, weights)
            for customer in customers
        ]
        codes = np.asarray(
            [schema_codes(customer) for customer in customers], dtype=np.float64
        )
        groups: dict[str, list[int]] = {}
        for index, assignment in enumerate(assignments):
            groups.setdefault(assignment.variant, []).append(index)
        answered = await asyncio.gather(
            *(
                self.models.score_with_fallback(variant, codes[indices])
                for variant, indices in groups.items()
            )
        )
        shared = _Answered(state, (time.perf_counter() - started) * 1000.0, time.time())
        predictions: list[Prediction | None] = [None] * len(customers)
        exposures: list[Exposure] = []
        request_ids = iter(new_request_ids(len(customers)))
        for (assigned, indices), (variant, scores) in zip(
            groups.items(), answered, strict=True
        ):
            for row, index in enumerate(indices):
                predictions[index], exposure = _answer(
                    shared,
                    next(request_ids),
                    assignments[index],
                    (assigned, variant),
                    scores[row],
                    customers[index].get(ID_COLUMN),
                )
                exposures.append(exposure)
        await self._record(exposures, codes, shared)
        if self.drift is not None:
            # Counted under the variant whose model scored the rows.
            name, epoch = state.config.name, state.epoch
            for indices, (variant, scores) in zip(
                groups.values(), answered, strict=True
            ):
                self.drift.observe(name, epoch, variant, codes[indices], scores[:, 0])
        return [p for p in predictions if p is not None]

    async def _record(
        self,
        exposures: Sequence[Exposure],
        codes: NDArray[np.float64],
        shared: _Answered,
    ) -> None:
        try:
            await self._commits.submit(exposures)
        except LedgerUnavailableError:
            self.models.count_error("ledger")
            raise
        self._count(exposures, shared.latency_ms / 1000.0)
        config = shared.state.config
        if config.mode is Mode.SHADOW:
            self._shadow(exposures, codes, config.challenger)

    async def _commit_together(
        self, requests: Sequence[Sequence[Exposure]]
    ) -> list[None]:
        # One transaction for all: if it fails, every one of these requests
        # fails (503) and none is answered without its record.
        exposures = [e for request in requests for e in request]
        await asyncio.to_thread(self.ledger.record_exposures, exposures)
        return [None] * len(requests)

    async def drain(self) -> None:
        """Wait for background shadow scoring (used at shutdown and in tests)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def probe_open_circuits(self) -> None:
        await self.models.probe_open_circuits()

    def models_up(self) -> dict[str, bool]:
        return self.models.models_up()

    # -- shadow --------------------------------------------------------------

    def _shadow(
        self,
        exposures: Sequence[Exposure],
        codes: NDArray[np.float64],
        challenger: str,
    ) -> None:
        task = asyncio.get_running_loop().create_task(
            self._score_shadow(exposures, codes, challenger)
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _score_shadow(
        self,
        exposures: Sequence[Exposure],
        codes: NDArray[np.float64],
        challenger: str,
    ) -> None:
        answered = [i for i, e in enumerate(exposures) if e.variant != challenger]
        if not answered:
            return
        scores = await self.models.score_shadow(challenger, codes[answered])
        if scores is None:
            return
        updates = [
            (exposures[i].request_id, float(scores[row, 0]), int(scores[row, 1]))
            for row, i in enumerate(answered)
        ]
        try:
            await asyncio.to_thread(
                self.ledger.record_shadow_scores, challenger, updates
            )
        except LedgerUnavailableError:
            logger.exception("shadow scores could not be recorded")
            self.models.count_error("ledger")
            return
        if self.metrics is not None:
            self.metrics.shadow_scores.labels(exposures[0].experiment, challenger).inc(
                len(updates)
            )

    # -- metrics -------------------------------------------------------------

    def _count(self, exposures: Sequence[Exposure], latency_s: float) -> None:
        metrics = self.metrics
        if metrics is None:
            return
        # One increment per label set, not per row: a 10,000-row batch paid
        # 7 us a row for per-row increments.
        answered = Counter(e.variant for e in exposures)
        by_class = Counter((e.variant, str(e.prediction)) for e in exposures)
        assigned = Counter(
            (e.experiment, e.assigned_variant, e.unit_kind.value) for e in exposures
        )
        fallbacks = Counter(
            (e.experiment, e.assigned_variant, e.variant)
            for e in exposures
            if e.fallback
        )
        for variant, n in answered.items():
            metrics.predictions.labels(variant).inc(n)
            # Once per request and answering variant: every row of a batch has
            # the batch's latency, and n copies of it would swamp the /predict
            # latency quantiles that the SLO alert reads.
            metrics.latency.labels(variant).observe(latency_s)
        for class_labels, n in by_class.items():
            metrics.churn_predictions.labels(*class_labels).inc(n)
        for assignment_labels, n in assigned.items():
            metrics.assignments.labels(*assignment_labels).inc(n)
        for fallback_labels, n in fallbacks.items():
            metrics.fallbacks.labels(*fallback_labels).inc(n)


def _assign_one(
    unit_id: str | None, state: ExperimentState, weights: Mapping[str, float]
) -> Assignment:
    assignment = assign(unit_id, state.config, weights)
    if state.config.mode is Mode.SHADOW:
        # The champion answers everything; the assignment's unit is kept.
        return Assignment(state.config.champion, assignment.unit_kind, -1)
    return assignment


def _answer(
    shared: _Answered,
    request_id: str,
    assignment: Assignment,
    variants: tuple[str, str],
    scores: NDArray[np.float64],
    unit_id: str | None,
) -> tuple[Prediction, Exposure]:
    """One row's answer and its ledger record; ``variants`` is (assigned, used)."""
    assigned, variant = variants
    config, epoch = shared.state.config, shared.state.epoch
    probability, label = float(scores[0]), int(scores[1])
    prediction = Prediction(
        request_id=request_id,
        model_version=variant,
        prediction=label,
        churn_probability=probability,
        will_churn=bool(label),
        confidence=probability if label else 1.0 - probability,
        latency_ms=shared.latency_ms,
        experiment=config.name,
        epoch=epoch,
        assigned_variant=assigned,
        fallback=variant != assigned,
        assignment_unit=assignment.unit_kind.value,
    )
    exposure = Exposure(
        request_id=request_id,
        experiment=config.name,
        epoch=epoch,
        assigned_variant=assigned,
        variant=variant,
        unit_kind=assignment.unit_kind,
        unit_id=unit_id,
        mode=config.mode,
        churn_probability=probability,
        prediction=label,
        latency_ms=shared.latency_ms,
        created_at=shared.created_at,
        fallback=variant != assigned,
    )
    return prediction, exposure
