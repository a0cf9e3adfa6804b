"""``LedgerHooks``: what a backend supplies, declared once for every part.

Each part of ``Ledger`` (experiment state, exposures, labels, model versions,
rollups, statistics reads, drift counts) is a class over these hooks, so a
backend (``SqliteLedger``, ``PostgresLedger``) supplies only its connection
(``_read``, ``_read_chunks``, ``close``), its transaction (``_transaction``:
run a body, commit, or roll back and raise), its locking
(``_lock_for_startup``, ``_for_update``) and its dialect's SQL templates.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, TypeVar

from ab_router.ledger import migrations, rollups, schema
from ab_router.ledger.codecs import StoredId
from ab_router.ledger.cursor import Cursor
from ab_router.ledger.rollups import Delta

T = TypeVar("T")


class LedgerHooks(ABC):
    """The backend hooks and the helpers built on them alone."""

    # The ORDER BY that lists exposures in the order they were written.
    _exposure_order: ClassVar[str] = "created_at"
    # Newest exposure first (label_customer): the reverse of _exposure_order.
    _newest_first: ClassVar[str] = "created_at DESC"
    # Turns a non-negative REAL expression into the integer floor gives
    # (SQLite's CAST truncates, which is the floor there; PostgreSQL's rounds).
    _floor_sql: ClassVar[str] = "CAST({} AS INTEGER)"
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

    @abstractmethod
    def _read(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """All rows of one ``?``-placeholder read."""

    @abstractmethod
    def _read_chunks(
        self, sql: str, params: Sequence[object]
    ) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of one long read, a chunk at a time."""

    # A hook with a default, not abstract: SQLite needs no more than this.
    def _lock_for_startup(self, cursor: Cursor) -> None:  # noqa: B027
        """Serialise start-up between processes (here: the transaction does)."""

    def _migrate(self, cursor: Cursor) -> int:
        """Create or upgrade the schema (the backend's opening transaction)."""
        return migrations.migrate(cursor, self._dialect, self._rebuild)

    def _write_rollups(self, cursor: Cursor, delta: Delta) -> None:
        rollups.apply(cursor, delta, self._least, self._greatest)

    def _rebuild(self, cursor: Cursor) -> None:
        rollups.rebuild(cursor, self._least, self._greatest)
