"""The schema version of a ledger, and the in-place upgrades at open.

Schema 1 is the ledger every release before the rollups wrote (no version
table). Schema 2 adds the model-versions table, each exposure's model ids,
the model ids in force per epoch and the rollups, which the upgrade builds
from the rows already stored. Schema 3 makes a SQLite exposure smaller: a
UUID request id as 16 bytes (``codecs.compact_request_id``) and no index by
epoch; on PostgreSQL it changes nothing. Schema 4 adds the archive tables
(``ab_router.ledger.archive``). Schema 5 adds the drift counts
(``drift_counts``) and the index of labelled exposures that the
concept-drift window reads. ``migrate`` runs in the backend's start-up
transaction (SQLite's writer lock, PostgreSQL's advisory lock), so processes
opening one ledger together upgrade it once; a failed upgrade rolls back and
leaves the file as it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ab_router.errors import LedgerUnavailableError
from ab_router.ledger import schema
from ab_router.ledger.codecs import compact_request_id
from ab_router.ledger.cursor import Cursor

CURRENT_VERSION = 5

# Whether a table exists, per dialect (one ``?``: the table name).
TABLE_EXISTS = {
    "sqlite": "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
    "postgres": "SELECT 1 FROM pg_tables WHERE schemaname = current_schema() "
    "AND tablename = ?",
}


def stored_version(cursor: Cursor, dialect: schema.Dialect) -> int:
    """The schema version of the open database: 0 for an empty one."""
    cursor.execute(TABLE_EXISTS[dialect], (schema.VERSION_TABLE.name,))
    if cursor.fetchone() is not None:
        cursor.execute("SELECT MAX(version) FROM schema_version")
        row = cursor.fetchone()
        if row is not None and row[0] is not None:
            return int(row[0])
    cursor.execute(TABLE_EXISTS[dialect], ("exposures",))
    return 0 if cursor.fetchone() is None else 1


def migrate(
    cursor: Cursor, dialect: schema.Dialect, rebuild: Callable[[Cursor], None]
) -> int:
    """Bring the schema to ``CURRENT_VERSION``; returns the version found.

    ``rebuild`` recomputes every rollup from the rows (``Rollups.rebuild``).
    """
    found = stored_version(cursor, dialect)
    if found > CURRENT_VERSION:
        raise LedgerUnavailableError(
            f"the ledger has schema version {found}, newer than this release's "
            f"{CURRENT_VERSION}: upgrade churn-ab before opening it"
        )
    if found == CURRENT_VERSION:
        return found
    if found == 0:
        for statement in schema.ddl(dialect):
            cursor.execute(statement)
    if found == 1:
        _upgrade_1_to_2(cursor, dialect)
    cursor.execute(schema.VERSION_TABLE.create(dialect))
    _reserve_unknown_model(cursor)
    if 1 <= found <= 3:
        for table in schema.SCHEMA_4_TABLES:
            cursor.execute(table.create(dialect))
    if found == 1:
        rebuild(cursor)
    if 1 <= found <= 2 and dialect == "sqlite":
        _compact_sqlite_exposures(cursor)
    if 1 <= found <= 4:
        for statement in schema.schema_5_ddl(dialect):
            cursor.execute(statement)
    cursor.execute(
        "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
        (CURRENT_VERSION, time.time()),
    )
    return found


def _upgrade_1_to_2(cursor: Cursor, dialect: schema.Dialect) -> None:
    exposures = next(t for t in schema.TABLES if t.name == "exposures")
    for column in exposures.columns[-2:]:  # model_id, shadow_model_id
        definition = column.definition(dialect)
        cursor.execute(f"ALTER TABLE exposures ADD COLUMN {definition}")
    # Exposures shadow-scored before the upgrade: by an unknown model too.
    cursor.execute(
        "UPDATE exposures SET shadow_model_id = ? WHERE shadow_probability IS NOT NULL",
        (schema.UNKNOWN_MODEL_ID,),
    )
    for table in schema.SCHEMA_2_TABLES:
        cursor.execute(table.create(dialect))


def _compact_sqlite_exposures(cursor: Cursor, chunk: int = 10_000) -> None:
    # The space freed is reused by new rows; VACUUM (outside a transaction)
    # would hand it back to the file system.
    cursor.execute("DROP INDEX IF EXISTS exposures_by_epoch")
    last = -1
    while True:  # a chunk at a time: memory stays flat on a large file
        cursor.execute(
            "SELECT rowid, request_id FROM exposures WHERE rowid > ? "
            "ORDER BY rowid LIMIT ?",
            (last, chunk),
        )
        rows = cursor.fetchall()
        if not rows:
            return
        last = int(rows[-1][0])
        updates = [
            (stored, rowid)
            for rowid, request_id in rows
            if isinstance(stored := compact_request_id(str(request_id)), bytes)
        ]
        cursor.executemany(
            "UPDATE exposures SET request_id = ? WHERE rowid = ?", updates
        )


def _reserve_unknown_model(cursor: Cursor) -> None:
    cursor.execute(
        "INSERT INTO model_versions (id, variant, tag, registered_at) "
        "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (
            schema.UNKNOWN_MODEL_ID,
            schema.UNKNOWN_MODEL_VARIANT,
            schema.UNKNOWN_MODEL_TAG,
            time.time(),
        ),
    )
