"""The rollups' cost: a grouped commit writes a handful of rows, and the live
reads never touch the exposures (SQLite; the logic is shared with PostgreSQL)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from ab_router.ledger import SqliteLedger
from ab_router.ledger.rollups import Delta, RollupRow
from tests.support.ledgers import CONFIG, exposure


def test_a_grouped_commit_aggregates_before_it_writes() -> None:
    """500 exposures in 2 variants and 3 latency buckets: 2 cell rows and 6
    bucket rows to upsert, not 500."""
    rows = [
        replace(exposure("v1" if i % 2 else "v2"), latency_ms=(1.0, 2.0, 150.0)[i % 3])
        for i in range(500)
    ]
    delta = Delta()
    delta.add_rows(RollupRow.of_exposure(e) for e in rows)
    written = {
        sql.split()[2]: len(params) for sql, params in delta.upserts("MIN", "MAX")
    }
    assert written == {"traffic_cells": 2, "traffic_buckets": 6}
    cell = delta.tables["traffic_cells"]
    assert sum(v[0] for v in cell.values()) == 500


@contextmanager
def _statements(ledger: SqliteLedger) -> Iterator[list[str]]:
    seen: list[str] = []
    ledger._connection.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        ledger._connection.set_trace_callback(None)


def test_a_commit_of_many_exposures_is_a_handful_of_statements(
    tmp_path: Path,
) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3")
    ledger.ensure_experiment(CONFIG)
    with _statements(ledger) as seen:
        ledger.record_exposures([exposure() for _ in range(200)])
    rollup_writes = [s for s in seen if "ON CONFLICT" in s]
    # 200 rows of one key and one latency bucket: one cell and one bucket upsert.
    assert len(rollup_writes) == 2, rollup_writes


def test_the_live_reads_never_read_the_exposures(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3")
    ledger.ensure_experiment(CONFIG)
    ledger.record_exposures([exposure(), exposure("v2")])
    with _statements(ledger) as seen:
        assert ledger.epoch_counts("exp", 1) == (2, 0)
        assert ledger.count_exposures("exp", 1) == {"v1": 1, "v2": 1}
        assert ledger.epoch_rollup("exp", 1).exposures == 2
    assert seen and not [s for s in seen if "exposures" in s.split("WHERE")[0]]


def _rows_read(ledger: SqliteLedger, experiment: str, epoch: int) -> int:
    count = 0
    read = ledger._read

    def counting(sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        nonlocal count
        rows = read(sql, params)
        count += len(rows)
        return rows

    ledger._read = counting  # type: ignore[method-assign]
    try:
        ledger.epoch_rollup(experiment, epoch)
        ledger.epoch_counts(experiment, epoch)
    finally:
        del ledger._read
    return count


def test_the_rollup_read_does_not_grow_with_the_epoch(tmp_path: Path) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3")
    ledger.ensure_experiment(CONFIG)

    def fill(n: int, epoch: int) -> None:
        rows = [
            replace(
                exposure("v1" if i % 2 else "v2", epoch=epoch),
                latency_ms=float(i % 5),
                churn_probability=(i % 10) / 10,
            )
            for i in range(n)
        ]
        ledger.record_exposures(rows)
        for e in rows[:20]:
            ledger.label_request(e.request_id, e.churn_probability > 0.4)

    fill(100, epoch=1)
    fill(5_000, epoch=2)
    small, large = _rows_read(ledger, "exp", 1), _rows_read(ledger, "exp", 2)
    assert small == large
    assert large < 100


def test_sqlite_rollup_tables_are_clustered_on_their_key(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    SqliteLedger(path).close()
    with sqlite3.connect(path) as connection:
        sql = dict(connection.execute("SELECT name, sql FROM sqlite_master").fetchall())
    assert sql["traffic_cells"].endswith("WITHOUT ROWID")
    assert sql["labelled_score_bins"].endswith("WITHOUT ROWID")
