"""``Ledger``: every operation of the experiment ledger, written once.

A backend (``SqliteLedger``, ``PostgresLedger``) subclasses ``Ledger`` and
supplies only what differs (:class:`~ab_router.ledger.hooks.LedgerHooks`):
its connection (``_read``, ``_read_chunks``, ``close``), its transaction
(``_transaction``: run a body, commit, or roll back and raise), its locking
(``_lock_for_startup``, ``_for_update``) and its dialect's SQL templates.
Every write commits before it returns; ``change_state`` returns False when
another process changed the experiment first; labels are idempotent.

The operations live in one module per concern, each a part over the same
hooks: experiment state (:mod:`.experiment_store`), exposures
(:mod:`.exposure_store`), labels (:mod:`.labels`), model versions
(:mod:`.model_versions`), rollups and retention (:mod:`.rollup_store`), the
live statistics' reads (:mod:`.statistics_reads`) and drift counts
(:mod:`.drift_counts`).
"""

from __future__ import annotations

from ab_router.ledger.drift_counts import DriftCountsStore
from ab_router.ledger.experiment_store import ExperimentStore
from ab_router.ledger.exposure_store import ExposureStore
from ab_router.ledger.labels import LabelStore
from ab_router.ledger.model_versions import ModelVersionStore
from ab_router.ledger.rollup_store import RollupStore
from ab_router.ledger.statistics_reads import StatisticsReads


class Ledger(
    ExperimentStore,
    ExposureStore,
    LabelStore,
    ModelVersionStore,
    RollupStore,
    StatisticsReads,
    DriftCountsStore,
):
    """The ledger operations the service and the report use."""
