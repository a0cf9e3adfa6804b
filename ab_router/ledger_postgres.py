"""The experiment ledger on PostgreSQL, for several hosts sharing one experiment.

Same operations and semantics as ``SqliteLedger``: every write commits before
it returns, labels are idempotent, a state change applies only if nobody
changed the experiment meanwhile. What SQLite gets from its single writer lock
is done here with row locks: the version check is a conditional ``UPDATE``
(a concurrent one waits for the first to commit, then re-checks and finds the
version moved on) and a label reads its row ``FOR UPDATE``. Creating the
schema and the experiment row take a transaction-scoped advisory lock, so
processes starting together do not trip over each other.

Each process holds one connection, guarded by a lock for the thread pool. A
connection the server dropped (restart, failover, idle timeout) is replaced
once per operation, but only if the failure came before the commit was sent:
a commit whose outcome is unknown is reported, never repeated.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg

from ab_router.config import ExperimentConfig
from ab_router.errors import (
    ConflictingLabelError,
    LedgerUnavailableError,
    UnknownRequestError,
)
from ab_router.ledger import (
    EXPOSURE_COLUMNS,
    LabelOutcome,
    LabelResult,
    LedgerReads,
    exposure_row,
)
from ab_router.ledger_changes import (
    SELECT_SEED,
    Statement,
    startup_statements,
)
from ab_router.records import Exposure
from ab_router.state import ExperimentState

T = TypeVar("T")

# Arbitrary but fixed: every churn-ab process serialises schema creation and
# experiment creation on this key (pg_advisory_xact_lock takes a bigint).
_ADVISORY_KEY = 0x636875726E6162  # "churnab"

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS experiments (
        name TEXT PRIMARY KEY,
        config TEXT NOT NULL,
        seed_config TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        canary_stage INTEGER NOT NULL,
        version BIGINT NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS transitions (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        experiment TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        kind TEXT NOT NULL,
        reason TEXT NOT NULL,
        weights TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        actor TEXT NOT NULL
    )
    """,
    # seq breaks ties of created_at in insertion order, as SQLite's rowid does.
    """
    CREATE TABLE IF NOT EXISTS exposures (
        request_id TEXT PRIMARY KEY,
        seq BIGINT GENERATED ALWAYS AS IDENTITY,
        experiment TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        assigned_variant TEXT NOT NULL,
        variant TEXT NOT NULL,
        unit_kind TEXT NOT NULL,
        unit_id TEXT,
        mode TEXT NOT NULL,
        churn_probability DOUBLE PRECISION NOT NULL,
        prediction INTEGER NOT NULL,
        latency_ms DOUBLE PRECISION NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        fallback INTEGER NOT NULL,
        shadow_variant TEXT,
        shadow_probability DOUBLE PRECISION,
        shadow_prediction INTEGER,
        label INTEGER,
        labelled_at DOUBLE PRECISION,
        observed_at DOUBLE PRECISION
    )
    """,
    "CREATE INDEX IF NOT EXISTS exposures_by_epoch ON exposures (experiment, epoch)",
    "CREATE INDEX IF NOT EXISTS exposures_by_unit ON exposures (unit_id, created_at)",
)

_INSERT_EXPOSURE = (
    f"INSERT INTO exposures ({EXPOSURE_COLUMNS}) "
    f"VALUES ({', '.join(['%s'] * len(EXPOSURE_COLUMNS.split(',')))})"
)


def _pg(sql: str) -> str:
    # Shared statements use "?"; psycopg wants "%s" (no SQL here holds "?").
    return sql.replace("?", "%s")


class PostgresLedger(LedgerReads):
    """One connection per process, guarded by a lock for the thread pool.

    ``url`` is a libpq URL (``postgresql://user:password@host:port/db``); it
    is kept only to reconnect and never appears in an error message.
    """

    def __init__(self, url: str, *, connect_timeout_s: int = 10) -> None:
        self._url = url
        self._connect_timeout_s = connect_timeout_s
        self._lock = threading.Lock()
        self._connection: psycopg.Connection[Any] | None = None
        self._pid = os.getpid()
        self._run(_create_schema, "be initialised")

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    # -- transactions --------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        connection = self._connection
        if self._pid != os.getpid():
            # Inherited through fork(): the socket is the parent's session.
            # Closing it would end the parent's session too, so just drop it.
            connection = None
        elif connection is not None and connection.broken:
            connection.close()
        if connection is None or connection.closed:
            connection = psycopg.connect(
                self._url,
                autocommit=True,  # explicit transactions below
                connect_timeout=self._connect_timeout_s,
                application_name="churn-ab",
            )
            self._connection = connection
            self._pid = os.getpid()
        return connection

    def _run(
        self,
        work: Callable[[psycopg.Cursor[Any]], T],
        purpose: str,
        *,
        transaction: bool = True,
    ) -> T:
        """Run ``work`` in one transaction and commit, reconnecting once.

        ``transaction=False`` is for a single read: in autocommit mode the
        statement is its own transaction, one round trip instead of three.
        """
        with self._lock:
            for attempt in (1, 2):
                committing = False
                connection: psycopg.Connection[Any] | None = None
                try:
                    connection = self._connect()
                    if not transaction:
                        with connection.cursor() as cursor:
                            return work(cursor)
                    with connection.transaction(), connection.cursor() as cursor:
                        result = work(cursor)
                        committing = True
                    return result
                except psycopg.Error as exc:
                    retry = (
                        attempt == 1
                        and not committing
                        and connection is not None
                        and connection.broken
                    )
                    if not retry:
                        raise LedgerUnavailableError(
                            f"the experiment ledger could not {purpose}: "
                            f"{type(exc).__name__}: {_first_line(exc)}"
                        ) from exc
            raise AssertionError("unreachable")  # pragma: no cover

    # Ties in created_at are broken by insertion order, as SQLite's rowid does.
    _exposure_order = "created_at, seq"
    # CAST to an integer rounds here; the shared reads need floor.
    _floor_sql = "CAST(floor({}) AS BIGINT)"

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        statement = _pg(sql)

        def work(cursor: psycopg.Cursor[Any]) -> list[tuple[Any, ...]]:
            cursor.execute(statement, params)
            return cursor.fetchall()

        return self._run(work, "be read", transaction=False)

    # -- experiment state ----------------------------------------------------

    def ensure_experiment(
        self, config: ExperimentConfig, *, actor: str = "startup"
    ) -> ExperimentState:
        """Create the experiment, or keep its stored state across restarts.

        As ``SqliteLedger.ensure_experiment``: a start-up configuration that
        differs from the stored seed is applied and recorded as a transition.
        """

        def work(cursor: psycopg.Cursor[Any]) -> None:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_KEY,))
            cursor.execute(_pg(SELECT_SEED + " FOR UPDATE"), (config.name,))
            row = cursor.fetchone()
            stored = None if row is None else str(row[0])
            for sql, params in startup_statements(config, stored, actor, time.time()):
                cursor.execute(_pg(sql), params)

        self._run(work, "be initialised")
        return self.state(config.name, config.known_variants)

    def _apply_change(self, update: Statement, transition: Statement) -> bool:
        # The conditional UPDATE is the check: under READ COMMITTED a
        # concurrent UPDATE of the row waits for the other transaction, then
        # re-evaluates the version against the committed row, so exactly one
        # of two racers wins.
        def work(cursor: psycopg.Cursor[Any]) -> bool:
            cursor.execute(_pg(update[0]), update[1])
            if cursor.rowcount != 1:
                return False  # nothing written; the empty commit is harmless
            cursor.execute(_pg(transition[0]), transition[1])
            return True

        return self._run(work, "record the change")

    # -- exposures -----------------------------------------------------------

    def record_exposures(self, exposures: Sequence[Exposure]) -> None:
        """Commit exposures in one transaction; returns once they are durable."""
        rows = [exposure_row(e) for e in exposures]
        if not rows:
            return

        def work(cursor: psycopg.Cursor[Any]) -> None:
            cursor.executemany(_INSERT_EXPOSURE, rows)

        self._run(work, "commit")

    def record_shadow_scores(
        self, variant: str, scores: Sequence[tuple[str, float, int]]
    ) -> None:
        """Attach the challenger's (request id, probability, prediction)."""
        rows = [
            (variant, probability, prediction, request_id)
            for request_id, probability, prediction in scores
        ]
        if not rows:
            return

        def work(cursor: psycopg.Cursor[Any]) -> None:
            cursor.executemany(
                "UPDATE exposures SET shadow_variant = %s, shadow_probability = %s, "
                "shadow_prediction = %s WHERE request_id = %s",
                rows,
            )

        self._run(work, "commit")

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
        """Label the customer's latest exposure in the experiment."""
        rows = self._read(
            "SELECT request_id FROM exposures WHERE experiment = %s AND unit_id = %s "
            "ORDER BY created_at DESC, seq DESC LIMIT 1",
            (experiment, customer_id),
        )
        if not rows:
            raise UnknownRequestError(
                f"no exposure recorded for customerID {customer_id!r}",
                field="customerID",
            )
        return self._label(str(rows[0][0]), churned, observed_at, field="customerID")

    def _label(
        self,
        request_id: str,
        churned: bool,
        observed_at: float | None,
        *,
        field: str,
    ) -> LabelResult:
        label = 1 if churned else 0

        def work(cursor: psycopg.Cursor[Any]) -> LabelOutcome:
            # FOR UPDATE: two processes labelling the same request queue here,
            # so the second sees the first's label and answers duplicate or
            # conflict instead of overwriting it.
            cursor.execute(
                "SELECT label FROM exposures WHERE request_id = %s FOR UPDATE",
                (request_id,),
            )
            row = cursor.fetchone()
            if row is None:
                raise UnknownRequestError(
                    f"no exposure recorded for request_id {request_id!r}",
                    field=field,
                )
            if row[0] is not None:
                if int(row[0]) == label:
                    return LabelOutcome.DUPLICATE
                raise ConflictingLabelError(
                    f"request {request_id!r} is already labelled "
                    f"churned={bool(row[0])}; refusing churned={churned}",
                    field=field,
                )
            cursor.execute(
                "UPDATE exposures SET label = %s, labelled_at = %s, observed_at = %s "
                "WHERE request_id = %s",
                (label, time.time(), observed_at, request_id),
            )
            return LabelOutcome.ACCEPTED

        return LabelResult(request_id, self._run(work, "record the label"))


def _create_schema(cursor: psycopg.Cursor[Any]) -> None:
    # CREATE TABLE IF NOT EXISTS is not atomic against a concurrent one (both
    # may pass the check, one then fails on the catalog's unique index).
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_KEY,))
    for statement in _SCHEMA:
        cursor.execute(statement)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no detail"
