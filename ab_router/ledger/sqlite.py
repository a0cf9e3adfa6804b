"""The experiment ledger in one SQLite file, shared by the workers of a host.

SQLite in WAL mode is the embedded default. A write returns only after its
transaction commits, and WAL with ``synchronous=NORMAL`` survives the writing
process being SIGKILLed (the WAL frames are already in the OS), so an
answered request is never lost to a worker crash. Every transaction is
``BEGIN IMMEDIATE``: it takes the writer lock at once, which is all the
locking the shared logic needs.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ab_router.errors import LedgerUnavailableError
from ab_router.ledger.base import Ledger
from ab_router.ledger.codecs import compact_request_id
from ab_router.ledger.cursor import Cursor

T = TypeVar("T")


class SqliteLedger(Ledger):
    """One connection per process, guarded by a lock for the thread pool.

    Request ids the service makes (UUIDs) are stored as 16-byte BLOBs
    (``codecs.compact_request_id``): 40 bytes less per exposure, row and key
    index together; every method still takes and returns strings.
    """

    _store_id = staticmethod(compact_request_id)

    def __init__(self, path: Path, *, busy_timeout_ms: int = 10_000) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._busy_timeout_ms = busy_timeout_ms
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()
        self._connection = self._open_file()
        # Creating or upgrading the schema takes the writer lock: processes
        # opening one file together upgrade it once (ledger.migrations).
        self._transaction(self._migrate, f"open {self.path}")

    def _open_file(self) -> sqlite3.Connection:
        """The writing connection, in WAL mode; a file that cannot be one
        (a directory, no permission, not a database) raises
        ``LedgerUnavailableError`` naming the path, not sqlite3's bare error."""
        connection: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = self._open_connection()
            connection.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
            self._enable_wal(connection, self._busy_timeout_ms / 1000)
            connection.execute("PRAGMA synchronous=NORMAL")
        except (OSError, sqlite3.Error, LedgerUnavailableError) as exc:
            if connection is not None:
                connection.close()
            if isinstance(exc, LedgerUnavailableError):
                raise
            raise LedgerUnavailableError(
                f"the experiment ledger {self.path} could not be opened: {exc}"
            ) from exc
        return connection

    def _open_connection(self) -> sqlite3.Connection:
        return sqlite3.connect(
            self.path,
            timeout=self._busy_timeout_ms / 1000,
            isolation_level=None,  # explicit BEGIN/COMMIT in _transaction
            check_same_thread=False,
        )

    def _enable_wal(self, connection: sqlite3.Connection, timeout_s: float) -> None:
        # Switching a new file to WAL needs an exclusive lock that SQLite's busy
        # handler does not wait for: workers starting together on a fresh
        # volume can see "database is locked", so retry until the timeout.
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                connection.execute("PRAGMA journal_mode=WAL")
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

    def _transaction(self, work: Callable[[Cursor], T], purpose: str) -> T:
        with self._lock:
            cursor = self._connection.cursor()
            try:
                cursor.execute("BEGIN IMMEDIATE")
                result = work(cursor)
                cursor.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise LedgerUnavailableError(
                    f"the experiment ledger could not {purpose}: {exc}"
                ) from exc
            except BaseException:
                # A refusal (unknown request, conflicting label) writes nothing.
                self._rollback()
                raise
            return result

    def _rollback(self) -> None:
        if self._connection.in_transaction:
            self._connection.rollback()

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._connection.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise LedgerUnavailableError(
                    f"the experiment ledger could not be read: {exc}"
                ) from exc

    def _read_chunks(
        self, sql: str, params: Sequence[object], size: int = 10_000
    ) -> Iterator[list[tuple[Any, ...]]]:
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
