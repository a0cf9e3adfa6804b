"""``Ledger``: every operation of the experiment ledger, written once.

A backend (``SqliteLedger``, ``PostgresLedger``) supplies only what differs:
its connection (``_read``, ``_read_chunks``, ``close``), its transaction
(``_transaction``: run a body, commit, or roll back and raise) and its
locking (``_lock_for_startup``, ``_for_update``), plus the ORDER BY and floor
templates of :class:`StatisticsReads`. Every write commits before it
returns; ``change_state`` returns False when another process changed the
experiment first; labels are idempotent.
"""

from __future__ import annotations

import json
import time
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import ClassVar, TypeVar

from ab_router.config import ExperimentConfig
from ab_router.errors import UnknownRequestError
from ab_router.ledger.changes import SELECT_SEED, change_statements, startup_statements
from ab_router.ledger.codecs import (
    EXPOSURE_COLUMNS,
    TRANSITION_COLUMNS,
    exposure_from_row,
    exposure_row,
    transition_from_row,
)
from ab_router.ledger.cursor import Cursor
from ab_router.ledger.drift_counts import DriftCountsStore
from ab_router.ledger.labels import LabelResult, label_work
from ab_router.ledger.statistics_reads import StatisticsReads
from ab_router.records import Exposure, Transition
from ab_router.state import ExperimentState

T = TypeVar("T")

_INSERT_EXPOSURE = (
    f"INSERT INTO exposures ({EXPOSURE_COLUMNS}) "
    f"VALUES ({', '.join(['?'] * len(EXPOSURE_COLUMNS.split(',')))})"
)


class Ledger(StatisticsReads, DriftCountsStore):
    """The ledger operations the service and the report use."""

    # Newest exposure first (label_customer): the reverse of _exposure_order.
    _newest_first: ClassVar[str] = "created_at DESC"
    # The clause that locks a row read in a transaction ("" if it is locked).
    _for_update: ClassVar[str] = ""

    @abstractmethod
    def close(self) -> None:
        """Release the connections."""

    @abstractmethod
    def _transaction(self, work: Callable[[Cursor], T], purpose: str) -> T:
        """Run ``work`` in one transaction and commit; on any error roll back.

        A database error is raised as ``LedgerUnavailableError`` naming
        ``purpose`` ("the experiment ledger could not <purpose>").
        """

    def _lock_for_startup(self, cursor: Cursor) -> None:
        """Serialise start-up between processes (here: the transaction does)."""

    # -- experiment state ----------------------------------------------------

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
        *,
        config: ExperimentConfig,
        canary_stage: int,
        new_epoch: bool,
        kind: str,
        reason: str,
        actor: str,
    ) -> bool:
        """Apply a change if nobody else changed the experiment meanwhile.

        Returns False when another worker changed it first (its version moved
        on): the caller re-reads the state and decides again, so two workers
        never both roll a canary forward from the same stage. The conditional
        UPDATE is the check; a concurrent one waits for the writer lock
        (SQLite) or the row (PostgreSQL), then finds the version moved on.
        """
        update, transition = change_statements(
            state,
            config=config,
            canary_stage=canary_stage,
            new_epoch=new_epoch,
            kind=kind,
            reason=reason,
            actor=actor,
            now=time.time(),
        )

        def work(cursor: Cursor) -> bool:
            cursor.execute(*update)
            if cursor.rowcount != 1:
                return False  # nothing written; committing it is harmless
            cursor.execute(*transition)
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

    # -- exposures -----------------------------------------------------------

    def record_exposures(self, exposures: Sequence[Exposure]) -> None:
        """Commit exposures in one transaction; returns once they are durable.
        (``executemany``: a batch is prepared once, not once per row.)"""
        rows = [exposure_row(e) for e in exposures]
        if rows:
            self._transaction(lambda c: c.executemany(_INSERT_EXPOSURE, rows), "commit")

    def record_shadow_scores(
        self, variant: str, scores: Sequence[tuple[str, float, int]]
    ) -> None:
        """Attach the challenger's (request id, probability, prediction)."""
        rows = [(variant, p, prediction, rid) for rid, p, prediction in scores]
        sql = (
            "UPDATE exposures SET shadow_variant = ?, shadow_probability = ?, "
            "shadow_prediction = ? WHERE request_id = ?"
        )
        if rows:
            self._transaction(lambda c: c.executemany(sql, rows), "commit")

    def exposures(self, experiment: str, epoch: int | None = None) -> list[Exposure]:
        params: tuple[object, ...]
        where, params = "experiment = ?", (experiment,)
        if epoch is not None:
            where, params = "experiment = ? AND epoch = ?", (experiment, epoch)
        rows = self._read(
            f"SELECT {EXPOSURE_COLUMNS} FROM exposures "
            f"WHERE {where} ORDER BY {self._exposure_order}",
            params,
        )
        return [exposure_from_row(r) for r in rows]

    def epochs(self, experiment: str) -> list[int]:
        rows = self._read(
            "SELECT DISTINCT epoch FROM transitions WHERE experiment = ? "
            "ORDER BY epoch",
            (experiment,),
        )
        return [int(r[0]) for r in rows]

    # -- feedback ------------------------------------------------------------

    def label_request(
        self, request_id: str, churned: bool, observed_at: float | None = None
    ) -> LabelResult:
        """Join an observed outcome to one exposure, idempotently."""
        return self._label(request_id, churned, observed_at, field="request_id")

    def label_customer(
        self,
        experiment: str,
        customer_id: str,
        churned: bool,
        observed_at: float | None = None,
    ) -> LabelResult:
        """Label the customer's latest exposure in the experiment.

        A customer's outcome is one fact; it is joined to the most recent
        exposure, so each customer counts once in the statistics.
        """
        rows = self._read(
            "SELECT request_id FROM exposures WHERE experiment = ? AND unit_id = ? "
            f"ORDER BY {self._newest_first} LIMIT 1",
            (experiment, customer_id),
        )
        if not rows:
            raise UnknownRequestError(
                f"no exposure recorded for customerID {customer_id!r}",
                field="customerID",
            )
        return self._label(str(rows[0][0]), churned, observed_at, field="customerID")

    def _label(
        self, request_id: str, churned: bool, observed_at: float | None, *, field: str
    ) -> LabelResult:
        work = label_work(
            request_id, churned, observed_at, field=field, for_update=self._for_update
        )
        return LabelResult(request_id, self._transaction(work, "record the label"))
