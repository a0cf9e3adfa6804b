"""Calls to the model services: timeouts, circuit breakers, fallback, probes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

import numpy as np
from numpy.typing import NDArray

from ab_router.errors import ModelsUnavailableError
from churn_features.encoding import schema_codes
from churn_features.schema import EXAMPLE_CUSTOMER
from serving.breaker import CircuitBreaker
from serving.metrics import ServiceMetrics
from serving.settings import EntrySettings

logger = logging.getLogger("churn_ab.models")

# One known-good row for readiness probes of a model service.
PROBE_CODES = np.asarray([schema_codes(EXAMPLE_CUSTOMER)], dtype=np.float64)

# A scorer takes an (n, 19) schema-code matrix and returns an (n, 2) matrix of
# [churn probability, prediction at the model's decision threshold].
Scorer = Callable[[NDArray[np.float64]], Awaitable[NDArray[np.float64]]]


class ModelRouter:
    """Scores through each variant's scorers, with breakers and fallback.

    ``scorers`` take online rows (``/predict``); ``bulk_scorers``, when given,
    take the rows of a ``/predict_batch``, so they can bypass the online
    batching queue (#17). One breaker per variant covers both.
    """

    def __init__(
        self,
        scorers: Mapping[str, Scorer],
        settings: EntrySettings,
        metrics: ServiceMetrics | None = None,
        bulk_scorers: Mapping[str, Scorer] | None = None,
    ) -> None:
        self.scorers = scorers
        self.bulk_scorers = scorers if bulk_scorers is None else bulk_scorers
        if set(self.bulk_scorers) != set(scorers):
            raise ValueError("bulk_scorers must cover the same variants as scorers")
        self.timeout_s = settings.model_timeout_s
        self.metrics = metrics
        self.breakers = {
            variant: CircuitBreaker(
                settings.breaker_failures, settings.breaker_cooldown_s
            )
            for variant in scorers
        }

    async def score_with_fallback(
        self, assigned: str, codes: NDArray[np.float64], *, bulk: bool = False
    ) -> tuple[str, NDArray[np.float64]]:
        """The assigned variant's scores, else the first other that answers."""
        order = [assigned, *sorted(v for v in self.scorers if v != assigned)]
        for variant in order:
            if not self.breakers[variant].allow():
                continue
            try:
                scores = await self._score(variant, codes, bulk=bulk)
            except TimeoutError:
                self._failed(variant, "model_timeout")
                continue
            except Exception:
                logger.exception("model service %s failed", variant)
                self._failed(variant, "model_error")
                continue
            self._succeeded(variant)
            return variant, scores
        raise ModelsUnavailableError(
            "no model service could answer: "
            + ", ".join(
                f"{v} ({'circuit open' if b.is_open else 'failed'})"
                for v, b in self.breakers.items()
            )
        )

    async def score_shadow(
        self, variant: str, codes: NDArray[np.float64], *, bulk: bool = False
    ) -> NDArray[np.float64] | None:
        """Scores for a shadow comparison, or None when the variant is down."""
        if not self.breakers[variant].allow():
            return None
        try:
            scores = await self._score(variant, codes, bulk=bulk)
        except Exception:
            # The champion already answered; a lost shadow score only makes
            # the paired sample smaller, and it is counted.
            logger.warning("shadow scoring by %s failed", variant, exc_info=True)
            self._failed(variant, "model_error")
            return None
        self.breakers[variant].record_success()
        return scores

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
                self._failed(variant, "model_error")
                continue
            self._succeeded(variant)

    def models_up(self) -> dict[str, bool]:
        return {v: not b.is_open for v, b in self.breakers.items()}

    async def _score(
        self, variant: str, codes: NDArray[np.float64], *, bulk: bool = False
    ) -> NDArray[np.float64]:
        scorer = (self.bulk_scorers if bulk else self.scorers)[variant]
        scores = await asyncio.wait_for(scorer(codes), timeout=self.timeout_s)
        return np.asarray(scores, dtype=np.float64).reshape(len(codes), 2)

    def _failed(self, variant: str, kind: str) -> None:
        self.breakers[variant].record_failure()
        self.count_error(kind)
        self._set_up(variant, not self.breakers[variant].is_open)

    def _succeeded(self, variant: str) -> None:
        self.breakers[variant].record_success()
        self._set_up(variant, True)

    def count_error(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.errors.labels(kind).inc()

    def _set_up(self, variant: str, up: bool) -> None:
        if self.metrics is not None:
            self.metrics.model_up.labels(variant).set(1 if up else 0)
