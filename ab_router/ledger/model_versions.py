"""Model versions and the models that serve each epoch (issue #18).

A model version is a (variant, tag) pair with a compact id the exposures
carry; ``epoch_models`` records which of them served an epoch. Two models
recorded for one variant and epoch are the mixed-models condition.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from ab_router.ledger import schema
from ab_router.ledger.cursor import Cursor
from ab_router.ledger.hooks import LedgerHooks
from ab_router.records import EpochModel, ModelVersion


class ModelVersionStore(LedgerHooks):
    """The model-version part of ``Ledger``."""

    def register_model_version(self, variant: str, tag: str) -> int:
        """The compact id of ``variant``'s model ``tag``, created on first use.

        Idempotent, and safe when workers and replicas register the same tag
        at once: the (variant, tag) pair is unique, the losers' INSERT does
        nothing, and every caller reads back the one id.
        """
        if not tag:
            raise ValueError("a model tag must not be empty")

        def work(cursor: Cursor) -> int:
            cursor.execute(
                "INSERT INTO model_versions (variant, tag, registered_at) "
                "VALUES (?, ?, ?) ON CONFLICT (variant, tag) DO NOTHING",
                (variant, tag, time.time()),
            )
            cursor.execute(
                "SELECT id FROM model_versions WHERE variant = ? AND tag = ?",
                (variant, tag),
            )
            return int(cursor.fetchone()[0])

        return self._transaction(work, "register the model version")

    def model_versions(self) -> dict[int, ModelVersion]:
        """Every registered model version by id (id 0: unknown before upgrade)."""
        rows = self._read("SELECT id, variant, tag FROM model_versions ORDER BY id")
        return {int(i): ModelVersion(int(i), str(v), str(t)) for i, v, t in rows}

    def record_epoch_models(
        self,
        experiment: str,
        epoch: int,
        models: Mapping[str, int],
        *,
        actor: str,
    ) -> None:
        """Record that ``models`` (variant -> model id) serve ``epoch``.

        Idempotent: a (variant, model) already recorded for the epoch keeps
        its first time and actor. Two models recorded for one variant and
        epoch are the mixed-models condition, for the caller to act on.
        """
        rows = [
            (experiment, epoch, variant, model_id, time.time(), actor)
            for variant, model_id in sorted(models.items())
        ]
        if not rows:
            return
        table = schema.EPOCH_MODELS
        sql = (
            f"INSERT INTO {table.name} ({', '.join(table.key_names)}, recorded_at, "
            f"actor) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
        )
        self._transaction(lambda c: c.executemany(sql, rows), "record the models")

    def epoch_models(self, experiment: str, epoch: int) -> list[EpochModel]:
        """The models recorded for an epoch, in the order they were recorded."""
        rows = self._read(
            "SELECT e.variant, e.model_id, m.tag, e.recorded_at, e.actor "
            "FROM epoch_models e JOIN model_versions m ON m.id = e.model_id "
            "WHERE e.experiment = ? AND e.epoch = ? "
            "ORDER BY e.recorded_at, e.variant, e.model_id",
            (experiment, epoch),
        )
        return [
            EpochModel(experiment, epoch, str(v), int(m), str(t), float(at), str(a))
            for v, m, t, at, a in rows
        ]
