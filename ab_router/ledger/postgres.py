"""The experiment ledger on PostgreSQL, for several hosts sharing one experiment.

Same operations and semantics as ``SqliteLedger`` (both are ``Ledger``). What
SQLite gets from its single writer lock is done here with row locks: the
version check is a conditional ``UPDATE`` (a concurrent one waits for the
first to commit, then re-checks and finds the version moved on) and a label
reads its row ``FOR UPDATE``. Creating the schema and the experiment row take
a transaction-scoped advisory lock, so processes starting together do not
trip over each other.

Each process holds one connection, guarded by a lock for the thread pool. A
connection the server dropped (restart, failover, idle timeout) is replaced
once per operation, but only if the failure came before the commit was sent:
a commit whose outcome is unknown is reported, never repeated.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg

from ab_router.errors import LedgerUnavailableError
from ab_router.ledger.base import Ledger
from ab_router.ledger.cursor import Cursor

T = TypeVar("T")

# Arbitrary but fixed: every churn-ab process serialises schema creation and
# experiment creation on this key (pg_advisory_xact_lock takes a bigint).
_ADVISORY_KEY = 0x636875726E6162  # "churnab"


def _pg(sql: str) -> str:
    # Shared statements use "?"; psycopg wants "%s" (no SQL here holds "?").
    return sql.replace("?", "%s")


class _QmarkCursor:
    """A psycopg cursor that takes the shared SQL's ``?`` placeholders."""

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> object:
        return self._cursor.execute(_pg(sql), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> object:
        self._cursor.executemany(_pg(sql), rows)
        return self

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> Sequence[Any]:
        return self._cursor.fetchall()

    def fetchmany(self, size: int, /) -> Sequence[Any]:
        return self._cursor.fetchmany(size)


class PostgresLedger(Ledger):
    """One connection per process, guarded by a lock for the thread pool.

    ``url`` is a libpq URL (``postgresql://user:password@host:port/db``); it
    is kept only to reconnect and never appears in an error message.
    """

    # Ties in created_at are broken by insertion order, as SQLite's rowid does.
    _exposure_order = "created_at, seq"
    _newest_first = "created_at DESC, seq DESC"
    # CAST to an integer rounds here; the statistics reads need floor.
    _floor_sql = "CAST(floor({}) AS BIGINT)"
    _for_update = " FOR UPDATE"
    _dialect = "postgres"
    _least = "LEAST"
    _greatest = "GREATEST"

    def __init__(self, url: str, *, connect_timeout_s: int = 10) -> None:
        self._url = url
        self._connect_timeout_s = connect_timeout_s
        self._lock = threading.Lock()
        self._connection: psycopg.Connection[Any] | None = None
        self._pid = os.getpid()
        self._transaction(self._create_schema, "be initialised")

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _create_schema(self, cursor: Cursor) -> None:
        # CREATE TABLE IF NOT EXISTS is not atomic against a concurrent one
        # (both may pass the check, one then fails on the catalog's unique
        # index); the lock also makes one process run an upgrade.
        cursor.execute("SELECT pg_advisory_xact_lock(?)", (_ADVISORY_KEY,))
        self._migrate(cursor)

    def _lock_for_startup(self, cursor: Cursor) -> None:
        cursor.execute("SELECT pg_advisory_xact_lock(?)", (_ADVISORY_KEY,))

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
                autocommit=True,  # explicit transactions in _run
                connect_timeout=self._connect_timeout_s,
                application_name="churn-ab",
            )
            self._connection = connection
            self._pid = os.getpid()
        return connection

    def _transaction(self, work: Callable[[Cursor], T], purpose: str) -> T:
        return self._run(lambda cursor: work(_QmarkCursor(cursor)), purpose)

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        statement = _pg(sql)

        def work(cursor: psycopg.Cursor[Any]) -> list[tuple[Any, ...]]:
            cursor.execute(statement, params)
            return cursor.fetchall()

        return self._run(work, "be read", transaction=False)

    def _read_chunks(
        self, sql: str, params: Sequence[object]
    ) -> Iterator[list[tuple[Any, ...]]]:
        # All rows in one read: simple and correct. The live statistics read
        # only labelled rows this way; the traffic is aggregated in SQL.
        yield self._read(sql, params)

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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no detail"
