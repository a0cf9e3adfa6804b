"""Everything the entry service does, behind one object ``service.py`` wires up.

BentoML-free: it gets the model scorers and model descriptions handed in, so
tests can build it around real models loaded in-process.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ab_router.admin import Change
from ab_router.canary import CanaryAction, evaluate_canary
from ab_router.errors import (
    AbRouterError,
    AdminDisabledError,
    LedgerUnavailableError,
    PayloadTooLargeError,
    UnauthorizedError,
    UnknownRequestError,
)
from ab_router.ledger import LabelResult, open_ledger
from ab_router.records import Mode
from ab_router.state import NOT_IN_CANARY, ExperimentState
from ab_router.statistics.experiment import ExperimentSummary, summarize
from ab_router.statistics.exposure_arrays import ExposureArrays
from ab_router.statistics.traffic_summary import EpochTraffic
from ab_router.traffic import traffic_stats
from serving.allocator import release_free_memory
from serving.api_models import (
    BatchResponse,
    FeedbackBatchResult,
    FeedbackItem,
    FeedbackResult,
    PredictionResponse,
)
from serving.metrics import ServiceMetrics
from serving.predictor import Predictor, Scorer, StateCache
from serving.settings import Settings

logger = logging.getLogger("churn_ab.entry")

API_VERSION = "0.1.0"
ENDPOINTS = {
    "POST /predict": "score one customer (A/B routed)",
    "POST /predict_batch": "score many customers, each routed on its own",
    "POST /feedback": "report a true outcome for a request or customer",
    "POST /feedback_batch": "report many outcomes",
    "GET /health": "liveness and model status",
    "GET /models": "served models, their metrics and current weights",
    "GET /ab-test/stats": "per-variant traffic, latency and predicted churn",
    "GET /metrics": "Prometheus metrics",
    "GET /docs": "OpenAPI page (BentoML)",
}


# Statistics cheaper than this are always recomputed when the ledger changed.
CHEAP_STATS_S = 0.05
MAX_STATS_STALENESS_S = 5.0


@dataclass(frozen=True)
class _Snapshot:
    key: tuple[int, ...]
    stats: dict[str, Any]
    summary: ExperimentSummary
    computed_at: float
    cost_s: float


class EntryApp:
    def __init__(
        self,
        settings: Settings,
        scorers: Mapping[str, Scorer],
        model_descriptions: Mapping[str, Mapping[str, Any]],
        *,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.model_descriptions = dict(model_descriptions)
        self.ledger = open_ledger(settings.ledger.url(), settings.ledger.ledger_path)
        initial = self.ledger.ensure_experiment(settings.experiment)
        self.state = StateCache(self.ledger, initial, settings.entry.state_refresh_s)
        self.predictor = Predictor(
            ledger=self.ledger,
            state=self.state,
            scorers=scorers,
            settings=settings.entry,
            metrics=metrics,
        )
        self.started_at = time.time()
        self.decision_config = settings.experiment_settings.decision_config()
        self.canary_policy = settings.experiment_settings.canary_policy()
        self._cached_snapshot: _Snapshot | None = None
        self._snapshot_lock = threading.Lock()
        self._canary_task: asyncio.Task[None] | None = None
        self._canary_checked_at = 0.0

    # -- predictions ---------------------------------------------------------

    async def predict_one(
        self, customer: Mapping[str, Any], started: float
    ) -> PredictionResponse:
        (prediction,) = await self._predict("predict", [customer], started)
        return prediction

    async def predict_batch(
        self, customers: Sequence[Mapping[str, Any]], started: float
    ) -> BatchResponse:
        limit = self.settings.entry.max_batch_customers
        if len(customers) > limit:
            self._count_request("predict_batch", "client_error")
            raise PayloadTooLargeError(
                f"a batch may hold at most {limit} customers, got {len(customers)}",
                field="customers",
            )
        predictions = await self._predict("predict_batch", customers, started)
        return BatchResponse(
            predictions=predictions,
            count=len(predictions),
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )

    async def _predict(
        self, endpoint: str, customers: Sequence[Mapping[str, Any]], started: float
    ) -> list[PredictionResponse]:
        try:
            results = await self.predictor.predict(customers, started)
        except AbRouterError as exc:
            self._count_request(endpoint, _outcome(exc))
            raise
        self._count_request(endpoint, "success")
        self.maybe_evaluate_canary()
        # vars(), not asdict(): the fields are flat, and asdict's deep copy
        # cost 10 us a row of a batch.
        return [PredictionResponse.model_construct(**vars(r)) for r in results]

    # -- feedback ------------------------------------------------------------

    async def feedback(self, item: FeedbackItem) -> FeedbackResult:
        try:
            result = await asyncio.to_thread(self._label, item)
        except AbRouterError as exc:
            self._count_feedback(exc)
            raise
        self._count_feedback_ok(result)
        return FeedbackResult(
            request_id=result.request_id, outcome=result.outcome.value
        )

    async def feedback_batch(
        self, items: Sequence[FeedbackItem]
    ) -> FeedbackBatchResult:
        """Apply labels in order; the first failure stops the batch.

        Its error names ``labels[i]`` and how many were applied before it.
        Labels are idempotent, so resending the whole batch is safe.
        """
        results: list[FeedbackResult] = []
        for index, item in enumerate(items):
            try:
                results.append(await self.feedback(item))
            except AbRouterError as exc:
                exc.field = f"labels[{index}].{exc.field or 'request_id'}"
                exc.message = (
                    f"{exc.message} (labels before index {index} were applied)"
                )
                raise
        accepted = sum(r.outcome == "accepted" for r in results)
        return FeedbackBatchResult(
            results=results, accepted=accepted, duplicate=len(results) - accepted
        )

    def _label(self, item: FeedbackItem) -> LabelResult:
        if item.request_id is not None:
            return self.ledger.label_request(
                item.request_id, item.churned, item.observed_at
            )
        assert item.customerID is not None  # guaranteed by FeedbackItem
        return self.ledger.label_customer(
            self.settings.experiment.name,
            item.customerID,
            item.churned,
            item.observed_at,
        )

    # -- read-only views -----------------------------------------------------

    def index(self) -> dict[str, Any]:
        return {
            "name": "churn-ab",
            "version": API_VERSION,
            "description": "Telecom churn prediction, A/B-tested between two models.",
            "experiment": self.settings.experiment.name,
            "endpoints": ENDPOINTS,
        }

    async def health(self) -> dict[str, Any]:
        await self.predictor.probe_open_circuits()
        up = self.predictor.models_up()
        return {
            "status": "healthy" if any(up.values()) else "degraded",
            "models": {
                variant: {
                    "tag": self.model_descriptions[variant].get("tag"),
                    "loaded": True,
                    "reachable": up.get(variant, False),
                }
                for variant in sorted(self.model_descriptions)
            },
            "uptime_s": round(time.time() - self.started_at, 3),
        }

    async def is_ready(self) -> bool:
        """Ready while at least one variant can answer (probing open circuits)."""
        await self.predictor.probe_open_circuits()
        return any(self.predictor.models_up().values())

    def models(self) -> dict[str, Any]:
        state = self.state.current()
        weights = state.effective_weights
        return {
            "experiment": state.config.name,
            "mode": state.config.mode.value,
            "models": {
                variant: {**description, "weight": weights.get(variant, 0.0)}
                for variant, description in sorted(self.model_descriptions.items())
            },
        }

    def current_state(self) -> ExperimentState:
        return self.state.current()

    async def stats(self) -> dict[str, Any]:
        """Traffic view of the current epoch plus its headline statistics."""
        return await asyncio.to_thread(self._stats)

    def _stats(self) -> dict[str, Any]:
        return self._snapshot().stats

    async def report(self, epoch: int | None) -> dict[str, Any]:
        """Every statistic of one epoch (default: the current one)."""
        return await asyncio.to_thread(self._report, epoch)

    def _report(self, epoch: int | None) -> dict[str, Any]:
        state = self.state.current()
        name = state.config.name
        chosen = state.epoch if epoch is None else epoch
        if chosen not in self.ledger.epochs(name):
            raise UnknownRequestError(f"epoch {chosen} does not exist", field="epoch")
        transitions = [t for t in self.ledger.transitions(name) if t.epoch == chosen]
        weights = transitions[-1].weights if transitions else state.effective_weights
        summary = self._summarize(state, *self._epoch_inputs(name, chosen), weights)
        return {
            "experiment": name,
            "epoch": chosen,
            "current_epoch": state.epoch,
            "weights": weights,
            "summary": summary.to_dict(),
            "transitions": [asdict(t) for t in transitions],
        }

    def transitions(self) -> list[dict[str, Any]]:
        name = self.state.current().config.name
        return [asdict(t) for t in self.ledger.transitions(name)]

    def quality_summary(self) -> ExperimentSummary:
        """The current epoch's statistics (shared with ``/ab-test/stats``)."""
        return self._snapshot().summary

    def _snapshot(self) -> _Snapshot:
        """Statistics of the current epoch, recomputed only when needed.

        Fresh whenever the state or the labels changed. When only exposures
        were added, a computation which took long (a big epoch) is reused for
        up to ten times its own cost, at most ``MAX_STATS_STALENESS_S``:
        under heavy traffic /metrics and /ab-test/stats must not turn into a
        full scan per call, while a label shows up at once.
        """
        with self._snapshot_lock:
            state = self.state.current()
            name = state.config.name
            key = (state.version, *self.ledger.epoch_counts(name, state.epoch))
            cached = self._cached_snapshot
            now = time.monotonic()
            if cached is not None and (
                cached.key == key
                or (
                    # same state version and same labels: only new exposures
                    cached.key[0] == key[0]
                    and cached.key[2] == key[2]
                    and now - cached.computed_at
                    < min(MAX_STATS_STALENESS_S, 10 * cached.cost_s)
                    and cached.cost_s > CHEAP_STATS_S
                )
            ):
                return cached
            labelled, traffic = self._epoch_inputs(name, state.epoch)
            summary = self._summarize(state, labelled, traffic)
            compact = summary.to_dict()
            stats = {
                **traffic_stats(state, traffic, labelled),
                "srm": compact["srm"],
                "quality": compact["quality"],
                "decision": compact["decision"],
            }
            finished = time.monotonic()
            self._cached_snapshot = _Snapshot(
                key, stats, summary, finished, finished - now
            )
            # The recompute's temporaries are gone; hand their pages back
            # rather than let the worker's resident size creep up.
            release_free_memory()
            return self._cached_snapshot

    def _epoch_inputs(
        self, experiment: str, epoch: int
    ) -> tuple[ExposureArrays, EpochTraffic]:
        """What the statistics read of an epoch, bounded by its labels.

        Labels first: exposures and labels are only ever added, so every
        labelled row read is also counted in the traffic read after it.
        """
        labelled = self.ledger.labelled_arrays(experiment, epoch)
        return labelled, self.ledger.epoch_traffic(experiment, epoch)

    def _summarize(
        self,
        state: ExperimentState,
        labelled: ExposureArrays,
        traffic: EpochTraffic,
        weights: Mapping[str, float] | None = None,
    ) -> ExperimentSummary:
        return summarize(
            traffic,
            labelled,
            state.effective_weights if weights is None else weights,
            self.decision_config,
            champion=state.config.champion,
            challenger=state.config.challenger,
        )

    # -- experiment changes --------------------------------------------------

    async def change(
        self,
        make_change: Callable[[ExperimentState], Change],
        *,
        reason: str,
        actor: str,
    ) -> dict[str, Any]:
        return await asyncio.to_thread(self._change, make_change, reason, actor)

    def _change(
        self,
        make_change: Callable[[ExperimentState], Change],
        reason: str,
        actor: str,
    ) -> dict[str, Any]:
        # Optimistic: if another worker changed the experiment in between, the
        # change is recomputed from the fresh state.
        for _ in range(5):
            state = self.state.reload()
            change = make_change(state)
            if self.ledger.change_state(
                state,
                config=change.config,
                canary_stage=change.canary_stage,
                new_epoch=change.new_epoch,
                kind=change.kind,
                reason=reason or change.kind,
                actor=actor,
            ):
                return self.state.reload().to_dict()
        raise LedgerUnavailableError(
            "the experiment kept changing under this request; retry"
        )

    def maybe_evaluate_canary(self) -> None:
        """Judge the canary at most once per refresh interval per worker.

        Runs off the response path; the ledger's version check makes sure
        only one worker acts on a stage.
        """
        state = self.state.current()
        now = time.monotonic()
        if (
            state.config.mode is not Mode.CANARY
            or state.canary_stage == NOT_IN_CANARY
            or self._canary_task is not None
            or now - self._canary_checked_at < self.settings.entry.state_refresh_s
        ):
            return
        self._canary_checked_at = now
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(self._evaluate_canary)
        )
        self._canary_task = task
        task.add_done_callback(self._canary_done)

    def _canary_done(self, task: asyncio.Task[None]) -> None:
        self._canary_task = None
        if not task.cancelled() and task.exception() is not None:
            logger.error("canary evaluation failed", exc_info=task.exception())

    def _evaluate_canary(self) -> None:
        state = self.state.reload()
        if state.config.mode is not Mode.CANARY:
            return
        labelled, traffic = self._epoch_inputs(state.config.name, state.epoch)
        decision = evaluate_canary(state, traffic, labelled, self.canary_policy)
        if decision.action is CanaryAction.HOLD:
            return
        kind = (
            "canary_rollback"
            if decision.action is CanaryAction.ROLLBACK
            else "canary_advance"
        )
        changed = self.ledger.change_state(
            state,
            config=state.config,
            canary_stage=decision.next_stage,
            new_epoch=True,
            kind=kind,
            reason=decision.reason,
            actor="canary",
        )
        if changed:
            logger.warning("canary %s: %s", kind, decision.reason)
            self.state.reload()

    # -- admin ---------------------------------------------------------------

    def authorize(self, authorization: str | None) -> str:
        """Check a bearer token in constant time; returns the actor name."""
        token = self.settings.admin.admin_token
        if token is None:
            raise AdminDisabledError(
                "admin endpoints are disabled: set CHURN_AB_ADMIN_TOKEN to enable them",
                field="Authorization",
            )
        scheme, _, presented = (authorization or "").partition(" ")
        expected = token.get_secret_value().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode(), expected
        ):
            raise UnauthorizedError(
                "a valid 'Authorization: Bearer <token>' header is required",
                field="Authorization",
            )
        return "admin"

    # -- metrics helpers -----------------------------------------------------

    def count_admin(self, outcome: str) -> None:
        self._count_request("admin", outcome)

    def _count_request(self, endpoint: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.requests.labels(endpoint, outcome).inc()

    def _count_feedback_ok(self, result: LabelResult) -> None:
        if self.metrics is not None:
            self.metrics.feedback.labels(result.outcome.value).inc()
            self.metrics.requests.labels("feedback", "success").inc()

    def _count_feedback(self, exc: AbRouterError) -> None:
        if self.metrics is None:
            return
        kind = {404: "unknown_id", 409: "conflict"}.get(exc.status)
        if kind is not None:
            self.metrics.feedback.labels(kind).inc()
        self.metrics.requests.labels("feedback", _outcome(exc)).inc()


def _outcome(exc: AbRouterError) -> str:
    if exc.status == 503:
        return "unavailable"
    return "client_error" if exc.status < 500 else "server_error"
