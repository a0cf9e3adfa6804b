"""Live statistics of the experiment: the stats view, the report, the gauges.

Everything here reads the ledger's rollups only (issue #12): the epoch's
traffic cells and labelled sums (``Ledger.epoch_rollup``), turned into the
summary by :func:`summarize_sums`. That costs O(variants × buckets) however
many exposures the epoch holds; no exposure row is read and nothing is
counted over the exposures on a request or scrape path. A snapshot is
recomputed whenever the state or the rollups changed (``rollup_signature``,
one small read per call), so a label shows up at once. ROC AUC comes from
4,096-bin score histograms (``auc_method`` = ``"binned_4096"``, within 0.001
of the exact value); the offline report (``python -m ab_router report``)
computes exact values from the rows.

Each variant is judged on its model in force only (:mod:`serving.model_choice`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ab_router.errors import UnknownRequestError
from ab_router.ledger import Ledger
from ab_router.ledger.rollups import EpochRollup
from ab_router.state import ExperimentState
from ab_router.statistics.decision import DecisionConfig
from ab_router.statistics.difference_curve import CumulativeDifference
from ab_router.statistics.experiment import ExperimentSummary, summarize_sums
from ab_router.statistics.labelled_sums import LabelledSums
from ab_router.statistics.traffic_summary import EpochTraffic
from ab_router.traffic import traffic_stats
from serving.interval_history import IntervalHistory
from serving.model_choice import ModelChoice, choose_models
from serving.state_cache import StateCache

# Points of the interval curve kept for the experiment page: enough for a
# smooth line at any screen width, and a page view costs the same at any epoch.
MAX_CURVE_POINTS = 400


@dataclass(frozen=True)
class EpochView:
    """One epoch as the live statistics read it: rollups and models in force."""

    rollup: EpochRollup
    models: ModelChoice
    labelled: Mapping[str, LabelledSums]
    """Per variant, the sums of its model in force (what the statistics use)."""


@dataclass(frozen=True)
class Snapshot:
    key: tuple[object, ...]
    stats: dict[str, Any]
    summary: ExperimentSummary
    curve: CumulativeDifference
    """The challenger − champion interval of past snapshots, bounded."""
    view: EpochView
    computed_at: float
    cost_s: float

    @property
    def traffic(self) -> EpochTraffic:
        return self.view.rollup.traffic


class LiveStatistics:
    def __init__(
        self, ledger: Ledger, state: StateCache, decision_config: DecisionConfig
    ) -> None:
        self.ledger = ledger
        self.state = state
        self.decision_config = decision_config
        self._cached: Snapshot | None = None
        self._lock = threading.Lock()
        self._rollbacks: tuple[tuple[str, int], int] | None = None
        self._history = IntervalHistory(MAX_CURVE_POINTS)

    def current_state(self) -> ExperimentState:
        return self.state.current()

    async def stats(self) -> dict[str, Any]:
        """Traffic view of the current epoch plus its headline statistics."""
        return await asyncio.to_thread(lambda: self.snapshot().stats)

    def quality_summary(self) -> ExperimentSummary:
        """The current epoch's statistics (shared with ``/ab-test/stats``)."""
        return self.snapshot().summary

    def mixed_models(self) -> int:
        """Variants of the current epoch with more than one model (0 = ok)."""
        return len(self.snapshot().view.models.mixed)

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
        snapshot = self.snapshot()
        if chosen == state.epoch and weights == state.effective_weights:
            # The page shows this next to /ab-test/stats: the very same numbers.
            summary, view = snapshot.summary, snapshot.view
        else:
            view = self.epoch_view(name, chosen)
            summary = self.summarize(state, view, weights)
        return {
            "experiment": name,
            "epoch": chosen,
            "current_epoch": state.epoch,
            "weights": weights,
            "summary": summary.to_dict(),
            "models": view.models.models_view(),
            "mixed_models": view.models.mixed_view(),
            "transitions": [asdict(t) for t in transitions],
        }

    def transitions(self) -> list[dict[str, Any]]:
        name = self.state.current().config.name
        return [asdict(t) for t in self.ledger.transitions(name)]

    def canary_rollbacks(self) -> int:
        """Automatic rollbacks recorded for the experiment.

        Every transition bumps the state version, so the transitions are read
        again only when the version moved, not on every scrape.
        """
        state = self.state.current()
        key = (state.config.name, state.version)
        if self._rollbacks is None or self._rollbacks[0] != key:
            count = sum(
                t.kind == "canary_rollback"
                for t in self.ledger.transitions(state.config.name)
            )
            self._rollbacks = (key, count)
        return self._rollbacks[1]

    def snapshot(self) -> Snapshot:
        """Statistics of the current epoch, recomputed whenever they moved.

        The key is the state version and the rollups' signature (one small
        read); a recompute reads the epoch's rollups, O(variants × buckets).
        """
        with self._lock:
            state = self.state.current()
            name = state.config.name
            key = (
                state.version,
                state.epoch,
                *self.ledger.rollup_signature(name, state.epoch),
            )
            if self._cached is not None and self._cached.key == key:
                return self._cached
            started = time.monotonic()
            view = self.epoch_view(name, state.epoch)
            summary = self.summarize(state, view)
            compact = summary.to_dict()
            stats = {
                **traffic_stats(state, view.rollup.traffic, view.rollup.labels),
                "srm": compact["srm"],
                "quality": compact["quality"],
                "decision": compact["decision"],
                "auc_method": summary.auc_method,
                "models": view.models.models_view(),
                "mixed_models": view.models.mixed_view(),
            }
            self._history.add((name, state.epoch, summary.design), summary.sequential)
            finished = time.monotonic()
            self._cached = Snapshot(
                key,
                stats,
                summary,
                self._history.curve(),
                view,
                finished,
                finished - started,
            )
            return self._cached

    def epoch_view(self, experiment: str, epoch: int) -> EpochView:
        """An epoch's rollups and the models judged: a few hundred rows read."""
        rollup = self.ledger.epoch_rollup(experiment, epoch)
        models = choose_models(
            rollup,
            self.ledger.epoch_models(experiment, epoch),
            self.ledger.model_versions(),
        )
        return EpochView(rollup, models, models.labelled(rollup))

    def summarize(
        self,
        state: ExperimentState,
        view: EpochView,
        weights: Mapping[str, float] | None = None,
    ) -> ExperimentSummary:
        champion, challenger = state.config.champion, state.config.challenger
        return summarize_sums(
            view.rollup.traffic,
            view.labelled,
            view.models.paired(view.rollup, champion, challenger),
            state.effective_weights if weights is None else weights,
            self.decision_config,
            champion=champion,
            challenger=challenger,
        )
