"""The experiment ledger: every exposure, label and change, shared by all workers.

Nothing is ever deleted: a reset starts a new epoch. The modules, each with
one job:

- :mod:`.base`: ``Ledger``, every operation written once over three backend
  hooks (connection, transaction, locking) declared in :mod:`.hooks`, made of
  one part per concern: :mod:`.experiment_store` (state and changes),
  :mod:`.exposure_store` (exposures and shadow scores), :mod:`.model_versions`
  (model versions and epoch models), :mod:`.rollup_store` (rollup reads,
  checks and retention);
- :mod:`.sqlite`, :mod:`.postgres`: the two backends (PostgreSQL for several
  hosts; psycopg is imported only by it);
- :mod:`.schema`: the tables, with both dialects' column types side by side;
- :mod:`.migrations`: the schema version, and the in-place upgrade at open;
- :mod:`.rollups`: traffic and labelled-quality rollups, written in the same
  transaction as the rows, and the O(variants × buckets) epoch read;
- :mod:`.changes`: the SQL of start-up and admin changes;
- :mod:`.labels`: idempotent labels (``LabelStore``);
- :mod:`.codecs`: exposures and transitions to and from rows;
- :mod:`.statistics_reads`: column arrays and the traffic GROUP BY that the
  live statistics read;
- :mod:`.factory`: ``open_ledger``, the backend chosen from configuration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ab_router.ledger.base import Ledger
from ab_router.ledger.codecs import EXPOSURE_COLUMNS, exposure_from_row, exposure_row
from ab_router.ledger.factory import POSTGRES_SCHEMES, open_ledger
from ab_router.ledger.labels import LabelOutcome, LabelResult
from ab_router.ledger.rollups import EpochRollup
from ab_router.ledger.sqlite import SqliteLedger
from ab_router.ledger.statistics_reads import ARRAY_COLUMNS, exposure_column_arrays

if TYPE_CHECKING:
    from ab_router.ledger.postgres import PostgresLedger

__all__ = [
    "ARRAY_COLUMNS",
    "EXPOSURE_COLUMNS",
    "POSTGRES_SCHEMES",
    "EpochRollup",
    "LabelOutcome",
    "LabelResult",
    "Ledger",
    "PostgresLedger",
    "SqliteLedger",
    "exposure_column_arrays",
    "exposure_from_row",
    "exposure_row",
    "open_ledger",
]


def __getattr__(name: str) -> object:
    # PostgresLedger needs psycopg, an optional extra: import it on first use.
    if name == "PostgresLedger":
        from ab_router.ledger.postgres import PostgresLedger

        return PostgresLedger
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
