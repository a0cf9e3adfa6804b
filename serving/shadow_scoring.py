"""Shadow mode: the challenger scores what the champion answered, off the
response path, and its scores join the exposures already in the ledger.

Split from ``serving.predictor`` so the request path (assign, score, record)
reads on its own; a failure here never reaches a caller, it is logged and
counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ab_router.errors import LedgerUnavailableError
from ab_router.ledger import Ledger
from ab_router.records import UNKNOWN_MODEL_ID, Exposure
from serving.metrics import ServiceMetrics
from serving.model_router import ModelRouter

logger = logging.getLogger("churn_ab.predictor")


@dataclass(frozen=True)
class ShadowBatch:
    """One request's answered, recorded rows for the challenger to score."""

    exposures: Sequence[Exposure]
    codes: NDArray[np.float64]
    challenger: str
    bulk: bool


class ShadowScoring:
    """Background challenger scoring for answered, recorded exposures."""

    def __init__(
        self,
        ledger: Ledger,
        models: ModelRouter,
        model_ids: Mapping[str, int],
        metrics: ServiceMetrics | None,
    ) -> None:
        self.ledger = ledger
        self.models = models
        self.model_ids = model_ids
        self.metrics = metrics
        # Held so the tasks are not garbage-collected mid-flight.
        self._background: set[asyncio.Task[None]] = set()

    def start(self, batch: ShadowBatch) -> None:
        """Score ``batch`` with its challenger in a background task."""
        task = asyncio.get_running_loop().create_task(self._score(batch))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for background shadow scoring (used at shutdown and in tests)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def _score(self, batch: ShadowBatch) -> None:
        exposures, challenger = batch.exposures, batch.challenger
        answered = [i for i, e in enumerate(exposures) if e.variant != challenger]
        if not answered:
            return
        scores = await self.models.score_shadow(
            challenger, batch.codes[answered], bulk=batch.bulk
        )
        if scores is None:
            return
        updates = [
            (exposures[i].request_id, float(scores[row, 0]), int(scores[row, 1]))
            for row, i in enumerate(answered)
        ]
        try:
            await asyncio.to_thread(
                self.ledger.record_shadow_scores,
                challenger,
                updates,
                self.model_ids.get(challenger, UNKNOWN_MODEL_ID),
            )
        except LedgerUnavailableError:
            logger.exception("shadow scores could not be recorded")
            self.models.count_error("ledger")
            return
        if self.metrics is not None:
            self.metrics.shadow_scores.labels(exposures[0].experiment, challenger).inc(
                len(updates)
            )
