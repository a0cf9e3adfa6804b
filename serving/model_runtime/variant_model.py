"""One variant's model with its two ways in: online batches and bulk rows.

``score`` is what the adaptive-batching API of a model service calls: the
single requests BentoML's dispatcher gathered into one batch. ``score_batch``
is for rows that already arrived as a batch (``/predict_batch``): they must
not pass through that dispatcher, whose learned wait they inflate for minutes
(issue #17, docs/performance.md). They are scored in chunks, handing the
event loop back between chunks so online requests are not held behind a
whole 10,000-row batch.

In the ``inline`` placement the entry worker scores itself, on one thread per
model (``executor``): a model that hangs then holds only its thread, and the
caller's timeout still fires on the event loop, so the other variant answers.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from serving.metrics import ModelServiceMetrics

ONLINE_API = "score"
BULK_API = "score_batch"


class RowScorer(Protocol):
    """``(n, 19)`` schema codes → ``(n, 2)`` (``ModelScorer`` is one)."""

    def score(self, codes: NDArray[np.float64]) -> NDArray[np.float64]: ...


class VariantModel:
    def __init__(
        self,
        variant: str,
        scorer: RowScorer,
        *,
        chunk_rows: int,
        metrics: ModelServiceMetrics | None = None,
        executor: Executor | None = None,
    ) -> None:
        if chunk_rows < 1:
            raise ValueError("chunk_rows must be at least 1")
        self.variant = variant
        self.scorer = scorer
        self.chunk_rows = chunk_rows
        self.metrics = metrics
        self.executor = executor
        if metrics is not None:
            for api in (ONLINE_API, BULK_API):
                metrics.rows.labels(variant, api)  # exported at 0 from the start

    def score(self, codes: NDArray[np.float64]) -> NDArray[np.float64]:
        """Scores of one online batch, counted as one adaptive batch."""
        started = time.perf_counter()
        scores = self.scorer.score(codes)
        metrics = self.metrics
        if metrics is not None:
            metrics.batch_size.labels(self.variant).observe(len(codes))
            metrics.inference_seconds.labels(self.variant).observe(
                time.perf_counter() - started
            )
            metrics.rows.labels(self.variant, ONLINE_API).inc(len(codes))
        return scores

    async def score_on_thread(self, codes: NDArray[np.float64]) -> NDArray[np.float64]:
        """``score`` on the model's own thread (requires an ``executor``)."""
        if self.executor is None:
            raise RuntimeError(f"{self.variant}: no executor to score on")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self.score, codes)

    async def score_batch(self, codes: NDArray[np.float64]) -> NDArray[np.float64]:
        """Scores of bulk rows, ``chunk_rows`` at a time, yielding in between."""
        parts = []
        loop = asyncio.get_running_loop()
        for start in range(0, len(codes), self.chunk_rows):
            chunk = codes[start : start + self.chunk_rows]
            if self.executor is not None:
                parts.append(
                    await loop.run_in_executor(self.executor, self.scorer.score, chunk)
                )
                continue
            if start:
                await asyncio.sleep(0)  # let waiting online requests run
            parts.append(self.scorer.score(chunk))
        if self.metrics is not None:
            self.metrics.rows.labels(self.variant, BULK_API).inc(len(codes))
        if not parts:
            return np.empty((0, 2), dtype=np.float64)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
