"""The ledger's tables, once, with each dialect's column types side by side.

``SqliteLedger`` and ``PostgresLedger`` render their DDL from ``TABLES``. The
types differ only where the dialects do: SQLite's REAL is already a 64-bit
float, PostgreSQL's REAL is not (DOUBLE PRECISION keeps floats bit for bit);
SQLite numbers rows itself (AUTOINCREMENT, rowid), PostgreSQL needs identity
columns. ``ab_router.ledger.migrations`` creates these tables on an empty
database and upgrades a schema-1 ledger (every release before the rollups)
in place; never reorder columns (``INSERT INTO experiments VALUES`` relies
on the order, and an upgraded file must match a new one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ab_router.records import UNKNOWN_MODEL_ID
from ab_router.statistics.labelled_sums import (
    LABELLED_SUMS_COLUMNS,
    PAIRED_SUMS_COLUMNS,
)

Dialect = Literal["sqlite", "postgres"]

# The reserved model version of every exposure (and shadow score) written
# before schema 2: which model scored it was not recorded.
UNKNOWN_MODEL_VARIANT = ""
UNKNOWN_MODEL_TAG = "unknown before upgrade"

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
    constraints: tuple[str, ...] = ()

    def create(self, dialect: Dialect) -> str:
        definitions = [c.definition(dialect) for c in self.columns]
        definitions += self.constraints
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
        # Schema 2 (issue #18), appended so that ALTER TABLE ADD COLUMN on a
        # schema-1 file gives the same layout as a new file.
        _same("model_id", f"INTEGER NOT NULL DEFAULT {UNKNOWN_MODEL_ID}"),
        _same("shadow_model_id", "INTEGER"),
    )),
)  # fmt: skip

# label_customer finds a unit's latest exposure through this index.
BY_UNIT = (
    "CREATE INDEX IF NOT EXISTS exposures_by_unit ON exposures (unit_id, created_at)"
)
# Schema 3 drops this one on SQLite (20 bytes an exposure): the live reads
# are rollups now, and what still reads an epoch's rows (the offline report,
# verify) reads most of the table anyway. PostgreSQL keeps it.
BY_EPOCH = (
    "CREATE INDEX IF NOT EXISTS exposures_by_epoch ON exposures (experiment, epoch)"
)


def indexes(dialect: Dialect) -> tuple[str, ...]:
    return (BY_UNIT,) if dialect == "sqlite" else (BY_EPOCH, BY_UNIT)


# -- schema 2: versions, model versions, rollups ----------------------------------

_INT = "INTEGER NOT NULL"
_BIG = ("INTEGER NOT NULL", "BIGINT NOT NULL")


def _int(name: str) -> Column:
    return _same(name, _INT)


def _big(name: str) -> Column:
    return Column(name, *_BIG)


def _text(name: str) -> Column:
    return _same(name, "TEXT NOT NULL")


@dataclass(frozen=True)
class KeyedTable:
    """A rollup table: key columns (the primary key), then additive values."""

    name: str
    key: tuple[Column, ...]
    values: tuple[Column, ...]

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.key)

    @property
    def value_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.values)

    def create(self, dialect: Dialect) -> str:
        columns = [c.definition(dialect) for c in (*self.key, *self.values)]
        body = ",\n    ".join(d for d in columns if d is not None)
        key = ", ".join(self.key_names)
        # WITHOUT ROWID: SQLite stores the row in its primary-key B-tree
        # instead of a rowid table plus a key index.
        clustered = " WITHOUT ROWID" if dialect == "sqlite" else ""
        return (
            f"CREATE TABLE IF NOT EXISTS {self.name} (\n    {body},\n"
            f"    PRIMARY KEY ({key})\n){clustered}"
        )


VERSION_TABLE = Table("schema_version", (
    _same("version", "INTEGER PRIMARY KEY"),
    _real("applied_at"),
))  # fmt: skip

MODEL_VERSIONS = Table("model_versions", (
    # BY DEFAULT, not ALWAYS: the reserved id 0 is inserted explicitly.
    Column("id", "INTEGER PRIMARY KEY",
           "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    _text("variant"),
    _text("tag"),
    _real("registered_at"),
), constraints=("UNIQUE (variant, tag)",))  # fmt: skip

EPOCH_MODELS = KeyedTable(
    "epoch_models",
    (_text("experiment"), _int("epoch"), _text("variant"), _big("model_id")),
    (_real("recorded_at"), _text("actor")),
)

_TRAFFIC_KEY = (
    _text("experiment"), _int("epoch"), _text("variant"), _text("assigned_variant"),
    _int("fallback"), _text("mode"), _big("model_id"),
    # "" until a shadow score is recorded: the key of EpochTraffic.
    _text("shadow_variant"),
)  # fmt: skip

TRAFFIC_CELLS = KeyedTable(
    "traffic_cells",
    _TRAFFIC_KEY,
    (
        _big("requests"),
        _big("predicted"),
        _big("labelled"),
        _real("sum_p"),
        _big("sum_us"),
        # Only ever widened: a row that moves to its shadow cell stays inside
        # the bounds of the cell it left (see ledger.rollups).
        _real("min_ms"),
        _real("max_ms"),
    ),
)

TRAFFIC_BUCKETS = KeyedTable(
    "traffic_buckets", (*_TRAFFIC_KEY, _int("bucket")), (_big("requests"),)
)

# The labelled sums' columns are the statistics' own
# (``labelled_sums.LABELLED_SUMS_COLUMNS``, ``PAIRED_SUMS_COLUMNS``), so the
# two cannot drift apart; these are the counts among them (stored exactly).
COUNT_COLUMNS = frozenset(
    {"n", "positives", "tp", "fp", "tn", "fn", "mcnemar_b", "mcnemar_c"}
)


def _sums_columns(names: tuple[str, ...]) -> tuple[Column, ...]:
    return tuple(
        _big(c) if c.removeprefix("champion_").removeprefix("challenger_")
        in COUNT_COLUMNS else _real(c)
        for c in names
    )  # fmt: skip


_LABELLED_KEY = (
    _text("experiment"), _int("epoch"), _text("variant"), _big("model_id"),
)  # fmt: skip
_PAIRED_KEY = (*_LABELLED_KEY, _text("shadow_variant"), _big("shadow_model_id"))

LABELLED_SUMS = KeyedTable(
    "labelled_sums", _LABELLED_KEY, _sums_columns(LABELLED_SUMS_COLUMNS)
)
LABELLED_SCORE_BINS = KeyedTable(
    "labelled_score_bins",
    (*_LABELLED_KEY, _int("label"), _int("bin")),
    (_big("requests"),),
)

PAIRED_SUMS = KeyedTable("paired_sums", _PAIRED_KEY, _sums_columns(PAIRED_SUMS_COLUMNS))
# model 0: the champion's own score, 1: the challenger's shadow score.
PAIRED_SCORE_BINS = KeyedTable(
    "paired_score_bins",
    (*_PAIRED_KEY, _int("model"), _int("label"), _int("bin")),
    (_big("requests"),),
)
PAIRED_JOINT_BINS = KeyedTable(
    "paired_joint_bins",
    (*_PAIRED_KEY, _int("label"), _int("bin1"), _int("bin2")),
    (_big("requests"),),
)

ROLLUP_TABLES = (
    TRAFFIC_CELLS,
    TRAFFIC_BUCKETS,
    LABELLED_SUMS,
    LABELLED_SCORE_BINS,
    PAIRED_SUMS,
    PAIRED_SCORE_BINS,
    PAIRED_JOINT_BINS,
)

# -- schema 4: archives ----------------------------------------------------------

#: One row per archived epoch: where its rows went and how to check them.
ARCHIVES = KeyedTable(
    "archives",
    (_text("experiment"), _int("epoch")),
    (_text("path"), _big("requests"), _text("sha256"), _real("archived_at")),
)
#: The request ids of archived rows (16 bytes each on SQLite), so feedback
#: for one is told why it is refused instead of "unknown".
ARCHIVED_REQUESTS = KeyedTable(
    "archived_requests",
    (_text("request_id"),),
    (_text("experiment"), _int("epoch")),
)
SCHEMA_4_TABLES = (ARCHIVES, ARCHIVED_REQUESTS)

#: Tables new in schema 2, in creation order.
SCHEMA_2_TABLES: tuple[Table | KeyedTable, ...] = (
    MODEL_VERSIONS,
    EPOCH_MODELS,
    *ROLLUP_TABLES,
)


# -- schema 5: drift (issue #14) ----------------------------------------------

# Live drift bin counts (ab_router/ledger/drift_counts.py): derived counts,
# one row per experiment, epoch, variant, model tag and hour; ``counts`` is
# the JSON of the per-bin integers.
DRIFT_COUNTS = KeyedTable(
    "drift_counts",
    (_text("experiment"), _int("epoch"), _text("variant"), _text("model_tag"),
     _int("hour")),
    (_big("binned_rows"), _big("binned_scores"), _text("counts"),
     _real("updated_at")),
)  # fmt: skip

# The concept-drift window (a variant's last N labels of an epoch) in N rows.
# Partial: only labelled exposures are in it, so an unlabelled exposure costs
# no more bytes than before.
BY_LABEL = (
    "CREATE INDEX IF NOT EXISTS exposures_by_label "
    "ON exposures (experiment, epoch, variant, labelled_at) "
    "WHERE labelled_at IS NOT NULL"
)


def schema_5_ddl(dialect: Dialect) -> tuple[str, ...]:
    """What schema 5 adds to schema 4."""
    return (DRIFT_COUNTS.create(dialect), BY_LABEL)


def ddl(dialect: Dialect) -> tuple[str, ...]:
    """Every statement that creates the current schema on an empty database."""
    return (
        *(table.create(dialect) for table in TABLES),
        *indexes(dialect),
        *(table.create(dialect) for table in SCHEMA_2_TABLES),
        *(table.create(dialect) for table in SCHEMA_4_TABLES),
        *schema_5_ddl(dialect),
    )
