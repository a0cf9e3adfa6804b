"""Ledgers for tests: the experiment, exposures, and where a ledger lives."""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ab_router.admin import Change
from ab_router.config import ExperimentConfig
from ab_router.ledger import Ledger, SqliteLedger
from ab_router.records import Exposure, Mode, UnitKind

if TYPE_CHECKING:  # psycopg: only the PostgreSQL tests need it
    from ab_router.state import ExperimentState
    from tests.support.postgres_server import PostgresServer

CONFIG = ExperimentConfig(name="exp", salt="s", weights={"v1": 0.5, "v2": 0.5})


def admin_change(
    ledger: Ledger,
    state: ExperimentState,
    config: ExperimentConfig = CONFIG,
    *,
    new_epoch: bool,
    kind: str,
    reason: str = "test",
) -> bool:
    """An admin's change outside a canary, from ``state``; False if stale."""
    return ledger.change_state(
        state,
        Change(config, -1, kind, new_epoch=new_epoch),
        reason=reason,
        actor="admin",
    )


def exposure(variant: str = "v1", unit: str | None = "c1", epoch: int = 1) -> Exposure:
    return Exposure(
        request_id=str(uuid.uuid4()),
        experiment="exp",
        epoch=epoch,
        assigned_variant=variant,
        variant=variant,
        unit_kind=UnitKind.CUSTOMER if unit else UnitKind.REQUEST,
        unit_id=unit,
        mode=Mode.SPLIT,
        churn_probability=0.7,
        prediction=1,
        latency_ms=1.5,
        created_at=time.time(),
        fallback=False,
    )


@dataclass(frozen=True)
class Store:
    """Where a ledger lives; picklable, so spawned processes open their own.

    ``kind`` is "sqlite" (``target`` a file path) or "postgres" (a URL).
    """

    kind: str
    target: str

    def open(self) -> Ledger:
        if self.kind == "sqlite":
            return SqliteLedger(Path(self.target))
        from ab_router.ledger.postgres import PostgresLedger

        return PostgresLedger(self.target)


def sqlite_store(directory: Path) -> Store:
    return Store("sqlite", str(directory / "ledger.sqlite3"))


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A throw-away PostgreSQL that must stop cleanly (for a fixture)."""
    from tests.support.postgres_server import PostgresServer

    server = PostgresServer().start()
    try:
        yield server
    finally:
        leftover = server.stop()
    assert not leftover, f"PostgreSQL did not stop cleanly: {leftover}"
    assert not server.root.exists()


def labelled_sqlite_ledger(path: Path) -> Path:
    """Three exposures (v1, v2, v2), one of them labelled, in ``path``."""
    ledger = SqliteLedger(path)
    ledger.ensure_experiment(CONFIG)
    rows = [exposure("v1"), exposure("v2"), exposure("v2")]
    ledger.record_exposures(rows)
    ledger.label_request(rows[1].request_id, True)
    ledger.close()
    return path


def tamper_v2_requests(path: Path) -> None:
    """What a bug (or a hand-made UPDATE) could leave behind: rollups that
    count one v2 request more than the rows hold."""
    with sqlite3.connect(path) as connection:
        connection.execute(
            "UPDATE traffic_cells SET requests = requests + 1 WHERE variant = 'v2'"
        )
    connection.close()
