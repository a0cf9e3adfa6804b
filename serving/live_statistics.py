"""Live statistics of the experiment: the stats view, the report, the gauges.

Everything here reads the ledger through its bounded, mergeable reads, and
caches what a scrape or a stats call would otherwise recompute.
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
from ab_router.state import ExperimentState
from ab_router.statistics.decision import DecisionConfig
from ab_router.statistics.difference_curve import (
    CumulativeDifference,
    cumulative_brier_difference,
)
from ab_router.statistics.experiment import ExperimentSummary, summarize
from ab_router.statistics.exposure_arrays import ExposureArrays
from ab_router.statistics.traffic_summary import EpochTraffic
from ab_router.traffic import traffic_stats
from serving.allocator import release_free_memory
from serving.state_cache import StateCache

# Statistics cheaper than this are always recomputed when the ledger changed.
CHEAP_STATS_S = 0.05
MAX_STATS_STALENESS_S = 5.0
# Points of the interval curve kept for the experiment page: enough for a
# smooth line at any screen width, and a page view costs the same at any epoch.
MAX_CURVE_POINTS = 400


@dataclass(frozen=True)
class Snapshot:
    key: tuple[int, ...]
    stats: dict[str, Any]
    summary: ExperimentSummary
    curve: CumulativeDifference
    """The challenger − champion confidence sequence, thinned."""
    computed_at: float
    cost_s: float


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

    def current_state(self) -> ExperimentState:
        return self.state.current()

    async def stats(self) -> dict[str, Any]:
        """Traffic view of the current epoch plus its headline statistics."""
        return await asyncio.to_thread(lambda: self.snapshot().stats)

    def quality_summary(self) -> ExperimentSummary:
        """The current epoch's statistics (shared with ``/ab-test/stats``)."""
        return self.snapshot().summary

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
        summary = self.summarize(state, *self.epoch_inputs(name, chosen), weights)
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
        """Statistics of the current epoch, recomputed only when needed.

        Fresh whenever the state or the labels changed. When only exposures
        were added, a computation which took long (a big epoch) is reused for
        up to ten times its own cost, at most ``MAX_STATS_STALENESS_S``:
        under heavy traffic /metrics and /ab-test/stats must not turn into a
        full scan per call, while a label shows up at once.
        """
        with self._lock:
            state = self.state.current()
            name = state.config.name
            key = (state.version, *self.ledger.epoch_counts(name, state.epoch))
            now = time.monotonic()
            if self._cached is not None and _still_fresh(self._cached, key, now):
                return self._cached
            labelled, traffic = self.epoch_inputs(name, state.epoch)
            summary = self.summarize(state, labelled, traffic)
            compact = summary.to_dict()
            stats = {
                **traffic_stats(state, traffic, labelled),
                "srm": compact["srm"],
                "quality": compact["quality"],
                "decision": compact["decision"],
            }
            curve = self._curve(state, labelled, summary)
            finished = time.monotonic()
            self._cached = Snapshot(
                key, stats, summary, curve, finished, finished - now
            )
            # The recompute's temporaries are gone; hand their pages back
            # rather than let the worker's resident size creep up.
            release_free_memory()
            return self._cached

    def _curve(
        self,
        state: ExperimentState,
        labelled: ExposureArrays,
        summary: ExperimentSummary,
    ) -> CumulativeDifference:
        """The experiment page's curve, from the labelled rows read just now.

        Running sums over rows already in memory: O(labels) once per
        recompute, like the summary itself, and never per page view.
        """
        curve = cumulative_brier_difference(
            labelled,
            self.decision_config,
            design=summary.design,
            champion=state.config.champion,
            challenger=state.config.challenger,
        )
        return curve.thinned(MAX_CURVE_POINTS)

    def epoch_inputs(
        self, experiment: str, epoch: int
    ) -> tuple[ExposureArrays, EpochTraffic]:
        """What the statistics read of an epoch, bounded by its labels.

        Labels first: exposures and labels are only ever added, so every
        labelled row read is also counted in the traffic read after it.
        """
        labelled = self.ledger.labelled_arrays(experiment, epoch)
        return labelled, self.ledger.epoch_traffic(experiment, epoch)

    def summarize(
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


def _still_fresh(cached: Snapshot, key: tuple[int, ...], now: float) -> bool:
    if cached.key == key:
        return True
    # Same state version and same labels: only new exposures were added.
    return (
        cached.key[0] == key[0]
        and cached.key[2] == key[2]
        and now - cached.computed_at < min(MAX_STATS_STALENESS_S, 10 * cached.cost_s)
        and cached.cost_s > CHEAP_STATS_S
    )
