"""The experiment ledger: every exposure, label and change, shared by all workers.

``Ledger`` is what the service needs from a ledger; ``SqliteLedger`` here and
``PostgresLedger`` (``ab_router.ledger_postgres``, for several hosts) both
implement it with the same semantics. SQLite in WAL mode is the embedded
default. A write returns only after its transaction commits, and WAL with
``synchronous=NORMAL`` survives the writing process being SIGKILLed (the WAL
frames are already in the OS), so an answered request is never lost to a
worker crash. Nothing is ever deleted: a reset starts a new epoch.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from ab_router.config import ExperimentConfig
from ab_router.errors import (
    ConflictingLabelError,
    LedgerUnavailableError,
    UnknownRequestError,
)
from ab_router.ledger_changes import (
    SELECT_SEED,
    Statement,
    change_statements,
    startup_statements,
)
from ab_router.records import Exposure, Mode, Transition, UnitKind
from ab_router.state import ExperimentState
from ab_router.statistics import latency
from ab_router.statistics.exposure_arrays import ExposureArrays
from ab_router.statistics.traffic_summary import EpochTraffic, TrafficKey

_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    seed_config TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    canary_stage INTEGER NOT NULL,
    version INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    weights TEXT NOT NULL,
    created_at REAL NOT NULL,
    actor TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS exposures (
    request_id TEXT PRIMARY KEY,
    experiment TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    assigned_variant TEXT NOT NULL,
    variant TEXT NOT NULL,
    unit_kind TEXT NOT NULL,
    unit_id TEXT,
    mode TEXT NOT NULL,
    churn_probability REAL NOT NULL,
    prediction INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    created_at REAL NOT NULL,
    fallback INTEGER NOT NULL,
    shadow_variant TEXT,
    shadow_probability REAL,
    shadow_prediction INTEGER,
    label INTEGER,
    labelled_at REAL,
    observed_at REAL
);
CREATE INDEX IF NOT EXISTS exposures_by_epoch ON exposures (experiment, epoch);
CREATE INDEX IF NOT EXISTS exposures_by_unit ON exposures (unit_id, created_at);
"""

EXPOSURE_COLUMNS = (
    "request_id, experiment, epoch, assigned_variant, variant, unit_kind, unit_id, "
    "mode, churn_probability, prediction, latency_ms, created_at, fallback, "
    "shadow_variant, shadow_probability, shadow_prediction, label, labelled_at"
)


# The columns the statistics read, in ExposureArrays' order.
ARRAY_COLUMNS = (
    "experiment, epoch, variant, assigned_variant, mode, fallback, "
    "churn_probability, prediction, latency_ms, created_at, label, labelled_at, "
    "shadow_variant, shadow_probability, shadow_prediction"
)
_STRING_COLUMNS = (0, 2, 3, 4, 12)
_INT_COLUMNS = {1: 0, 5: 0, 7: 0, 14: -1}  # column -> value for NULL
_FLOAT_COLUMNS = (6, 8, 9, 10, 11, 13)  # NULL -> NaN


def exposure_column_arrays(
    chunks: Iterable[Sequence[Sequence[object]]], expected_rows: int
) -> ExposureArrays:
    """Fill ExposureArrays from row chunks of ``ARRAY_COLUMNS``."""
    size = max(expected_rows, 0)
    floats = {c: np.full(size, np.nan) for c in _FLOAT_COLUMNS}
    ints = {c: np.full(size, null, dtype=np.int64) for c, null in _INT_COLUMNS.items()}
    codes = {c: np.zeros(size, dtype=np.int64) for c in _STRING_COLUMNS}
    names: dict[int, dict[object, int]] = {c: {} for c in _STRING_COLUMNS}
    filled = 0
    for chunk in chunks:
        n = len(chunk)
        if filled + n > size:  # rows arrived since the count: grow
            grow = filled + n - size
            size += grow
            for arrays, fill in ((floats, np.nan), (codes, 0)):
                for c in arrays:
                    arrays[c] = np.concatenate([arrays[c], np.full(grow, fill)])
            for c, null in _INT_COLUMNS.items():
                ints[c] = np.concatenate([ints[c], np.full(grow, null, np.int64)])
        block = list(zip(*chunk, strict=True)) if chunk else []
        if not block:
            continue
        end = filled + n
        for c in _FLOAT_COLUMNS:
            floats[c][filled:end] = [np.nan if v is None else v for v in block[c]]
        for c, null in _INT_COLUMNS.items():
            ints[c][filled:end] = [null if v is None else v for v in block[c]]
        for c in _STRING_COLUMNS:
            table = names[c]
            codes[c][filled:end] = [table.setdefault(v, len(table)) for v in block[c]]
        filled = end

    def strings(c: int) -> NDArray[np.str_]:
        labels = np.array([str(k or "") for k in names[c]] or [""], dtype=str)
        return labels[codes[c][:filled]]

    return ExposureArrays(
        experiment=strings(0),
        epoch=ints[1][:filled],
        variant=strings(2),
        assigned=strings(3),
        mode=strings(4),
        fallback=ints[5][:filled].astype(bool),
        probability=floats[6][:filled],
        prediction=ints[7][:filled],
        latency_ms=floats[8][:filled],
        created_at=floats[9][:filled],
        label=floats[10][:filled],
        labelled_at=floats[11][:filled],
        shadow_variant=strings(12),
        shadow_probability=floats[13][:filled],
        shadow_prediction=ints[14][:filled],
    )


def _bucket_row(
    experiment: str, epoch: int, r: Sequence[Any]
) -> tuple[TrafficKey, int, int, int, int, float, float]:
    """One row of ``LedgerReads._traffic_sql`` with Python types (PostgreSQL
    answers SUM of a bigint as a Decimal)."""
    variant, assigned, mode, fallback, shadow = r[:5]
    key = TrafficKey(
        experiment, epoch, str(variant), str(assigned), str(mode), bool(fallback),
        str(shadow),
    )  # fmt: skip
    return key, int(r[5]), int(r[6]), int(r[7]), int(r[8]), float(r[9]), float(r[10])


class LabelOutcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class LabelResult:
    request_id: str
    outcome: LabelOutcome


class Ledger(Protocol):
    """The ledger operations the service and the report use.

    Every write commits before it returns; ``change_state`` returns False when
    another process changed the experiment first; labels are idempotent.
    """

    def close(self) -> None: ...

    def ensure_experiment(
        self, config: ExperimentConfig, *, actor: str = "startup"
    ) -> ExperimentState: ...

    def state(
        self, experiment: str, known_variants: frozenset[str]
    ) -> ExperimentState: ...

    def state_version(self, experiment: str) -> int: ...

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
    ) -> bool: ...

    def transitions(self, experiment: str) -> list[Transition]: ...

    def current_weights(self, experiment: str) -> dict[str, float]: ...

    def record_exposures(self, exposures: Sequence[Exposure]) -> None: ...

    def record_shadow_scores(
        self, variant: str, scores: Sequence[tuple[str, float, int]]
    ) -> None: ...

    def exposures(
        self, experiment: str, epoch: int | None = None
    ) -> list[Exposure]: ...

    def exposure_arrays(self, experiment: str, epoch: int) -> ExposureArrays: ...

    def labelled_arrays(self, experiment: str, epoch: int) -> ExposureArrays: ...

    def epoch_traffic(self, experiment: str, epoch: int) -> EpochTraffic: ...

    def count_exposures(self, experiment: str, epoch: int) -> dict[str, int]: ...

    def epoch_counts(self, experiment: str, epoch: int) -> tuple[int, int]: ...

    def epochs(self, experiment: str) -> list[int]: ...

    def label_request(
        self, request_id: str, churned: bool, observed_at: float | None = None
    ) -> LabelResult: ...

    def label_customer(
        self,
        experiment: str,
        customer_id: str,
        churned: bool,
        observed_at: float | None = None,
    ) -> LabelResult: ...


class LedgerReads:
    """Reads both backends share, and the shared half of experiment changes:
    SQL written with ``?`` placeholders.

    A backend provides ``_read(sql, params)`` (translating placeholders if its
    driver needs to), ``_exposure_order``, the ORDER BY that lists exposures
    in the order they were written, and ``_floor_sql``, a template that turns
    a non-negative REAL expression into the integer ``floor`` gives (SQLite's
    CAST truncates, which is the floor there; PostgreSQL's CAST rounds).
    """

    _exposure_order = "created_at"
    _floor_sql = "CAST({} AS INTEGER)"

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        raise NotImplementedError

    def _apply_change(self, update: Statement, transition: Statement) -> bool:
        raise NotImplementedError

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
        can never both roll a canary forward from the same stage. The backend
        runs the conditional update and, only if it matched, the transition,
        in one transaction (``_apply_change``).
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
        return self._apply_change(update, transition)

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
            "SELECT experiment, epoch, kind, reason, weights, created_at, actor "
            "FROM transitions WHERE experiment = ? ORDER BY id",
            (experiment,),
        )
        return [
            Transition(r[0], int(r[1]), r[2], r[3], json.loads(r[4]), r[5], r[6])
            for r in rows
        ]

    def current_weights(self, experiment: str) -> dict[str, float]:
        rows = self._read(
            "SELECT weights FROM transitions WHERE experiment = ? "
            "ORDER BY id DESC LIMIT 1",
            (experiment,),
        )
        return json.loads(rows[0][0]) if rows else {}

    def exposures(self, experiment: str, epoch: int | None = None) -> list[Exposure]:
        if epoch is None:
            rows = self._read(
                f"SELECT {EXPOSURE_COLUMNS} FROM exposures WHERE experiment = ? "
                f"ORDER BY {self._exposure_order}",
                (experiment,),
            )
        else:
            rows = self._read(
                f"SELECT {EXPOSURE_COLUMNS} FROM exposures "
                f"WHERE experiment = ? AND epoch = ? ORDER BY {self._exposure_order}",
                (experiment, epoch),
            )
        return [exposure_from_row(r) for r in rows]

    def exposure_arrays(self, experiment: str, epoch: int) -> ExposureArrays:
        """An epoch's exposures as column arrays, without one object per row.

        Rows are read in chunks straight into preallocated arrays, a few bytes
        per exposure and column: still O(epoch), so the live statistics read
        :meth:`labelled_arrays` and :meth:`epoch_traffic` instead.
        """
        columns = exposure_column_arrays(
            self._read_chunks(
                f"SELECT {ARRAY_COLUMNS} FROM exposures "
                f"WHERE experiment = ? AND epoch = ? ORDER BY {self._exposure_order}",
                (experiment, epoch),
            ),
            expected_rows=self.epoch_counts(experiment, epoch)[0],
        )
        return columns

    def labelled_arrays(self, experiment: str, epoch: int) -> ExposureArrays:
        """Only the labelled exposures of an epoch, as column arrays.

        With :meth:`epoch_traffic` this is all the live statistics read:
        memory O(labels), however much unlabelled traffic the epoch holds.
        """
        return exposure_column_arrays(
            self._read_chunks(
                f"SELECT {ARRAY_COLUMNS} FROM exposures "
                "WHERE experiment = ? AND epoch = ? AND label IS NOT NULL "
                f"ORDER BY {self._exposure_order}",
                (experiment, epoch),
            ),
            expected_rows=self.epoch_counts(experiment, epoch)[1],
        )

    def epoch_traffic(self, experiment: str, epoch: int) -> EpochTraffic:
        """Counts, predicted churn and latency histograms of an epoch by group.

        One GROUP BY in the database: the answer has a row per group and
        latency bucket, never one per exposure. Equal to
        ``EpochTraffic.from_arrays(self.exposure_arrays(...))`` (a test on
        both backends proves it).
        """
        rows = self._read(self._traffic_sql(), (experiment, epoch))
        return EpochTraffic.from_bucket_rows(
            _bucket_row(experiment, epoch, r) for r in rows
        )

    def _traffic_sql(self) -> str:
        # The same IEEE operations as latency.latency_us and bucket_of, so SQL
        # and numpy agree to the microsecond and the bucket.
        ms = (
            "CASE WHEN latency_ms > 0 THEN (CASE WHEN latency_ms < "
            f"{latency.MAX_LATENCY_MS:.1f} THEN latency_ms ELSE "
            f"{latency.MAX_LATENCY_MS:.1f} END) ELSE 0.0 END"
        )
        us = self._floor_sql.format(f"({ms}) * 1000.0 + 0.5")
        bucket = (
            f"CASE WHEN us < {latency.FINE_LIMIT_US} "
            f"THEN us / {latency.FINE_WIDTH_US} "
            f"WHEN us < {latency.COARSE_LIMIT_US} "
            f"THEN {latency.FIRST_COARSE_BUCKET} "
            f"+ (us - {latency.FINE_LIMIT_US}) / {latency.COARSE_WIDTH_US} "
            f"ELSE {latency.OVERFLOW_BUCKET} END"
        )
        # experiment and epoch are fixed by the WHERE: grouping on them too
        # would only lengthen the sort behind the GROUP BY.
        return (
            "SELECT variant, assigned_variant, mode, fallback, shadow, "
            f"{bucket}, COUNT(*), SUM(prediction), SUM(us), "
            "MIN(latency_ms), MAX(latency_ms) FROM ("
            "SELECT variant, assigned_variant, mode, fallback, "
            "CASE WHEN shadow_probability IS NULL THEN '' "
            "ELSE COALESCE(shadow_variant, '') END AS shadow, "
            f"prediction, latency_ms, {us} AS us "
            "FROM exposures WHERE experiment = ? AND epoch = ?"
            ") AS e GROUP BY 1, 2, 3, 4, 5, 6"
        )

    def _read_chunks(self, sql: str, params: Sequence[object]) -> Iterator[list[tuple]]:
        # Backends override this with a streaming cursor; reading all rows at
        # once is the simple, correct default.
        yield self._read(sql, params)

    def count_exposures(self, experiment: str, epoch: int) -> dict[str, int]:
        rows = self._read(
            "SELECT variant, COUNT(*) FROM exposures "
            "WHERE experiment = ? AND epoch = ? GROUP BY variant",
            (experiment, epoch),
        )
        return {variant: int(n) for variant, n in rows}

    def epoch_counts(self, experiment: str, epoch: int) -> tuple[int, int]:
        """(exposures, labels) of an epoch: a cheap change detector."""
        rows = self._read(
            "SELECT COUNT(*), COUNT(label) FROM exposures "
            "WHERE experiment = ? AND epoch = ?",
            (experiment, epoch),
        )
        return int(rows[0][0]), int(rows[0][1])

    def epochs(self, experiment: str) -> list[int]:
        rows = self._read(
            "SELECT DISTINCT epoch FROM transitions WHERE experiment = ? "
            "ORDER BY epoch",
            (experiment,),
        )
        return [int(r[0]) for r in rows]


class SqliteLedger(LedgerReads):
    """One connection per process, guarded by a lock for the thread pool."""

    def __init__(self, path: Path, *, busy_timeout_ms: int = 10_000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._busy_timeout_ms = busy_timeout_ms
        self._connection = self._open_connection()
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()
        self._connection.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        self._enable_wal(busy_timeout_ms / 1000)
        self._connection.execute("PRAGMA synchronous=NORMAL")
        with self._lock:
            self._connection.executescript(_SCHEMA)

    def _open_connection(self) -> sqlite3.Connection:
        return sqlite3.connect(
            self.path,
            timeout=self._busy_timeout_ms / 1000,
            isolation_level=None,  # explicit BEGIN/COMMIT below
            check_same_thread=False,
        )

    def _enable_wal(self, timeout_s: float) -> None:
        # Switching a new file to WAL needs an exclusive lock that SQLite's busy
        # handler does not wait for: workers starting together on a fresh
        # volume can see "database is locked", so retry until the timeout.
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._connection.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise LedgerUnavailableError(
                        f"the experiment ledger {self.path} could not be opened: {exc}"
                    ) from exc
                time.sleep(0.05)

    def close(self) -> None:
        with self._lock:
            self._connection.close()
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()

    # -- transactions --------------------------------------------------------

    def _write(self, statements: Iterable[tuple[str, Sequence[object]]]) -> None:
        """Run statements in one IMMEDIATE transaction and commit."""
        self._write_many(statements)

    def _write_many(
        self,
        statements: Iterable[tuple[str, Sequence[object]]] = (),
        *,
        sql: str | None = None,
        rows: Sequence[Sequence[object]] = (),
    ) -> None:
        """One IMMEDIATE transaction: the statements, then ``sql`` over ``rows``
        with ``executemany`` (a batch is prepared once, not once per row)."""
        with self._lock:
            cursor = self._connection.cursor()
            try:
                cursor.execute("BEGIN IMMEDIATE")
                for statement, params in statements:
                    cursor.execute(statement, params)
                if sql is not None:
                    cursor.executemany(sql, rows)
                cursor.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._connection.in_transaction:
                    self._connection.rollback()
                raise LedgerUnavailableError(
                    f"the experiment ledger could not commit: {exc}"
                ) from exc

    def _read_chunks(
        self, sql: str, params: Sequence[object], size: int = 10_000
    ) -> Iterator[list[tuple]]:
        # A long read runs on a connection of its own: an open SELECT keeps a
        # snapshot, and a connection holding an old snapshot cannot start a
        # write (SQLite answers "database is locked" at once). The soak found
        # that when the chunks shared the writing connection.
        with self._reader_lock:
            if self._reader is None:
                self._reader = self._open_connection()
            try:
                cursor = self._reader.execute(sql, params)
                while rows := cursor.fetchmany(size):
                    yield rows
            except sqlite3.Error as exc:
                raise LedgerUnavailableError(
                    f"the experiment ledger could not be read: {exc}"
                ) from exc

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._connection.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise LedgerUnavailableError(
                    f"the experiment ledger could not be read: {exc}"
                ) from exc

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
        with self._lock:
            cursor = self._connection.cursor()
            try:
                cursor.execute("BEGIN IMMEDIATE")
                row = cursor.execute(SELECT_SEED, (config.name,)).fetchone()
                stored = None if row is None else str(row[0])
                for sql, params in startup_statements(
                    config, stored, actor, time.time()
                ):
                    cursor.execute(sql, params)
                cursor.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._connection.in_transaction:
                    self._connection.rollback()
                raise LedgerUnavailableError(
                    f"the experiment ledger could not be initialised: {exc}"
                ) from exc
        return self.state(config.name, config.known_variants)

    def _apply_change(self, update: Statement, transition: Statement) -> bool:
        with self._lock:
            cursor = self._connection.cursor()
            try:
                cursor.execute("BEGIN IMMEDIATE")
                cursor.execute(*update)
                if cursor.rowcount != 1:
                    cursor.execute("ROLLBACK")
                    return False
                cursor.execute(*transition)
                cursor.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._connection.in_transaction:
                    self._connection.rollback()
                raise LedgerUnavailableError(
                    f"the experiment ledger could not record the change: {exc}"
                ) from exc
        return True

    # -- exposures -----------------------------------------------------------

    def record_exposures(self, exposures: Sequence[Exposure]) -> None:
        """Commit exposures; returns only once they are durable."""
        placeholders = ", ".join("?" * 18)
        sql = f"INSERT INTO exposures ({EXPOSURE_COLUMNS}) VALUES ({placeholders})"
        self._write_many(sql=sql, rows=[exposure_row(e) for e in exposures])

    def record_shadow_scores(
        self, variant: str, scores: Sequence[tuple[str, float, int]]
    ) -> None:
        """Attach the challenger's (request id, probability, prediction)."""
        self._write(
            (
                "UPDATE exposures SET shadow_variant = ?, shadow_probability = ?, "
                "shadow_prediction = ? WHERE request_id = ?",
                (variant, probability, prediction, request_id),
            )
            for request_id, probability, prediction in scores
        )

    # -- feedback ------------------------------------------------------------

    def label_request(
        self, request_id: str, churned: bool, observed_at: float | None = None
    ) -> LabelResult:
        """Join an observed outcome to one exposure, idempotently."""
        return self._label(
            "request_id = ?",
            (request_id,),
            request_id,
            churned,
            observed_at,
            field="request_id",
        )

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
            "ORDER BY created_at DESC LIMIT 1",
            (experiment, customer_id),
        )
        if not rows:
            raise UnknownRequestError(
                f"no exposure recorded for customerID {customer_id!r}",
                field="customerID",
            )
        request_id = rows[0][0]
        return self._label(
            "request_id = ?",
            (request_id,),
            request_id,
            churned,
            observed_at,
            field="customerID",
        )

    def _label(
        self,
        where: str,
        params: tuple[object, ...],
        request_id: str,
        churned: bool,
        observed_at: float | None,
        *,
        field: str,
    ) -> LabelResult:
        label = 1 if churned else 0
        now = time.time()
        with self._lock:
            cursor = self._connection.cursor()
            try:
                cursor.execute("BEGIN IMMEDIATE")
                row = cursor.execute(
                    f"SELECT label FROM exposures WHERE {where}", params
                ).fetchone()
                if row is None:
                    cursor.execute("ROLLBACK")
                    raise UnknownRequestError(
                        f"no exposure recorded for request_id {request_id!r}",
                        field=field,
                    )
                if row[0] is not None:
                    cursor.execute("ROLLBACK")
                    if int(row[0]) == label:
                        return LabelResult(request_id, LabelOutcome.DUPLICATE)
                    raise ConflictingLabelError(
                        f"request {request_id!r} is already labelled "
                        f"churned={bool(row[0])}; refusing churned={churned}",
                        field=field,
                    )
                cursor.execute(
                    f"UPDATE exposures SET label = ?, labelled_at = ?, observed_at = ? "
                    f"WHERE {where}",
                    (label, now, observed_at, *params),
                )
                cursor.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._connection.in_transaction:
                    self._connection.rollback()
                raise LedgerUnavailableError(
                    f"the experiment ledger could not record the label: {exc}"
                ) from exc
        return LabelResult(request_id, LabelOutcome.ACCEPTED)


def exposure_row(e: Exposure) -> tuple[object, ...]:
    return (
        e.request_id,
        e.experiment,
        e.epoch,
        e.assigned_variant,
        e.variant,
        e.unit_kind.value,
        e.unit_id,
        e.mode.value,
        e.churn_probability,
        e.prediction,
        e.latency_ms,
        e.created_at,
        int(e.fallback),
        e.shadow_variant,
        e.shadow_probability,
        e.shadow_prediction,
        e.label,
        e.labelled_at,
    )


def exposure_from_row(r: Sequence[object]) -> Exposure:
    return Exposure(
        request_id=str(r[0]),
        experiment=str(r[1]),
        epoch=int(r[2]),  # type: ignore[call-overload]
        assigned_variant=str(r[3]),
        variant=str(r[4]),
        unit_kind=UnitKind(str(r[5])),
        unit_id=None if r[6] is None else str(r[6]),
        mode=Mode(str(r[7])),
        churn_probability=float(r[8]),  # type: ignore[arg-type]
        prediction=int(r[9]),  # type: ignore[call-overload]
        latency_ms=float(r[10]),  # type: ignore[arg-type]
        created_at=float(r[11]),  # type: ignore[arg-type]
        fallback=bool(r[12]),
        shadow_variant=None if r[13] is None else str(r[13]),
        shadow_probability=None if r[14] is None else float(r[14]),  # type: ignore[arg-type]
        shadow_prediction=None if r[15] is None else int(r[15]),  # type: ignore[call-overload]
        label=None if r[16] is None else int(r[16]),  # type: ignore[call-overload]
        labelled_at=None if r[17] is None else float(r[17]),  # type: ignore[arg-type]
    )
