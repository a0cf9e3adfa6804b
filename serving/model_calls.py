"""The entry's calls to a model service: one retry, shared in-flight calls."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import numpy as np

from serving.coalescing import coalesced_scorer
from serving.model_router import Scorer
from serving.settings import EntrySettings


def remote_scorer(dependency: Any, settings: EntrySettings) -> Scorer:
    """Score online rows through a model service's adaptive-batching API,
    coalescing concurrent calls."""

    # The dependency's client gets its endpoints only after start-up, so the
    # method is looked up per call rather than bound here.
    async def score(codes: np.ndarray) -> np.ndarray:
        return await _retried(lambda: dependency.to_async.score(codes))

    return coalesced_scorer(
        score,
        max_in_flight=settings.model_calls_in_flight,
        timeout_s=settings.model_timeout_s,
    )


def remote_bulk_scorer(dependency: Any) -> Scorer:
    """Score ``/predict_batch`` rows through the model service's own bulk API.

    Neither coalesced with online calls nor queued behind them: a batch is
    already a batch, and sending it through the adaptive-batching API made
    that API hold single requests back for minutes afterwards (#17).
    """

    async def score(codes: np.ndarray) -> np.ndarray:
        return await _retried(lambda: dependency.to_async.score_batch(codes))

    return score


async def _retried(call: Callable[[], Awaitable[np.ndarray]]) -> np.ndarray:
    try:
        return await call()
    except aiohttp.ClientConnectionError:
        # BentoML recycles pooled connections (every 100 requests); one that
        # the model service closed just as it was reused fails at once.
        # Scoring has no side effects, so one retry is safe.
        return await call()
