"""The SQLite ledger: the backend contract, plus what only SQLite has.

The scenarios every backend must pass are in ``tests/support/
ledger_contract.py``; here they run on SQLite, with no server and no other
process.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ab_router.errors import ConfigError, LedgerUnavailableError
from ab_router.ledger import SqliteLedger, open_ledger, schema
from tests.support.ledger_contract import DriftCountsContract, LedgerContract
from tests.support.ledgers import CONFIG, Store, exposure, sqlite_store


class TestSqliteLedger(LedgerContract, DriftCountsContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Store:
        return sqlite_store(tmp_path)


def test_a_long_read_never_blocks_a_write(tmp_path: Path) -> None:
    """A read in chunks keeps a snapshot open; writes must still commit.

    The soak found 1,833 "database is locked" answers when the chunks were
    read on the connection that also writes.
    """
    path = tmp_path / "ledger.sqlite3"
    ledger = SqliteLedger(path)
    ledger.ensure_experiment(CONFIG)
    ledger.record_exposures([exposure() for _ in range(3000)])
    other_worker = SqliteLedger(path)
    chunks = ledger._read_chunks("SELECT request_id FROM exposures", (), size=1000)
    first = next(chunks)  # the snapshot is open now
    other_worker.record_exposures([exposure()])  # the database moves on
    ledger.record_exposures([exposure()])  # and this worker still writes
    assert len(first) + sum(len(c) for c in chunks) == 3000
    assert len(ledger.exposures("exp")) == 3002


# The schema as the single-module ledger (before ab_router/ledger/) wrote it:
# a file from that version must open and keep working.
SCHEMA_BEFORE_THE_PACKAGE = """
CREATE TABLE experiments (name TEXT PRIMARY KEY, config TEXT NOT NULL,
    seed_config TEXT NOT NULL, epoch INTEGER NOT NULL,
    canary_stage INTEGER NOT NULL, version INTEGER NOT NULL,
    updated_at REAL NOT NULL);
CREATE TABLE transitions (id INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment TEXT NOT NULL, epoch INTEGER NOT NULL, kind TEXT NOT NULL,
    reason TEXT NOT NULL, weights TEXT NOT NULL, created_at REAL NOT NULL,
    actor TEXT NOT NULL);
CREATE TABLE exposures (request_id TEXT PRIMARY KEY, experiment TEXT NOT NULL,
    epoch INTEGER NOT NULL, assigned_variant TEXT NOT NULL,
    variant TEXT NOT NULL, unit_kind TEXT NOT NULL, unit_id TEXT,
    mode TEXT NOT NULL, churn_probability REAL NOT NULL,
    prediction INTEGER NOT NULL, latency_ms REAL NOT NULL,
    created_at REAL NOT NULL, fallback INTEGER NOT NULL, shadow_variant TEXT,
    shadow_probability REAL, shadow_prediction INTEGER, label INTEGER,
    labelled_at REAL, observed_at REAL);
CREATE INDEX exposures_by_epoch ON exposures (experiment, epoch);
CREATE INDEX exposures_by_unit ON exposures (unit_id, created_at);
"""


def _columns(connection: sqlite3.Connection) -> dict[str, list[tuple[object, ...]]]:
    names = connection.execute("SELECT name FROM sqlite_master ORDER BY name")
    return {
        name: connection.execute(f"PRAGMA table_info({name})").fetchall()
        + connection.execute(f"PRAGMA index_info({name})").fetchall()
        for (name,) in names.fetchall()
    }


def test_a_ledger_from_before_the_package_opens_and_upgrades(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as old:
        old.executescript(SCHEMA_BEFORE_THE_PACKAGE)
    before = _columns(sqlite3.connect(path))
    ledger = SqliteLedger(path)
    ledger.ensure_experiment(CONFIG)
    e = exposure()
    ledger.record_exposures([e])
    assert ledger.exposures("exp") == [e]
    after = _columns(sqlite3.connect(path))
    # Every schema-1 column is where it was; exposures gained two at the end;
    # the index by epoch is gone (schema 3: the rollups replace it).
    assert set(before) - set(after) == {"exposures_by_epoch"}
    for name, columns in before.items():
        if name != "exposures_by_epoch":
            assert after[name][: len(columns)] == columns, name
    assert [c[1] for c in after["exposures"][len(before["exposures"]) :]] == [
        "model_id",
        "shadow_model_id",
    ]


def test_request_ids_are_stored_compactly_and_read_back_as_strings(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite3"
    legacy = exposure()  # a UUID request id, as the service makes them
    with sqlite3.connect(path) as old:
        old.executescript(SCHEMA_BEFORE_THE_PACKAGE)
        old.execute(
            "INSERT INTO exposures VALUES "
            "(?, 'exp', 1, 'v1', 'v1', 'customer', 'c1', 'split', 0.7, 1, 1.5, "
            "1.0, 0, NULL, NULL, NULL, NULL, NULL, NULL)",
            (legacy.request_id,),
        )
    old.close()
    ledger = SqliteLedger(path)  # upgrades: the stored id becomes 16 bytes
    ledger.ensure_experiment(CONFIG)
    fresh = exposure()
    other = replace(exposure(unit="c2"), request_id="not-a-uuid")
    ledger.record_exposures([fresh, other])
    ledger.record_shadow_scores("v2", [(fresh.request_id, 0.5, 1)])
    assert ledger.label_request(legacy.request_id, True).outcome == "accepted"
    assert ledger.label_customer("exp", "c1", True).request_id == fresh.request_id
    assert ledger.label_request(other.request_id, False).outcome == "accepted"
    with sqlite3.connect(path) as connection:
        kinds = [
            kind
            for (kind,) in connection.execute(
                "SELECT typeof(request_id) FROM exposures"
            ).fetchall()
        ]
        length = connection.execute(
            "SELECT length(request_id) FROM exposures WHERE typeof(request_id) = 'blob'"
        ).fetchall()
    connection.close()
    assert sorted(kinds) == ["blob", "blob", "text"]
    assert length == [(16,), (16,)]
    assert {e.request_id for e in ledger.exposures("exp")} == {
        legacy.request_id,
        fresh.request_id,
        "not-a-uuid",
    }
    assert ledger.verify_rollups() == []


def test_an_upgraded_file_has_the_tables_of_a_new_one(tmp_path: Path) -> None:
    old = tmp_path / "old.sqlite3"
    with sqlite3.connect(old) as connection:
        connection.executescript(SCHEMA_BEFORE_THE_PACKAGE)
    SqliteLedger(old).close()
    SqliteLedger(tmp_path / "new.sqlite3").close()
    upgraded = _columns(sqlite3.connect(old))
    assert _columns(sqlite3.connect(tmp_path / "new.sqlite3")) == upgraded
    assert {"schema_version", "model_versions", "traffic_cells"} <= set(upgraded)


def test_both_dialects_have_the_same_columns_but_seq() -> None:
    for table in schema.TABLES:
        sqlite = [c.name for c in table.columns if c.sqlite is not None]
        postgres = [c.name for c in table.columns if c.postgres is not None]
        assert [c for c in postgres if c != "seq"] == sqlite, table.name
    assert "seq" not in " ".join(schema.ddl("sqlite"))
    assert "DOUBLE PRECISION" not in " ".join(schema.ddl("sqlite"))
    assert " REAL" not in " ".join(schema.ddl("postgres"))


def test_open_ledger_without_a_url_is_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    assert isinstance(open_ledger(None, path), SqliteLedger)
    assert isinstance(open_ledger("", path), SqliteLedger)
    assert path.is_file()


def test_open_ledger_refuses_other_urls_without_naming_the_secret(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError) as info:
        open_ledger("mysql://user:secret@host/db", tmp_path / "ledger.sqlite3")
    assert info.value.field == "ledger_url" and "secret" not in info.value.message
    assert not (tmp_path / "ledger.sqlite3").exists()


def test_an_epoch_that_changes_while_archived_is_not_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A straggler's exposure lands after the file was written: the check in
    the deleting transaction sees a different checksum and deletes nothing."""
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3")
    ledger.ensure_experiment(CONFIG)
    ledger.record_exposures([exposure() for _ in range(5)])
    reads = ledger._read_chunks

    def before_the_straggler(sql: str, params: Sequence[object]) -> Iterator[Any]:
        chunks = list(reads(sql, params))
        ledger.record_exposures([exposure()])  # after the rows were read
        yield from chunks

    monkeypatch.setattr(ledger, "_read_chunks", before_the_straggler)
    with pytest.raises(LedgerUnavailableError, match="changed while it was archived"):
        ledger.archive_epoch("exp", 1, tmp_path / "archive")
    assert len(ledger.exposures("exp", 1)) == 6
    assert ledger.verify_rollups() == []
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as connection:
        assert connection.execute("SELECT COUNT(*) FROM archives").fetchone() == (0,)
    connection.close()


def test_a_file_that_is_not_a_database_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite3"
    path.write_text("a text file, not SQLite\n")
    with pytest.raises(LedgerUnavailableError) as caught:
        SqliteLedger(path)
    assert caught.value.message == (
        f"the experiment ledger {path} could not be opened: file is not a database"
    )
    assert path.read_text() == "a text file, not SQLite\n"


def test_a_ledger_under_a_file_is_refused_naming_it(tmp_path: Path) -> None:
    parent = tmp_path / "file"
    parent.write_text("")
    with pytest.raises(LedgerUnavailableError) as caught:
        SqliteLedger(parent / "l.db")
    assert caught.value.message.startswith(
        f"the experiment ledger {parent / 'l.db'} could not be opened: "
    )
