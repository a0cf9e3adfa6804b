"""Judge a running canary now and then, off the response path."""

from __future__ import annotations

import asyncio
import logging
import time

from ab_router.admin import Change
from ab_router.canary import CanaryAction, CanaryPolicy, evaluate_canary
from ab_router.ledger import Ledger
from ab_router.records import Mode
from ab_router.state import NOT_IN_CANARY
from serving.live_statistics import LiveStatistics
from serving.state_cache import StateCache

logger = logging.getLogger("churn_ab.canary")


class CanaryScheduler:
    def __init__(
        self,
        ledger: Ledger,
        state: StateCache,
        statistics: LiveStatistics,
        policy: CanaryPolicy,
        interval_s: float,
    ) -> None:
        self.ledger = ledger
        self.state = state
        self.statistics = statistics
        self.policy = policy
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._checked_at = 0.0

    def maybe_evaluate(self) -> None:
        """Judge the canary at most once per interval per worker.

        Runs off the response path; the ledger's version check makes sure
        only one worker acts on a stage.
        """
        state = self.state.current()
        now = time.monotonic()
        if (
            state.config.mode is not Mode.CANARY
            or state.canary_stage == NOT_IN_CANARY
            or self._task is not None
            or now - self._checked_at < self.interval_s
        ):
            return
        self._checked_at = now
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(self.evaluate))
        self._task = task
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._task = None
        if not task.cancelled() and task.exception() is not None:
            logger.error("canary evaluation failed", exc_info=task.exception())

    def evaluate(self) -> None:
        state = self.state.reload()
        if state.config.mode is not Mode.CANARY:
            return
        # The rollups of the stage's epoch: O(variants × buckets) per check.
        view = self.statistics.epoch_view(state.config.name, state.epoch)
        decision = evaluate_canary(
            state, view.rollup.traffic, view.labelled, self.policy
        )
        if decision.action is CanaryAction.HOLD:
            return
        kind = (
            "canary_rollback"
            if decision.action is CanaryAction.ROLLBACK
            else "canary_advance"
        )
        changed = self.ledger.change_state(
            state,
            Change(state.config, decision.next_stage, kind),
            reason=decision.reason,
            actor="canary",
        )
        if changed:
            logger.warning("canary %s: %s", kind, decision.reason)
            self.state.reload()
