"""The request path: assign, score (with fallback), record, count.

Free of BentoML: the service hands in one async scorer per variant (its model
service's batchable API), so this runs the same in tests with real models
loaded in-process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ab_router.assignment import Assignment, assign
from ab_router.errors import LedgerUnavailableError, ModelsUnavailableError
from ab_router.ledger import Ledger
from ab_router.records import Exposure, Mode
from ab_router.state import ExperimentState
from churn_features.encoding import schema_codes
from churn_features.schema import EXAMPLE_CUSTOMER, ID_COLUMN
from serving.breaker import CircuitBreaker
from serving.coalescing import CallCoalescer
from serving.metrics import ServiceMetrics
from serving.request_ids import new_request_ids
from serving.settings import EntrySettings
from serving.state_cache import StateCache

logger = logging.getLogger("churn_ab.predictor")

# One known-good row for readiness probes of a model service.
PROBE_CODES = np.asarray([schema_codes(EXAMPLE_CUSTOMER)], dtype=np.float64)

# A scorer takes an (n, 19) schema-code matrix and returns an (n, 2) matrix of
# [churn probability, prediction at the model's decision threshold].
Scorer = Callable[[NDArray[np.float64]], Awaitable[NDArray[np.float64]]]


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
    ) -> None:
        self.ledger = ledger
        self.state = state
        self.scorers = scorers
        self.settings = settings
        self.metrics = metrics
        self.breakers = {
            variant: CircuitBreaker(
                settings.breaker_failures, settings.breaker_cooldown_s
            )
            for variant in scorers
        }
        self._background: set[asyncio.Task[None]] = set()
        # Requests that finish scoring while a commit runs share the next one.
        self._commits: CallCoalescer[Sequence[Exposure], None] = CallCoalescer(
            self._commit_together, max_in_flight=1
        )

    # -- public --------------------------------------------------------------

    async def predict(
        self, customers: Sequence[Mapping[str, Any]], started: float
    ) -> list[Prediction]:
        """Answer validated customers; every answer is in the ledger first."""
        state = self.state.current()
        config = state.config
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
                self._score_with_fallback(variant, codes[indices])
                for variant, indices in groups.items()
            )
        )
        now = time.time()
        latency_ms = (time.perf_counter() - started) * 1000.0
        predictions: list[Prediction | None] = [None] * len(customers)
        exposures: list[Exposure] = []
        request_ids = iter(new_request_ids(len(customers)))
        for (assigned, indices), (variant, scores) in zip(
            groups.items(), answered, strict=True
        ):
            for row, index in enumerate(indices):
                probability = float(scores[row, 0])
                label = int(scores[row, 1])
                assignment = assignments[index]
                request_id = next(request_ids)
                unit_id = customers[index].get(ID_COLUMN)
                predictions[index] = Prediction(
                    request_id=request_id,
                    model_version=variant,
                    prediction=label,
                    churn_probability=probability,
                    will_churn=bool(label),
                    confidence=probability if label else 1.0 - probability,
                    latency_ms=latency_ms,
                    experiment=config.name,
                    epoch=state.epoch,
                    assigned_variant=assigned,
                    fallback=variant != assigned,
                    assignment_unit=assignment.unit_kind.value,
                )
                exposures.append(
                    Exposure(
                        request_id=request_id,
                        experiment=config.name,
                        epoch=state.epoch,
                        assigned_variant=assigned,
                        variant=variant,
                        unit_kind=assignment.unit_kind,
                        unit_id=unit_id,
                        mode=config.mode,
                        churn_probability=probability,
                        prediction=label,
                        latency_ms=latency_ms,
                        created_at=now,
                        fallback=variant != assigned,
                    )
                )
        try:
            await self._commits.submit(exposures)
        except LedgerUnavailableError:
            self._count_error("ledger")
            raise
        self._count(exposures, latency_ms / 1000.0)
        if config.mode is Mode.SHADOW:
            self._shadow(exposures, codes, config.challenger)
        return [p for p in predictions if p is not None]

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
        """Send one trial row to each variant whose cool-down has passed.

        Without it a breaker closes only on a client request, so a worker a
        load balancer stopped sending to (because it was unready) would stay
        unready forever after the models came back.
        """
        for variant, breaker in self.breakers.items():
            if not breaker.is_open or not breaker.allow():
                continue
            try:
                await self._score(variant, PROBE_CODES)
            except Exception:
                self._breaker_failed(variant, "model_error")
                continue
            breaker.record_success()
            self._set_up(variant, True)

    def models_up(self) -> dict[str, bool]:
        return {v: not b.is_open for v, b in self.breakers.items()}

    # -- scoring -------------------------------------------------------------

    async def _score(
        self, variant: str, codes: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        scores = await asyncio.wait_for(
            self.scorers[variant](codes), timeout=self.settings.model_timeout_s
        )
        return np.asarray(scores, dtype=np.float64).reshape(len(codes), 2)

    async def _score_with_fallback(
        self, assigned: str, codes: NDArray[np.float64]
    ) -> tuple[str, NDArray[np.float64]]:
        order = [assigned, *sorted(v for v in self.scorers if v != assigned)]
        for variant in order:
            breaker = self.breakers[variant]
            if not breaker.allow():
                continue
            try:
                scores = await self._score(variant, codes)
            except TimeoutError:
                self._breaker_failed(variant, "model_timeout")
                continue
            except Exception:
                logger.exception("model service %s failed", variant)
                self._breaker_failed(variant, "model_error")
                continue
            breaker.record_success()
            self._set_up(variant, True)
            return variant, scores
        raise ModelsUnavailableError(
            "no model service could answer: "
            + ", ".join(
                f"{v} ({'circuit open' if b.is_open else 'failed'})"
                for v, b in self.breakers.items()
            )
        )

    def _breaker_failed(self, variant: str, kind: str) -> None:
        self.breakers[variant].record_failure()
        self._count_error(kind)
        self._set_up(variant, not self.breakers[variant].is_open)

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
        if not answered or not self.breakers[challenger].allow():
            return
        try:
            scores = await self._score(challenger, codes[answered])
        except Exception:
            # The champion already answered; a lost shadow score only makes
            # the paired sample smaller, and it is counted.
            logger.warning("shadow scoring by %s failed", challenger, exc_info=True)
            self._breaker_failed(challenger, "model_error")
            return
        self.breakers[challenger].record_success()
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
            self._count_error("ledger")
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

    def _count_error(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.errors.labels(kind).inc()

    def _set_up(self, variant: str, up: bool) -> None:
        if self.metrics is not None:
            self.metrics.model_up.labels(variant).set(1 if up else 0)


def _assign_one(
    unit_id: str | None, state: ExperimentState, weights: Mapping[str, float]
) -> Assignment:
    assignment = assign(unit_id, state.config, weights)
    if state.config.mode is Mode.SHADOW:
        # The champion answers everything; the assignment's unit is kept.
        return Assignment(state.config.champion, assignment.unit_kind, -1)
    return assignment
