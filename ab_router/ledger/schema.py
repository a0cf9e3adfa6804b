"""The ledger's tables, once, with each dialect's column types side by side.

``SqliteLedger`` and ``PostgresLedger`` render their DDL from ``TABLES``. The
types differ only where the dialects do: SQLite's REAL is already a 64-bit
float, PostgreSQL's REAL is not (DOUBLE PRECISION keeps floats bit for bit);
SQLite numbers rows itself (AUTOINCREMENT, rowid), PostgreSQL needs identity
columns. Every statement is ``IF NOT EXISTS``, so a ledger written by an
earlier version opens unchanged; never reorder columns
(``INSERT INTO experiments VALUES`` relies on the order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Dialect = Literal["sqlite", "postgres"]

_REAL = ("REAL NOT NULL", "DOUBLE PRECISION NOT NULL")
_REAL_NULL = ("REAL", "DOUBLE PRECISION")


@dataclass(frozen=True)
class Column:
    """A column's definition in each dialect; None: the dialect has none."""

    name: str
    sqlite: str | None
    postgres: str | None

    def definition(self, dialect: Dialect) -> str | None:
        kind = self.sqlite if dialect == "sqlite" else self.postgres
        return None if kind is None else f"{self.name} {kind}"


def _same(name: str, kind: str) -> Column:
    return Column(name, kind, kind)


def _real(name: str, kinds: tuple[str, str] = _REAL) -> Column:
    return Column(name, *kinds)


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]

    def create(self, dialect: Dialect) -> str:
        definitions = [c.definition(dialect) for c in self.columns]
        body = ",\n    ".join(d for d in definitions if d is not None)
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n    {body}\n)"


#        column           SQLite                                PostgreSQL
TABLES = (
    Table("experiments", (
        _same("name", "TEXT PRIMARY KEY"),
        _same("config", "TEXT NOT NULL"),
        _same("seed_config", "TEXT NOT NULL"),
        _same("epoch", "INTEGER NOT NULL"),
        _same("canary_stage", "INTEGER NOT NULL"),
        Column("version", "INTEGER NOT NULL", "BIGINT NOT NULL"),
        _real("updated_at"),
    )),
    Table("transitions", (
        Column("id", "INTEGER PRIMARY KEY AUTOINCREMENT",
               "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
        _same("experiment", "TEXT NOT NULL"),
        _same("epoch", "INTEGER NOT NULL"),
        _same("kind", "TEXT NOT NULL"),
        _same("reason", "TEXT NOT NULL"),
        _same("weights", "TEXT NOT NULL"),
        _real("created_at"),
        _same("actor", "TEXT NOT NULL"),
    )),
    Table("exposures", (
        _same("request_id", "TEXT PRIMARY KEY"),
        # Breaks ties of created_at in insertion order, as SQLite's rowid does.
        Column("seq", None, "BIGINT GENERATED ALWAYS AS IDENTITY"),
        _same("experiment", "TEXT NOT NULL"),
        _same("epoch", "INTEGER NOT NULL"),
        _same("assigned_variant", "TEXT NOT NULL"),
        _same("variant", "TEXT NOT NULL"),
        _same("unit_kind", "TEXT NOT NULL"),
        _same("unit_id", "TEXT"),
        _same("mode", "TEXT NOT NULL"),
        _real("churn_probability"),
        _same("prediction", "INTEGER NOT NULL"),
        _real("latency_ms"),
        _real("created_at"),
        _same("fallback", "INTEGER NOT NULL"),
        _same("shadow_variant", "TEXT"),
        _real("shadow_probability", _REAL_NULL),
        _same("shadow_prediction", "INTEGER"),
        _same("label", "INTEGER"),
        _real("labelled_at", _REAL_NULL),
        _real("observed_at", _REAL_NULL),
    )),
    # Live drift bin counts (ab_router/ledger/drift_counts.py): derived, one
    # row per experiment, epoch, variant, model tag and hour.
    Table("drift_counts", (
        _same("experiment", "TEXT NOT NULL"),
        _same("epoch", "INTEGER NOT NULL"),
        _same("variant", "TEXT NOT NULL"),
        _same("model_tag", "TEXT NOT NULL"),
        _same("hour", "INTEGER NOT NULL"),
        Column("binned_rows", "INTEGER NOT NULL", "BIGINT NOT NULL"),
        Column("binned_scores", "INTEGER NOT NULL", "BIGINT NOT NULL"),
        _same("counts", "TEXT NOT NULL"),
        _real("updated_at"),
    )),
)  # fmt: skip

INDEXES = (
    "CREATE INDEX IF NOT EXISTS exposures_by_epoch ON exposures (experiment, epoch)",
    "CREATE INDEX IF NOT EXISTS exposures_by_unit ON exposures (unit_id, created_at)",
    # The concept-drift window: a variant's last N labels, read in N rows.
    "CREATE INDEX IF NOT EXISTS exposures_by_label "
    "ON exposures (experiment, epoch, variant, labelled_at)",
    "CREATE UNIQUE INDEX IF NOT EXISTS drift_counts_key "
    "ON drift_counts (experiment, epoch, variant, model_tag, hour)",
)


def ddl(dialect: Dialect) -> tuple[str, ...]:
    """Every statement that creates the schema, in order, for ``dialect``."""
    return (*(table.create(dialect) for table in TABLES), *INDEXES)
