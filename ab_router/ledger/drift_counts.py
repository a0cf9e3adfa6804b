"""Live drift counts and the labelled window: the ledger part of drift detection.

``drift_counts`` holds one row per (experiment, epoch, variant, model tag,
hour): the per-bin counts (``DriftCounts``) of the requests that variant's
model answered in that hour, as JSON, plus the numbers of rows and scores
behind them. Entry workers add deltas to their row (an upsert that adds, in
one transaction), so the counts of every worker and replica sum in one
place, and a read is bounded by hours × variants × model tags, never by
traffic. The counts are derived, not experiment records: the exposures stay
the truth.

``recent_labels`` reads the last N labelled exposures of a variant (the
concept-drift window) through the ``exposures_by_label`` index, so its cost is
N rows whatever the size of the ledger.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ab_router.ledger.cursor import Cursor
from ab_router.ledger.hooks import LedgerHooks
from ab_router.statistics.psi import DriftCounts

SECONDS_PER_HOUR = 3600


@dataclass(frozen=True, order=True)
class DriftKey:
    """One row of ``drift_counts``; ``hour`` is ``floor(unix seconds / 3600)``."""

    experiment: str
    epoch: int
    variant: str
    model_tag: str
    hour: int


def hour_of(timestamp: float) -> int:
    return int(timestamp // SECONDS_PER_HOUR)


def counts_json(counts: DriftCounts) -> str:
    return json.dumps(
        {"features": [list(f) for f in counts.features], "score": list(counts.score)},
        separators=(",", ":"),
    )


def counts_from_row(text: str, rows: int, scored: int) -> DriftCounts:
    stored = json.loads(text)
    return DriftCounts(
        features=tuple(tuple(int(c) for c in f) for f in stored["features"]),
        score=tuple(int(c) for c in stored["score"]),
        rows=int(rows),
        scored=int(scored),
    )


_KEY = "experiment = ? AND epoch = ? AND variant = ? AND model_tag = ? AND hour = ?"


class DriftCountsStore(LedgerHooks):
    """The drift part of ``Ledger`` (over its ``_transaction`` and ``_read``)."""

    def add_drift_counts(self, deltas: Mapping[DriftKey, DriftCounts]) -> None:
        """Add each delta to its row (created at zero), all in one transaction."""
        if not deltas:
            return
        now = time.time()

        def work(cursor: Cursor) -> None:
            # One order for every writer, so two never wait on each other's rows.
            for key in sorted(deltas):
                delta = deltas[key]
                params = (
                    key.experiment,
                    key.epoch,
                    key.variant,
                    key.model_tag,
                    key.hour,
                )
                empty = DriftCounts(
                    tuple((0,) * len(f) for f in delta.features),
                    (0,) * len(delta.score),
                )
                # Creating the row first makes the read-add-write below the
                # same statement sequence on both dialects, and the row lock
                # (or SQLite's writer lock) serialises concurrent adders.
                cursor.execute(
                    "INSERT INTO drift_counts (experiment, epoch, variant, model_tag,"
                    " hour, binned_rows, binned_scores, counts, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, 0, 0, ?, ?) ON CONFLICT DO NOTHING",
                    (*params, counts_json(empty), now),
                )
                cursor.execute(
                    "SELECT counts, binned_rows, binned_scores FROM drift_counts "
                    f"WHERE {_KEY}{self._for_update}",
                    params,
                )
                text, rows, scored = cursor.fetchone()
                total = counts_from_row(text, rows, scored) + delta
                cursor.execute(
                    "UPDATE drift_counts SET counts = ?, binned_rows = ?, "
                    f"binned_scores = ?, updated_at = ? WHERE {_KEY}",
                    (counts_json(total), total.rows, total.scored, now, *params),
                )

        self._transaction(work, "record drift counts")

    def drift_counts(
        self, experiment: str, epoch: int, *, since_hour: int | None = None
    ) -> dict[tuple[str, str], DriftCounts]:
        """Counts per (variant, model tag) of an epoch, from ``since_hour`` on."""
        sql = (
            "SELECT variant, model_tag, counts, binned_rows, binned_scores "
            "FROM drift_counts "
            "WHERE experiment = ? AND epoch = ?"
        )
        params: tuple[object, ...] = (experiment, epoch)
        if since_hour is not None:
            sql, params = sql + " AND hour >= ?", (*params, since_hour)
        totals: dict[tuple[str, str], DriftCounts] = {}
        for variant, tag, text, rows, scored in self._read(sql, params):
            counts = counts_from_row(text, rows, scored)
            key = (str(variant), str(tag))
            totals[key] = totals[key] + counts if key in totals else counts
        return totals

    def recent_labels(
        self, experiment: str, epoch: int, variant: str, limit: int
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(scores, labels) of the variant's last ``limit`` labelled answers."""
        rows = self._read(
            "SELECT churn_probability, label FROM exposures "
            "WHERE experiment = ? AND epoch = ? AND variant = ? "
            "AND labelled_at IS NOT NULL ORDER BY labelled_at DESC LIMIT ?",
            (experiment, epoch, variant, int(limit)),
        )
        pairs = np.asarray(rows, dtype=np.float64).reshape(-1, 2)
        return pairs[:, 0], pairs[:, 1]
