"""The reads the live statistics make: column arrays and one GROUP BY.

``StatisticsReads`` is the part of ``Ledger`` that serves
``ab_router.statistics``: exposures straight into numpy column arrays
(``ExposureArrays``), without one object per row, and an epoch's traffic
(counts, predicted churn, latency histograms) aggregated in SQL, so the
answer has a row per group and latency bucket, never one per exposure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ab_router.ledger.hooks import LedgerHooks
from ab_router.statistics import latency
from ab_router.statistics.exposure_arrays import ExposureArrays
from ab_router.statistics.traffic_summary import EpochTraffic, TrafficKey

# The columns the statistics read, in ExposureArrays' order.
ARRAY_COLUMNS = (
    "experiment, epoch, variant, assigned_variant, mode, fallback, "
    "churn_probability, prediction, latency_ms, created_at, label, labelled_at, "
    "shadow_variant, shadow_probability, shadow_prediction"
)
_STRING_COLUMNS = (0, 2, 3, 4, 12)
_INT_COLUMNS = {1: 0, 5: 0, 7: 0, 14: -1}  # column -> value for NULL
_FLOAT_COLUMNS = (6, 8, 9, 10, 11, 13)  # NULL -> NaN


class _ColumnBuffers:
    """Preallocated arrays for rows of ``ARRAY_COLUMNS``; strings as codes."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.filled = 0
        self.floats = {c: np.full(size, np.nan) for c in _FLOAT_COLUMNS}
        self.ints = {
            c: np.full(size, null, dtype=np.int64) for c, null in _INT_COLUMNS.items()
        }
        self.codes = {c: np.zeros(size, dtype=np.int64) for c in _STRING_COLUMNS}
        self.names: dict[int, dict[object, int]] = {c: {} for c in _STRING_COLUMNS}

    def _grow(self, grow: int) -> None:
        self.size += grow
        for arrays, fill in ((self.floats, np.nan), (self.codes, 0)):
            for c in arrays:
                arrays[c] = np.concatenate([arrays[c], np.full(grow, fill)])
        for c, null in _INT_COLUMNS.items():
            self.ints[c] = np.concatenate([self.ints[c], np.full(grow, null, np.int64)])

    def add(self, chunk: Sequence[Sequence[object]]) -> None:
        n = len(chunk)
        if self.filled + n > self.size:  # rows arrived since the count: grow
            self._grow(self.filled + n - self.size)
        block = list(zip(*chunk, strict=True)) if chunk else []
        if not block:
            return
        start, end = self.filled, self.filled + n
        for c in _FLOAT_COLUMNS:
            self.floats[c][start:end] = [np.nan if v is None else v for v in block[c]]
        for c, null in _INT_COLUMNS.items():
            self.ints[c][start:end] = [null if v is None else v for v in block[c]]
        for c in _STRING_COLUMNS:
            table = self.names[c]
            self.codes[c][start:end] = [
                table.setdefault(v, len(table)) for v in block[c]
            ]
        self.filled = end

    def strings(self, c: int) -> NDArray[np.str_]:
        labels = np.array([str(k or "") for k in self.names[c]] or [""], dtype=str)
        return labels[self.codes[c][: self.filled]]

    def arrays(self) -> ExposureArrays:
        n, floats, ints = self.filled, self.floats, self.ints
        return ExposureArrays(
            experiment=self.strings(0),
            epoch=ints[1][:n],
            variant=self.strings(2),
            assigned=self.strings(3),
            mode=self.strings(4),
            fallback=ints[5][:n].astype(bool),
            probability=floats[6][:n],
            prediction=ints[7][:n],
            latency_ms=floats[8][:n],
            created_at=floats[9][:n],
            label=floats[10][:n],
            labelled_at=floats[11][:n],
            shadow_variant=self.strings(12),
            shadow_probability=floats[13][:n],
            shadow_prediction=ints[14][:n],
        )


def exposure_column_arrays(
    chunks: Iterable[Sequence[Sequence[object]]], expected_rows: int
) -> ExposureArrays:
    """Fill ExposureArrays from row chunks of ``ARRAY_COLUMNS``."""
    buffers = _ColumnBuffers(max(expected_rows, 0))
    for chunk in chunks:
        buffers.add(chunk)
    return buffers.arrays()


def traffic_sql(floor_sql: str) -> str:
    """The GROUP BY behind ``epoch_traffic``; ``floor_sql`` as in ``Ledger``."""
    # The same IEEE operations as latency.latency_us and bucket_of, so SQL
    # and numpy agree to the microsecond and the bucket.
    ms = (
        "CASE WHEN latency_ms > 0 THEN (CASE WHEN latency_ms < "
        f"{latency.MAX_LATENCY_MS:.1f} THEN latency_ms ELSE "
        f"{latency.MAX_LATENCY_MS:.1f} END) ELSE 0.0 END"
    )
    us = floor_sql.format(f"({ms}) * 1000.0 + 0.5")
    bucket = (
        f"CASE WHEN us < {latency.FINE_LIMIT_US} "
        f"THEN us / {latency.FINE_WIDTH_US} "
        f"WHEN us < {latency.COARSE_LIMIT_US} "
        f"THEN {latency.FIRST_COARSE_BUCKET} "
        f"+ (us - {latency.FINE_LIMIT_US}) / {latency.COARSE_WIDTH_US} "
        f"ELSE {latency.OVERFLOW_BUCKET} END"
    )
    # experiment and epoch are fixed by the WHERE: grouping on them too
    # would only lengthen the sort behind the GROUP BY.
    return (
        "SELECT variant, assigned_variant, mode, fallback, shadow, "
        f"{bucket}, COUNT(*), SUM(prediction), SUM(us), "
        "MIN(latency_ms), MAX(latency_ms) FROM ("
        "SELECT variant, assigned_variant, mode, fallback, "
        "CASE WHEN shadow_probability IS NULL THEN '' "
        "ELSE COALESCE(shadow_variant, '') END AS shadow, "
        f"prediction, latency_ms, {us} AS us "
        "FROM exposures WHERE experiment = ? AND epoch = ?"
        ") AS e GROUP BY 1, 2, 3, 4, 5, 6"
    )


def bucket_row(
    experiment: str, epoch: int, r: Sequence[Any]
) -> tuple[TrafficKey, int, int, int, int, float, float]:
    """One row of ``traffic_sql`` with Python types (PostgreSQL answers SUM of
    a bigint as a Decimal)."""
    variant, assigned, mode, fallback, shadow = r[:5]
    key = TrafficKey(
        experiment, epoch, str(variant), str(assigned), str(mode), bool(fallback),
        str(shadow),
    )  # fmt: skip
    return key, int(r[5]), int(r[6]), int(r[7]), int(r[8]), float(r[9]), float(r[10])


class StatisticsReads(LedgerHooks):
    """What the live statistics read, over the backend's hooks: ``_read``,
    ``_read_chunks``, ``_exposure_order`` and ``_floor_sql``
    (:class:`~ab_router.ledger.hooks.LedgerHooks`)."""

    def epoch_counts(self, experiment: str, epoch: int) -> tuple[int, int]:
        """(exposures, labels) of an epoch: a cheap change detector.

        Read from the traffic rollup (a row per traffic key), never a
        COUNT(*) over the epoch's exposures."""
        rows = self._read(
            "SELECT SUM(requests), SUM(labelled) FROM traffic_cells "
            "WHERE experiment = ? AND epoch = ?",
            (experiment, epoch),
        )
        exposures, labels = rows[0] if rows else (None, None)
        return int(exposures or 0), int(labels or 0)

    def count_exposures(self, experiment: str, epoch: int) -> dict[str, int]:
        """Exposures per answering variant (from the traffic rollup)."""
        rows = self._read(
            "SELECT variant, SUM(requests) FROM traffic_cells "
            "WHERE experiment = ? AND epoch = ? GROUP BY variant "
            "HAVING SUM(requests) > 0 ORDER BY variant",
            (experiment, epoch),
        )
        return {str(variant): int(n) for variant, n in rows}

    def exposure_arrays(self, experiment: str, epoch: int) -> ExposureArrays:
        """An epoch's exposures as column arrays, without one object per row.

        Rows are read in chunks straight into preallocated arrays, a few bytes
        per exposure and column: still O(epoch), so the live statistics read
        :meth:`labelled_arrays` and :meth:`epoch_traffic` instead.
        """
        return self._arrays(
            experiment, epoch, "", self.epoch_counts(experiment, epoch)[0]
        )

    def labelled_arrays(self, experiment: str, epoch: int) -> ExposureArrays:
        """Only the labelled exposures of an epoch, as column arrays.

        With :meth:`epoch_traffic` this is all the live statistics read:
        memory O(labels), however much unlabelled traffic the epoch holds.
        """
        labels = self.epoch_counts(experiment, epoch)[1]
        return self._arrays(experiment, epoch, "AND label IS NOT NULL ", labels)

    def _arrays(
        self, experiment: str, epoch: int, condition: str, expected_rows: int
    ) -> ExposureArrays:
        return exposure_column_arrays(
            self._read_chunks(
                f"SELECT {ARRAY_COLUMNS} FROM exposures "
                f"WHERE experiment = ? AND epoch = ? {condition}"
                f"ORDER BY {self._exposure_order}",
                (experiment, epoch),
            ),
            expected_rows=expected_rows,
        )

    def epoch_traffic(self, experiment: str, epoch: int) -> EpochTraffic:
        """Counts, predicted churn and latency histograms of an epoch by group.

        One GROUP BY in the database. Equal to
        ``EpochTraffic.from_arrays(self.exposure_arrays(...))`` (a test on
        both backends proves it).
        """
        rows = self._read(traffic_sql(self._floor_sql), (experiment, epoch))
        return EpochTraffic.from_bucket_rows(
            bucket_row(experiment, epoch, r) for r in rows
        )
