"""The experiment's state and its history of changes, in the ledger.

``ensure_experiment`` creates the experiment or keeps its stored state;
``change_state`` applies an admin or canary change only if nobody changed the
experiment meanwhile (it returns False when another process did); the reads
give the state, its version, the transitions and the epochs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

from ab_router.admin import Change
from ab_router.config import ExperimentConfig
from ab_router.errors import UnknownRequestError
from ab_router.ledger.changes import (
    SELECT_SEED,
    change_statements,
    epoch_model_statements,
    startup_statements,
)
from ab_router.ledger.codecs import TRANSITION_COLUMNS, transition_from_row
from ab_router.ledger.cursor import Cursor
from ab_router.ledger.hooks import LedgerHooks
from ab_router.records import Transition
from ab_router.state import ExperimentState


class ExperimentStore(LedgerHooks):
    """The experiment-state part of ``Ledger``."""

    def ensure_experiment(
        self, config: ExperimentConfig, *, actor: str = "startup"
    ) -> ExperimentState:
        """Create the experiment, or keep its stored state across restarts.

        Runtime changes (admin API) survive a restart. If the configuration
        the service starts with differs from the one the stored state was
        seeded from, the operator changed it deliberately: it is applied and
        recorded as a transition.
        """

        def work(cursor: Cursor) -> None:
            self._lock_for_startup(cursor)
            cursor.execute(SELECT_SEED + self._for_update, (config.name,))
            row = cursor.fetchone()
            stored = None if row is None else str(row[0])
            for sql, params in startup_statements(config, stored, actor, time.time()):
                cursor.execute(sql, params)

        self._transaction(work, "be initialised")
        return self.state(config.name, config.known_variants)

    def change_state(
        self,
        state: ExperimentState,
        change: Change,
        *,
        reason: str,
        actor: str,
        models: Mapping[str, int] | None = None,
    ) -> bool:
        """Apply a change if nobody else changed the experiment meanwhile.

        Returns False when another worker changed it first (its version moved
        on): the caller re-reads the state and decides again, so two workers
        never both roll a canary forward from the same stage. The conditional
        UPDATE is the check; a concurrent one waits for the writer lock
        (SQLite) or the row (PostgreSQL), then finds the version moved on.

        A new epoch is served by ``models`` (variant -> model id) if given,
        else by the models of the epoch it follows: recorded in the same
        transaction, so whoever reads the new epoch reads its models too
        (a start-up deciding whether the models changed must not see an
        epoch without them).
        """
        now = time.time()
        update, transition = change_statements(
            state, change, reason=reason, actor=actor, now=now
        )
        follow_up = [transition]
        if change.new_epoch or models:
            follow_up += epoch_model_statements(
                state, change.new_epoch, models, actor, now
            )

        def work(cursor: Cursor) -> bool:
            cursor.execute(*update)
            if cursor.rowcount != 1:
                return False  # nothing written; committing it is harmless
            for sql, params in follow_up:
                cursor.execute(sql, params)
            return True

        return self._transaction(work, "record the change")

    def state(self, experiment: str, known_variants: frozenset[str]) -> ExperimentState:
        rows = self._read(
            "SELECT config, epoch, canary_stage, version, updated_at "
            "FROM experiments WHERE name = ?",
            (experiment,),
        )
        if not rows:
            raise UnknownRequestError(
                f"experiment {experiment!r} does not exist", field="experiment"
            )
        config_json, epoch, stage, version, updated_at = rows[0]
        config = ExperimentConfig.from_dict(json.loads(config_json), known_variants)
        return ExperimentState(config, int(epoch), int(stage), int(version), updated_at)

    def state_version(self, experiment: str) -> int:
        """A cheap read workers poll to notice changes made by other workers."""
        rows = self._read(
            "SELECT version FROM experiments WHERE name = ?", (experiment,)
        )
        return int(rows[0][0]) if rows else 0

    def transitions(self, experiment: str) -> list[Transition]:
        rows = self._read(
            f"SELECT {TRANSITION_COLUMNS} "
            "FROM transitions WHERE experiment = ? ORDER BY id",
            (experiment,),
        )
        return [transition_from_row(r) for r in rows]

    def current_weights(self, experiment: str) -> dict[str, float]:
        rows = self._read(
            "SELECT weights FROM transitions WHERE experiment = ? "
            "ORDER BY id DESC LIMIT 1",
            (experiment,),
        )
        return json.loads(rows[0][0]) if rows else {}

    def epochs(self, experiment: str) -> list[int]:
        rows = self._read(
            "SELECT DISTINCT epoch FROM transitions WHERE experiment = ? "
            "ORDER BY epoch",
            (experiment,),
        )
        return [int(r[0]) for r in rows]
