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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import ClassVar, TypeVar

from ab_router.config import ExperimentConfig
from ab_router.errors import UnknownRequestError
from ab_router.ledger import archive, migrations, rollups, schema
from ab_router.ledger.changes import (
    SELECT_SEED,
    change_statements,
    epoch_model_statements,
    startup_statements,
)
from ab_router.ledger.codecs import (
    EXPOSURE_COLUMNS,
    TRANSITION_COLUMNS,
    StoredId,
    exposure_from_row,
    exposure_row,
    request_id_of,
    transition_from_row,
)
from ab_router.ledger.cursor import Cursor
from ab_router.ledger.drift_counts import DriftCountsStore
from ab_router.ledger.labels import LabelResult, label_work
from ab_router.ledger.rollups import ROLLUP_COLUMNS, Delta, EpochRollup, RollupRow
from ab_router.ledger.statistics_reads import StatisticsReads
from ab_router.records import (
    UNKNOWN_MODEL_ID,
    EpochModel,
    Exposure,
    ModelVersion,
    Transition,
)
from ab_router.state import ExperimentState

T = TypeVar("T")

_INSERT_EXPOSURE = (
    f"INSERT INTO exposures ({EXPOSURE_COLUMNS}) "
    f"VALUES ({', '.join(['?'] * len(EXPOSURE_COLUMNS.split(',')))})"
)

# Request ids per statement of a shadow batch (SQLite allows 32,766 "?").
_IDS_PER_READ = 500


class Ledger(StatisticsReads, DriftCountsStore):
    """The ledger operations the service and the report use."""

    # Newest exposure first (label_customer): the reverse of _exposure_order.
    _newest_first: ClassVar[str] = "created_at DESC"
    # The clause that locks a row read in a transaction ("" if it is locked).
    _for_update: ClassVar[str] = ""
    _dialect: ClassVar[schema.Dialect] = "sqlite"
    # Two-argument MIN and MAX (the latency bounds of the traffic rollups).
    _least: ClassVar[str] = "MIN"
    _greatest: ClassVar[str] = "MAX"

    @staticmethod
    def _store_id(request_id: str) -> StoredId:
        """A request id as this backend stores it (here: as it is)."""
        return request_id

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

    def _migrate(self, cursor: Cursor) -> int:
        """Create or upgrade the schema (the backend's opening transaction)."""
        return migrations.migrate(cursor, self._dialect, self._rebuild)

    def _write_rollups(self, cursor: Cursor, delta: Delta) -> None:
        rollups.apply(cursor, delta, self._least, self._greatest)

    def _rebuild(self, cursor: Cursor) -> None:
        rollups.rebuild(cursor, self._least, self._greatest)

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
            state,
            config=config,
            canary_stage=canary_stage,
            new_epoch=new_epoch,
            kind=kind,
            reason=reason,
            actor=actor,
            now=now,
        )

        def work(cursor: Cursor) -> bool:
            cursor.execute(*update)
            if cursor.rowcount != 1:
                return False  # nothing written; committing it is harmless
            cursor.execute(*transition)
            if new_epoch or models:
                for sql, params in epoch_model_statements(
                    state, new_epoch, models, actor, now
                ):
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

    # -- exposures -----------------------------------------------------------

    def record_exposures(self, exposures: Sequence[Exposure]) -> None:
        """Commit exposures and their rollups in one transaction; returns once
        they are durable. (``executemany``: a batch is prepared once, and the
        rollups take one upsert per touched key, not one per row.)"""
        rows = [exposure_row(e, self._store_id) for e in exposures]
        if not rows:
            return
        delta = Delta()
        delta.add_rows(RollupRow.of_exposure(e) for e in exposures)

        def work(cursor: Cursor) -> None:
            cursor.executemany(_INSERT_EXPOSURE, rows)
            self._write_rollups(cursor, delta)

        self._transaction(work, "commit")

    def record_shadow_scores(
        self,
        variant: str,
        scores: Sequence[tuple[str, float, int]],
        model_id: int = UNKNOWN_MODEL_ID,
    ) -> None:
        """Attach the challenger's (request id, probability, prediction), scored
        by model version ``model_id``; unknown request ids are skipped.

        The rows are read (and locked) first: a row already labelled adds its
        pair to the paired sums, and a score recorded again replaces the old
        one's contribution.
        """
        if not scores:
            return

        def work(cursor: Cursor) -> None:
            current = self._rows_for_update(cursor, [rid for rid, _, _ in scores])
            delta, updates = Delta(), []
            for rid, p, prediction in scores:
                before = current.get(rid)
                if before is None:
                    continue
                after = before._replace(
                    shadow_variant=variant,
                    shadow_probability=p,
                    shadow_prediction=prediction,
                    shadow_model_id=model_id,
                )
                delta.add_rows([before], -1)
                delta.add_rows([after])
                current[rid] = after
                updates.append((variant, p, prediction, model_id, self._store_id(rid)))
            cursor.executemany(
                "UPDATE exposures SET shadow_variant = ?, shadow_probability = ?, "
                "shadow_prediction = ?, shadow_model_id = ? WHERE request_id = ?",
                updates,
            )
            self._write_rollups(cursor, delta)

        self._transaction(work, "commit")

    def _rows_for_update(
        self, cursor: Cursor, request_ids: Sequence[str]
    ) -> dict[str, RollupRow]:
        # Sorted, so that two batches lock shared rows in the same order.
        ids = sorted(set(request_ids))
        out: dict[str, RollupRow] = {}
        for start in range(0, len(ids), _IDS_PER_READ):
            chunk = ids[start : start + _IDS_PER_READ]
            cursor.execute(
                f"SELECT {ROLLUP_COLUMNS} FROM exposures WHERE request_id IN "
                f"({', '.join('?' * len(chunk))}) ORDER BY request_id"
                f"{self._for_update}",
                [self._store_id(rid) for rid in chunk],
            )
            out.update(
                (request_id_of(r[0]), RollupRow.of(r)) for r in cursor.fetchall()
            )
        return out

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
        return self._label(
            request_id_of(rows[0][0]), churned, observed_at, field="customerID"
        )

    def _label(
        self, request_id: str, churned: bool, observed_at: float | None, *, field: str
    ) -> LabelResult:
        work = label_work(
            request_id,
            churned,
            observed_at,
            field=field,
            for_update=self._for_update,
            write_rollups=self._write_rollups,
            store_id=self._store_id,
        )
        return LabelResult(request_id, self._transaction(work, "record the label"))

    # -- model versions (issue #18) ------------------------------------------

    def register_model_version(self, variant: str, tag: str) -> int:
        """The compact id of ``variant``'s model ``tag``, created on first use.

        Idempotent, and safe when workers and replicas register the same tag
        at once: the (variant, tag) pair is unique, the losers' INSERT does
        nothing, and every caller reads back the one id.
        """
        if not tag:
            raise ValueError("a model tag must not be empty")

        def work(cursor: Cursor) -> int:
            cursor.execute(
                "INSERT INTO model_versions (variant, tag, registered_at) "
                "VALUES (?, ?, ?) ON CONFLICT (variant, tag) DO NOTHING",
                (variant, tag, time.time()),
            )
            cursor.execute(
                "SELECT id FROM model_versions WHERE variant = ? AND tag = ?",
                (variant, tag),
            )
            return int(cursor.fetchone()[0])

        return self._transaction(work, "register the model version")

    def model_versions(self) -> dict[int, ModelVersion]:
        """Every registered model version by id (id 0: unknown before upgrade)."""
        rows = self._read("SELECT id, variant, tag FROM model_versions ORDER BY id")
        return {int(i): ModelVersion(int(i), str(v), str(t)) for i, v, t in rows}

    def record_epoch_models(
        self,
        experiment: str,
        epoch: int,
        models: Mapping[str, int],
        *,
        actor: str,
    ) -> None:
        """Record that ``models`` (variant -> model id) serve ``epoch``.

        Idempotent: a (variant, model) already recorded for the epoch keeps
        its first time and actor. Two models recorded for one variant and
        epoch are the mixed-models condition, for the caller to act on.
        """
        rows = [
            (experiment, epoch, variant, model_id, time.time(), actor)
            for variant, model_id in sorted(models.items())
        ]
        if not rows:
            return
        table = schema.EPOCH_MODELS
        sql = (
            f"INSERT INTO {table.name} ({', '.join(table.key_names)}, recorded_at, "
            f"actor) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
        )
        self._transaction(lambda c: c.executemany(sql, rows), "record the models")

    def epoch_models(self, experiment: str, epoch: int) -> list[EpochModel]:
        """The models recorded for an epoch, in the order they were recorded."""
        rows = self._read(
            "SELECT e.variant, e.model_id, m.tag, e.recorded_at, e.actor "
            "FROM epoch_models e JOIN model_versions m ON m.id = e.model_id "
            "WHERE e.experiment = ? AND e.epoch = ? "
            "ORDER BY e.recorded_at, e.variant, e.model_id",
            (experiment, epoch),
        )
        return [
            EpochModel(experiment, epoch, str(v), int(m), str(t), float(at), str(a))
            for v, m, t, at, a in rows
        ]

    # -- rollups (issue #12) -------------------------------------------------

    def epoch_rollup(self, experiment: str, epoch: int) -> EpochRollup:
        """An epoch's traffic and labelled sums from the rollups alone:
        O(variants × buckets) to read, however many exposures it holds."""
        return rollups.read_epoch(self._read, experiment, epoch)

    def rollup_signature(self, experiment: str, epoch: int) -> tuple[float, ...]:
        """Numbers that change whenever the epoch's rollups change (one cheap
        read): how the live view knows its snapshot is still current."""
        return rollups.signature(self._read, experiment, epoch)

    def verify_rollups(self) -> list[rollups.Mismatch]:
        """Where the rollups differ from a recomputation from every row
        (empty: they agree). Counts must match exactly, float sums within
        ``rollups.REL_TOL``; reads in one transaction, so the two agree on
        which rows exist."""

        def work(cursor: Cursor) -> list[rollups.Mismatch]:
            recomputed = rollups.recompute(cursor)
            fetch = rollups.cursor_fetch(cursor)
            archived = frozenset(
                (str(x), int(e))
                for x, e in fetch("SELECT experiment, epoch FROM archives", ())
            )
            return rollups.compare(rollups.stored(fetch), recomputed, archived)

        return self._transaction(work, "verify the rollups")

    # -- retention (issue #12 item 5) ----------------------------------------

    def archivable_epochs(self, older_than_s: float) -> list[tuple[str, int]]:
        """Closed epochs whose newest exposure is older than ``older_than_s``."""
        return archive.archivable_epochs(self, older_than_s)

    def archive_epoch(
        self, experiment: str, epoch: int, directory: Path
    ) -> archive.ArchivedEpoch:
        """Move an epoch's rows to a checked file (``ledger.archive``)."""
        return archive.archive_epoch(self, experiment, epoch, directory)

    def restore_archive(self, path: Path) -> archive.ArchivedEpoch:
        """Put an archived epoch's rows back."""
        return archive.restore_archive(self, path)

    def rebuild_rollups(self) -> None:
        """Recompute every rollup from the rows (one transaction); archived
        epochs keep theirs."""
        self._transaction(self._rebuild, "rebuild the rollups")
