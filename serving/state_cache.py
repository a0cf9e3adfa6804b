"""Each worker's copy of the experiment state, kept fresh from the ledger."""

from __future__ import annotations

import time

from ab_router.ledger import Ledger
from ab_router.state import ExperimentState


class StateCache:
    """The experiment state, re-read when another worker changed it.

    Each worker checks the ledger's version counter at most once per
    ``refresh_s``, so an admin change reaches every worker within that time.
    """

    def __init__(
        self, ledger: Ledger, initial: ExperimentState, refresh_s: float
    ) -> None:
        self._ledger = ledger
        self._state = initial
        self._refresh_s = refresh_s
        self._checked_at = time.monotonic()

    def current(self) -> ExperimentState:
        now = time.monotonic()
        if now - self._checked_at >= self._refresh_s:
            self._checked_at = now
            if self._ledger.state_version(self._state.config.name) != (
                self._state.version
            ):
                self.reload()
        return self._state

    def reload(self) -> ExperimentState:
        config = self._state.config
        self._state = self._ledger.state(config.name, config.known_variants)
        self._checked_at = time.monotonic()
        return self._state
