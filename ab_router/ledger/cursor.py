"""What a transaction body may do with its backend's cursor."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol


class Cursor(Protocol):
    """The part of a DB-API cursor the shared ledger logic uses; SQL with
    ``?`` placeholders (the PostgreSQL ledger's cursor translates them)."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> object: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> object: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> Sequence[Any]: ...

    def fetchmany(self, size: int, /) -> Sequence[Any]: ...
