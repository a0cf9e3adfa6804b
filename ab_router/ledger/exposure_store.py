"""Exposures in the ledger: writing them (with their rollups) and reading them.

Every write commits the rows and the rollup deltas they cause in one
transaction and returns once they are durable.
"""

from __future__ import annotations

from collections.abc import Sequence

from ab_router.ledger.codecs import (
    EXPOSURE_COLUMNS,
    exposure_from_row,
    exposure_row,
    request_id_of,
)
from ab_router.ledger.cursor import Cursor
from ab_router.ledger.hooks import LedgerHooks
from ab_router.ledger.rollups import ROLLUP_COLUMNS, Delta, RollupRow
from ab_router.records import UNKNOWN_MODEL_ID, Exposure

_INSERT_EXPOSURE = (
    f"INSERT INTO exposures ({EXPOSURE_COLUMNS}) "
    f"VALUES ({', '.join(['?'] * len(EXPOSURE_COLUMNS.split(',')))})"
)

# Request ids per statement of a shadow batch (SQLite allows 32,766 "?").
_IDS_PER_READ = 500


class ExposureStore(LedgerHooks):
    """The exposure part of ``Ledger``."""

    def record_exposures(self, exposures: Sequence[Exposure]) -> None:
        """Commit exposures and their rollups in one transaction; returns once
        they are durable. (``executemany``: a batch is prepared once, and the
        rollups take one upsert per touched key, not one per row.)"""
        rows = [exposure_row(e, self._store_id) for e in exposures]
        if not rows:
            return
        delta = Delta()
        delta.add_rows(RollupRow.of_exposure(e) for e in exposures)

        def work(cursor: Cursor) -> None:
            cursor.executemany(_INSERT_EXPOSURE, rows)
            self._write_rollups(cursor, delta)

        self._transaction(work, "commit")

    def record_shadow_scores(
        self,
        variant: str,
        scores: Sequence[tuple[str, float, int]],
        model_id: int = UNKNOWN_MODEL_ID,
    ) -> None:
        """Attach the challenger's (request id, probability, prediction), scored
        by model version ``model_id``; unknown request ids are skipped.

        The rows are read (and locked) first: a row already labelled adds its
        pair to the paired sums, and a score recorded again replaces the old
        one's contribution.
        """
        if not scores:
            return

        def work(cursor: Cursor) -> None:
            current = self._rows_for_update(cursor, [rid for rid, _, _ in scores])
            delta, updates = Delta(), []
            for rid, p, prediction in scores:
                before = current.get(rid)
                if before is None:
                    continue
                after = before._replace(
                    shadow_variant=variant,
                    shadow_probability=p,
                    shadow_prediction=prediction,
                    shadow_model_id=model_id,
                )
                delta.add_rows([before], -1)
                delta.add_rows([after])
                current[rid] = after
                updates.append((variant, p, prediction, model_id, self._store_id(rid)))
            cursor.executemany(
                "UPDATE exposures SET shadow_variant = ?, shadow_probability = ?, "
                "shadow_prediction = ?, shadow_model_id = ? WHERE request_id = ?",
                updates,
            )
            self._write_rollups(cursor, delta)

        self._transaction(work, "commit")

    def _rows_for_update(
        self, cursor: Cursor, request_ids: Sequence[str]
    ) -> dict[str, RollupRow]:
        # Sorted, so that two batches lock shared rows in the same order.
        ids = sorted(set(request_ids))
        out: dict[str, RollupRow] = {}
        for start in range(0, len(ids), _IDS_PER_READ):
            chunk = ids[start : start + _IDS_PER_READ]
            cursor.execute(
                f"SELECT {ROLLUP_COLUMNS} FROM exposures WHERE request_id IN "
                f"({', '.join('?' * len(chunk))}) ORDER BY request_id"
                f"{self._for_update}",
                [self._store_id(rid) for rid in chunk],
            )
            out.update(
                (request_id_of(r[0]), RollupRow.of(r)) for r in cursor.fetchall()
            )
        return out

    def exposures(self, experiment: str, epoch: int | None = None) -> list[Exposure]:
        params: tuple[object, ...]
        where, params = "experiment = ?", (experiment,)
        if epoch is not None:
            where, params = "experiment = ? AND epoch = ?", (experiment, epoch)
        rows = self._read(
            f"SELECT {EXPOSURE_COLUMNS} FROM exposures "
            f"WHERE {where} ORDER BY {self._exposure_order}",
            params,
        )
        return [exposure_from_row(r) for r in rows]
