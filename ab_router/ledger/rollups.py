"""Rollups: what the live view reads, kept in the same transaction as the rows.

Every write to an exposure row (insert, shadow score, label) changes the
rollups by the row's contribution after the write minus its contribution
before, aggregated in Python first (:class:`Delta`), so a grouped commit of
many exposures makes one upsert per touched key and table, not one per row.
All values are additive (counts and sums), so a contribution can be taken
back exactly for counts and to rounding for float sums.

Tables (``ab_router.ledger.schema``):

- ``traffic_cells`` / ``traffic_buckets``: per (experiment, epoch, variant,
  assigned variant, fallback, mode, model id, shadow variant) the requests,
  predicted churn, labelled rows, Σ score, Σ latency (µs), min and max
  latency, and requests per latency bucket of ``statistics.latency``: the
  ``epoch_traffic`` GROUP BY, maintained. A row moves from shadow variant ""
  to its shadow cell when the challenger's score lands; min and max cannot
  be taken back, so a cell's bounds are only ever widened. Every row is
  inside the bounds of every cell it was ever in, so the bounds over all the
  cells of a key *without* the shadow variant are exact, and that is what
  :meth:`EpochRollup.traffic` reports for each cell (every reader merges the
  shadow cells anyway: latency is per answering or assigned variant).
- ``labelled_sums`` / ``labelled_score_bins``: ``LabelledSums`` per
  (experiment, epoch, variant, model id) over labelled non-fallback rows,
  the variant's own score;
- ``paired_sums`` / ``paired_score_bins`` / ``paired_joint_bins``:
  ``PairedSums`` per (…, shadow variant, shadow model id) over labelled
  non-fallback rows with a shadow score.

The log-loss sums use ``LOG_LOSS_EPS``, the default of the decision config.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ab_router.ledger import schema
from ab_router.ledger.codecs import request_id_of
from ab_router.ledger.cursor import Cursor
from ab_router.records import Exposure
from ab_router.statistics import latency
from ab_router.statistics.labelled_sums import (
    JOINT_BINS,
    SCORE_BINS,
    SUM_TOLERANCE,
    LabelledSums,
    PairedSums,
)
from ab_router.statistics.latency import LatencyHistogram
from ab_router.statistics.model_split import ModelSplit
from ab_router.statistics.quality import LOG_LOSS_EPS
from ab_router.statistics.traffic_summary import EpochTraffic, TrafficCell, TrafficKey

#: What a row contributes is read from these exposure columns.
ROLLUP_COLUMNS = (
    "request_id, experiment, epoch, variant, assigned_variant, fallback, mode, "
    "model_id, churn_probability, prediction, latency_ms, label, shadow_variant, "
    "shadow_probability, shadow_prediction, shadow_model_id"
)

#: ``verify`` accepts a float sum within REL_TOL · max(1, |value|, rows) of
#: the recomputation: adding and taking back contributions rounds in the
#: last bits, in another order than a fresh sum (the statistics' own
#: tolerance, ``labelled_sums.SUM_TOLERANCE``).
REL_TOL = SUM_TOLERANCE


class RollupRow(NamedTuple):
    """An exposure row as the rollups see it (``ROLLUP_COLUMNS``)."""

    request_id: str
    experiment: str
    epoch: int
    variant: str
    assigned_variant: str
    fallback: bool
    mode: str
    model_id: int
    probability: float
    prediction: int
    latency_ms: float
    label: int | None
    shadow_variant: str | None
    shadow_probability: float | None
    shadow_prediction: int | None
    shadow_model_id: int | None

    @classmethod
    def of(cls, r: Sequence[Any]) -> RollupRow:
        """From a database row of ``ROLLUP_COLUMNS`` (Python types)."""
        return cls(
            request_id_of(r[0]), str(r[1]), int(r[2]), str(r[3]), str(r[4]), bool(r[5]),
            str(r[6]), int(r[7]), float(r[8]), int(r[9]), float(r[10]),
            None if r[11] is None else int(r[11]),
            None if r[12] is None else str(r[12]),
            None if r[13] is None else float(r[13]),
            None if r[14] is None else int(r[14]),
            None if r[15] is None else int(r[15]),
        )  # fmt: skip

    @classmethod
    def of_exposure(cls, e: Exposure) -> RollupRow:
        return cls(
            e.request_id, e.experiment, e.epoch, e.variant, e.assigned_variant,
            e.fallback, e.mode.value, e.model_id, e.churn_probability,
            e.prediction, e.latency_ms, e.label, e.shadow_variant,
            e.shadow_probability, e.shadow_prediction, e.shadow_model_id,
        )  # fmt: skip

    @property
    def shadow_key(self) -> str:
        """The shadow variant of the traffic key ("" until a score is stored)."""
        if self.shadow_probability is None:
            return ""
        return self.shadow_variant or ""


def _loss_terms(p: float, y: int) -> tuple[float, float]:
    """(Brier, log loss) of one row, as ``statistics.quality`` computes them."""
    q = min(max(p, LOG_LOSS_EPS), 1.0 - LOG_LOSS_EPS)
    return (p - y) ** 2, -(y * math.log(q) + (1 - y) * math.log1p(-q))


def _score_bin(p: float, bins: int) -> int:
    # Like labelled_sums.score_bins: truncate, 1.0 in the last bin.
    return min(max(int(p * bins), 0), bins - 1)


def _labelled_terms(p: float, y: int, prediction: int) -> dict[str, float]:
    brier, log_loss = _loss_terms(p, y)
    positive, predicted = y == 1, prediction != 0
    return {
        "n": 1,
        "positives": y,
        "tp": int(positive and predicted),
        "fp": int(not positive and predicted),
        "tn": int(not positive and not predicted),
        "fn": int(positive and not predicted),
        "sum_p": p,
        "sum_p2": p * p,
        "sum_py": p * y,
        "brier_sum": brier,
        "brier_sum_sq": brier * brier,
        "logloss_sum": log_loss,
        "logloss_sum_sq": log_loss * log_loss,
    }


@dataclass
class Delta:
    """A change to the rollups, aggregated by key before it is written.

    ``tables[name][key]`` is a list of values in the table's value order.
    """

    tables: dict[str, dict[tuple[Any, ...], list[float]]] = field(
        default_factory=lambda: defaultdict(dict)
    )

    def _add(
        self, table: schema.KeyedTable, key: tuple[Any, ...], values: Sequence[float]
    ) -> None:
        cells = self.tables[table.name]
        known = cells.get(key)
        if known is None:
            cells[key] = list(values)
            return
        for i, v in enumerate(values):
            known[i] += v

    def add_rows(self, rows: Iterable[RollupRow], sign: int = 1) -> None:
        """Add (``sign`` 1) or take back (-1) what ``rows`` contribute."""
        rows = list(rows)
        if not rows:
            return
        us = latency.latency_us([r.latency_ms for r in rows])
        buckets = latency.bucket_of(us)
        for row, micros, bucket in zip(
            rows, us.tolist(), buckets.tolist(), strict=True
        ):
            self._add_row(row, int(micros), int(bucket), sign)

    def _add_row(self, r: RollupRow, micros: int, bucket: int, sign: int) -> None:
        cell = (
            r.experiment, r.epoch, r.variant, r.assigned_variant, int(r.fallback),
            r.mode, r.model_id, r.shadow_key,
        )  # fmt: skip
        labelled = r.label is not None
        # Bounds only widen (see the module docstring): a take-back leaves them.
        low, high = (r.latency_ms, r.latency_ms) if sign > 0 else (math.inf, -math.inf)
        self._add_cell(
            cell,
            [sign, sign * r.prediction, sign * int(labelled), sign * r.probability,
             sign * micros, low, high],
        )  # fmt: skip
        self._add(schema.TRAFFIC_BUCKETS, (*cell, bucket), [sign])
        if not labelled or r.fallback:
            return
        y = int(r.label)  # type: ignore[arg-type]
        own = (r.experiment, r.epoch, r.variant, r.model_id)
        terms = _labelled_terms(r.probability, y, r.prediction)
        table = schema.LABELLED_SUMS
        self._add(table, own, [sign * terms[c] for c in table.value_names])
        self._add_bin(schema.LABELLED_SCORE_BINS, own, r.probability, y, sign)
        if r.shadow_probability is None:
            return
        pair = (*own, r.shadow_key, r.shadow_model_id or schema.UNKNOWN_MODEL_ID)
        self._add_pair(pair, r, y, sign)

    def _add_cell(self, key: tuple[Any, ...], values: list[float]) -> None:
        cells = self.tables[schema.TRAFFIC_CELLS.name]
        known = cells.get(key)
        if known is None:
            cells[key] = values
            return
        for i in range(5):
            known[i] += values[i]
        known[5] = min(known[5], values[5])
        known[6] = max(known[6], values[6])

    def _add_bin(
        self, bins: schema.KeyedTable, key: tuple[Any, ...], p: float, y: int, sign: int
    ) -> None:
        self._add(bins, (*key, y, _score_bin(p, SCORE_BINS)), [sign])

    def _add_pair(self, key: tuple[Any, ...], r: RollupRow, y: int, sign: int) -> None:
        p1, p2 = r.probability, float(r.shadow_probability)  # type: ignore[arg-type]
        pred1, pred2 = r.prediction, int(r.shadow_prediction or 0)
        champion = _labelled_terms(p1, y, pred1)
        challenger = _labelled_terms(p2, y, pred2)
        (b1, l1), (b2, l2) = _loss_terms(p1, y), _loss_terms(p2, y)
        db, dl = b2 - b1, l2 - l1
        right1, right2 = int(pred1 != 0) == y, int(pred2 != 0) == y
        terms = {
            **{f"champion_{c}": v for c, v in champion.items()},
            **{f"challenger_{c}": v for c, v in challenger.items()},
            "mcnemar_b": int(right2 and not right1),
            "mcnemar_c": int(right1 and not right2),
            "bdiff_sum": db,
            "bdiff_sum_sq": db * db,
            "ldiff_sum": dl,
            "ldiff_sum_sq": dl * dl,
        }
        table = schema.PAIRED_SUMS
        self._add(table, key, [sign * terms[c] for c in table.value_names])
        for model, p in ((0, p1), (1, p2)):
            self._add_bin(schema.PAIRED_SCORE_BINS, (*key, model), p, y, sign)
        cell = (y, _score_bin(p1, JOINT_BINS), _score_bin(p2, JOINT_BINS))
        self._add(schema.PAIRED_JOINT_BINS, (*key, *cell), [sign])

    def upserts(
        self, least: str, greatest: str
    ) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
        """(statement, parameter rows) per touched table; ``least``/``greatest``
        are the dialect's two-argument MIN and MAX."""
        for table in schema.ROLLUP_TABLES:
            cells = self.tables.get(table.name)
            if not cells:
                continue
            yield (
                upsert_sql(table, least, greatest),
                [(*key, *values) for key, values in sorted(cells.items())],
            )


def upsert_sql(table: schema.KeyedTable, least: str, greatest: str) -> str:
    """Add a row's values to the stored ones (bounds: the wider of the two)."""
    columns = (*table.key_names, *table.value_names)

    def update(column: str) -> str:
        if column == "min_ms":
            return f"min_ms = {least}({table.name}.min_ms, excluded.min_ms)"
        if column == "max_ms":
            return f"max_ms = {greatest}({table.name}.max_ms, excluded.max_ms)"
        return f"{column} = {table.name}.{column} + excluded.{column}"

    return (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT ({', '.join(table.key_names)}) DO UPDATE SET "
        + ", ".join(update(c) for c in table.value_names)
    )


def apply(cursor: Cursor, delta: Delta, least: str, greatest: str) -> None:
    """Write ``delta`` in the caller's transaction."""
    for sql, rows in delta.upserts(least, greatest):
        cursor.executemany(sql, rows)


def rebuild(cursor: Cursor, least: str, greatest: str, chunk: int = 10_000) -> Delta:
    """Recompute every rollup from the rows, in the caller's transaction.
    Archived epochs keep theirs: their rows are in the archive files."""
    delta = recompute(cursor, chunk)
    for table in schema.ROLLUP_TABLES:
        cursor.execute(
            f"DELETE FROM {table.name} WHERE (experiment, epoch) NOT IN "
            "(SELECT experiment, epoch FROM archives)"
        )
    apply(cursor, delta, least, greatest)
    return delta


def recompute(cursor: Cursor, chunk: int = 10_000) -> Delta:
    """The rollups of every stored row, computed afresh (memory: O(keys))."""
    delta = Delta()
    cursor.execute(f"SELECT {ROLLUP_COLUMNS} FROM exposures")
    while rows := cursor.fetchmany(chunk):
        delta.add_rows(RollupRow.of(r) for r in rows)
    return delta


# -- reading ------------------------------------------------------------------


Fetch = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]
"""Run one ``?``-placeholder read and return its rows."""

EPOCH = "WHERE experiment = ? AND epoch = ?"


def read_table(
    fetch: Fetch, table: schema.KeyedTable, where: str = "", params: Sequence[Any] = ()
) -> dict[tuple[Any, ...], list[float]]:
    columns = (*table.key_names, *table.value_names)
    rows = fetch(f"SELECT {', '.join(columns)} FROM {table.name} {where}", params)
    width = len(table.key_names)
    return {tuple(r[:width]): list(r[width:]) for r in rows}


def cursor_fetch(cursor: Cursor) -> Fetch:
    def fetch(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        cursor.execute(sql, params)
        return list(cursor.fetchall())

    return fetch


def stored(fetch: Fetch) -> Delta:
    """Every stored rollup row, as a Delta (for ``verify``)."""
    delta = Delta()
    for table in schema.ROLLUP_TABLES:
        delta.tables[table.name] = read_table(fetch, table)
    return delta


def read_epoch(fetch: Fetch, experiment: str, epoch: int) -> EpochRollup:
    """One epoch's rollups: a few hundred rows and each key's score bins,
    whatever the epoch's size. The bins (up to 2 × 4,096 per key) are read
    key by key as bare (label, bin, count) rows, straight into the
    histograms: no per-row Python beyond the driver's tuples."""
    params = (experiment, epoch)
    t = {
        table.name: read_table(fetch, table, EPOCH, params)
        for table in (schema.TRAFFIC_CELLS, schema.TRAFFIC_BUCKETS)
    }
    labelled = read_table(fetch, schema.LABELLED_SUMS, EPOCH, params)
    paired = read_table(fetch, schema.PAIRED_SUMS, EPOCH, params)
    cells, buckets = t[schema.TRAFFIC_CELLS.name], t[schema.TRAFFIC_BUCKETS.name]
    models = sorted({int(k[6]) for k, v in cells.items() if v[0]})
    labels: dict[str, int] = defaultdict(int)
    for key, values in cells.items():
        if values[2]:
            labels[str(key[2])] += int(values[2])
    return EpochRollup(
        traffic=traffic_from_tables(cells, buckets),
        traffic_by_model={m: traffic_from_tables(cells, buckets, m) for m in models},
        labelled=_labelled_of_keys(fetch, labelled),
        paired=_paired_of_keys(fetch, paired),
        labels=dict(sorted(labels.items())),
    )


def _key_bins(
    fetch: Fetch, table: schema.KeyedTable, key: tuple[Any, ...], extra: str = ""
) -> list[tuple[Any, ...]]:
    """The non-zero bin rows under ``key``, without it (one indexed read)."""
    width = len(key)
    where = " AND ".join(f"{c} = ?" for c in table.key_names[:width])
    columns = (*table.key_names[width:], *table.value_names)
    return fetch(
        f"SELECT {', '.join(columns)} FROM {table.name} WHERE {where}{extra} "
        f"AND {table.value_names[0]} <> 0",
        key,
    )


def _labelled_of_keys(
    fetch: Fetch, sums: Mapping[tuple[Any, ...], list[float]]
) -> dict[ModelKey, LabelledSums]:
    out = {}
    for key, values in sums.items():
        if values[0]:  # n: every contribution may have been taken back
            rows = _key_bins(fetch, schema.LABELLED_SCORE_BINS, key)
            out[(str(key[2]), int(key[3]))] = LabelledSums.from_columns(values, rows)
    return dict(sorted(out.items()))


def _paired_of_keys(
    fetch: Fetch, sums: Mapping[tuple[Any, ...], list[float]]
) -> dict[PairKey, PairedSums]:
    out = {}
    for key, values in sums.items():
        if values[0]:  # champion_n
            out[(str(key[2]), int(key[3]), str(key[4]), int(key[5]))] = (
                PairedSums.from_columns(
                    values,
                    _key_bins(fetch, schema.PAIRED_SCORE_BINS, (*key, 0)),
                    _key_bins(fetch, schema.PAIRED_SCORE_BINS, (*key, 1)),
                    _key_bins(fetch, schema.PAIRED_JOINT_BINS, key),
                )
            )
    return dict(sorted(out.items()))


#: Sums that move whenever an epoch's rollups do: an exposure (requests, and
#: its cell if the cell is new, e.g. a new model), a shadow score (shadowed
#: requests; on a labelled row the paired sums), a label (labelled, n) and a
#: changed label (positives, and the confusion counts).
_SIGNATURE = (
    f"SELECT (SELECT COUNT(*) FROM traffic_cells {EPOCH}), "
    f"(SELECT COALESCE(SUM(requests), 0) FROM traffic_cells {EPOCH}), "
    f"(SELECT COALESCE(SUM(labelled), 0) FROM traffic_cells {EPOCH}), "
    "(SELECT COALESCE(SUM(CASE WHEN shadow_variant <> '' THEN requests ELSE 0 END), "
    f"0) FROM traffic_cells {EPOCH}), "
    f"(SELECT COALESCE(SUM(n), 0) FROM labelled_sums {EPOCH}), "
    f"(SELECT COALESCE(SUM(positives), 0) FROM labelled_sums {EPOCH}), "
    f"(SELECT COALESCE(SUM(tp + tn), 0) FROM labelled_sums {EPOCH}), "
    f"(SELECT COUNT(*) FROM paired_sums {EPOCH}), "
    f"(SELECT COALESCE(SUM(champion_n), 0) FROM paired_sums {EPOCH}), "
    f"(SELECT COALESCE(SUM(challenger_sum_p), 0) FROM paired_sums {EPOCH})"
)


def signature(fetch: Fetch, experiment: str, epoch: int) -> tuple[float, ...]:
    """A few numbers that change whenever the epoch's rollups change: a cheap
    test of whether a reader's copy is still current (one row, read from
    the rollups' primary keys, whatever the epoch's size)."""
    rows = fetch(_SIGNATURE, (experiment, epoch) * 10)
    return tuple(float(v or 0) for v in rows[0])


@dataclass(frozen=True)
class Mismatch:
    table: str
    key: tuple[Any, ...]
    column: str
    stored: float | None
    recomputed: float | None

    def __str__(self) -> str:
        return (
            f"{self.table} {self.key}: {self.column} is {self.stored}, "
            f"the rows give {self.recomputed}"
        )


def compare(
    stored: Delta,
    recomputed: Delta,
    archived: frozenset[tuple[str, int]] = frozenset(),
) -> list[Mismatch]:
    """Where the stored rollups differ from a recomputation (see REL_TOL);
    ``archived`` (experiment, epoch) pairs have no rows left to compare."""
    out: list[Mismatch] = []
    for table in schema.ROLLUP_TABLES:
        have = {
            k: v
            for k, v in stored.tables.get(table.name, {}).items()
            if (k[0], k[1]) not in archived
        }
        want = recomputed.tables.get(table.name, {})
        counts = _count_columns(table)
        for key in sorted(set(have) | set(want), key=repr):
            a, b = have.get(key), want.get(key)
            if b is None and a is not None and _all_zero(table, a, counts):
                continue  # every contribution taken back again
            for i, column in enumerate(table.value_names):
                x = None if a is None else a[i]
                y = None if b is None else b[i]
                if column in ("min_ms", "max_ms"):
                    continue  # compared per key without the shadow variant
                if not _agree(x, y, column in counts, _rows_of(table, b or a)):
                    out.append(Mismatch(table.name, key, column, x, y))
    out.extend(_compare_bounds(stored, recomputed, archived))
    return out


def _count_columns(table: schema.KeyedTable) -> set[str]:
    return {c.name for c in table.values if "INTEGER" in (c.sqlite or "")}


def _all_zero(table: schema.KeyedTable, values: list[float], counts: set[str]) -> bool:
    return all(
        v == 0 for c, v in zip(table.value_names, values, strict=True) if c in counts
    )


def _rows_of(table: schema.KeyedTable, values: list[float] | None) -> float:
    return 0.0 if values is None else float(values[0])


def _agree(x: float | None, y: float | None, exact: bool, rows: float) -> bool:
    if x is None or y is None:
        return (x or 0) == (y or 0)
    if exact:
        return int(x) == int(y)
    return abs(x - y) <= REL_TOL * max(1.0, abs(x), abs(y), abs(rows))


def _bounds(delta: Delta) -> dict[tuple[Any, ...], tuple[float, float]]:
    out: dict[tuple[Any, ...], tuple[float, float]] = {}
    for key, values in delta.tables.get(schema.TRAFFIC_CELLS.name, {}).items():
        lo, hi = out.get(key[:-1], (math.inf, -math.inf))
        out[key[:-1]] = (min(lo, values[5]), max(hi, values[6]))
    return out


def _compare_bounds(
    stored: Delta, recomputed: Delta, archived: frozenset[tuple[str, int]]
) -> list[Mismatch]:
    have, want = _bounds(stored), _bounds(recomputed)
    want = {k: v for k, v in want.items() if (k[0], k[1]) not in archived}
    out = []
    for key in sorted(want, key=repr):
        got = have.get(key, (math.inf, -math.inf))
        for i, column in enumerate(("min_ms", "max_ms")):
            if got[i] != want[key][i]:
                out.append(
                    Mismatch(
                        schema.TRAFFIC_CELLS.name, key, column, got[i], want[key][i]
                    )
                )
    return out


# -- what the live view reads ---------------------------------------------------------

ModelKey = tuple[str, int]
"""(variant, model id)."""
PairKey = tuple[str, int, str, int]
"""(champion, its model id, challenger, its model id)."""


@dataclass(frozen=True)
class EpochRollup:
    """An epoch as the rollups hold it: O(variants × buckets) to read."""

    traffic: EpochTraffic
    """All models together; equal to ``epoch_traffic`` but for the latency
    bounds, which are those of the cell's key without the shadow variant."""
    traffic_by_model: Mapping[int, EpochTraffic]
    labelled: Mapping[ModelKey, LabelledSums]
    paired: Mapping[PairKey, PairedSums]
    labels: Mapping[str, int] = field(default_factory=dict)
    """Labelled rows by answering variant, fallbacks and every model included
    (what ``/ab-test/stats`` counts; the statistics leave fallbacks out)."""

    @property
    def exposures(self) -> int:
        return self.traffic.requests

    def labelled_split(self) -> ModelSplit[str, int, LabelledSums]:
        """The labelled sums by variant and model, never pooled for statistics."""
        return ModelSplit.from_keyed(self.labelled)

    def paired_split(
        self,
    ) -> ModelSplit[tuple[str, str], tuple[int, int], PairedSums]:
        """The paired sums by (champion, challenger) and their two model ids."""
        return ModelSplit.from_rows(
            (((champion, challenger), (m1, m2)), sums)
            for (champion, m1, challenger, m2), sums in self.paired.items()
        )


def traffic_from_tables(
    cells: Mapping[tuple[Any, ...], list[float]],
    buckets: Mapping[tuple[Any, ...], list[float]],
    model_id: int | None = None,
) -> EpochTraffic:
    """EpochTraffic from rows of ``traffic_cells`` and ``traffic_buckets``
    (of one model, or all of them when ``model_id`` is None)."""

    def wanted(key: tuple[Any, ...]) -> bool:
        return model_id is None or key[6] == model_id

    bounds: dict[tuple[Any, ...], tuple[float, float]] = {}
    for key, v in cells.items():
        if wanted(key):
            bound_key = (*key[:6],)  # the traffic key without model and shadow
            lo, hi = bounds.get(bound_key, (math.inf, -math.inf))
            bounds[bound_key] = (min(lo, v[5]), max(hi, v[6]))
    by_cell: dict[TrafficKey, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for key, (count,) in buckets.items():
        if wanted(key) and count:
            by_cell[_traffic_key(key)][int(key[8])] += int(count)
    merged: dict[TrafficKey, list[float]] = {}
    for key, v in cells.items():
        if not wanted(key) or not v[0]:
            continue
        tk = _traffic_key(key)
        known = merged.setdefault(tk, [0, 0, 0])
        known[0] += int(v[0])
        known[1] += int(v[1])
        known[2] += int(v[4])
    out = []
    for tk, (requests, predicted, sum_us) in merged.items():
        lo, hi = bounds[
            (
                tk.experiment,
                tk.epoch,
                tk.variant,
                tk.assigned,
                int(tk.fallback),
                tk.mode,
            )
        ]
        counts = by_cell[tk]
        histogram = LatencyHistogram(
            int(requests), int(sum_us), lo, hi,
            tuple(sorted((b, c) for b, c in counts.items() if c)),
        )  # fmt: skip
        out.append(TrafficCell(tk, int(requests), int(predicted), histogram))
    return EpochTraffic(tuple(sorted(out, key=lambda c: c.key)))


def _traffic_key(key: tuple[Any, ...]) -> TrafficKey:
    return TrafficKey(
        str(key[0]), int(key[1]), str(key[2]), str(key[3]), str(key[5]),
        bool(key[4]), str(key[7]),
    )  # fmt: skip


def with_key_bounds(traffic: EpochTraffic) -> EpochTraffic:
    """``traffic`` with each cell's latency bounds widened to those of its key
    without the shadow variant: how :class:`EpochRollup` reports them."""
    bounds: dict[tuple[Any, ...], tuple[float, float]] = {}
    for c in traffic.cells:
        k = c.key[:6]
        lo, hi = bounds.get(k, (math.inf, -math.inf))
        bounds[k] = (min(lo, c.latency.min_ms), max(hi, c.latency.max_ms))
    cells = []
    for c in traffic.cells:
        lo, hi = bounds[c.key[:6]]
        h = c.latency
        cells.append(
            TrafficCell(
                c.key, c.requests, c.predicted_churn,
                LatencyHistogram(h.n, h.sum_us, lo, hi, h.buckets),
            )
        )  # fmt: skip
    return EpochTraffic(tuple(cells))


def _bin_rows(
    bins: Mapping[tuple[Any, ...], list[float]], key: tuple[Any, ...]
) -> list[tuple[int, ...]]:
    """The sparse rows under ``key``, without it: (label, bin…, count)."""
    width = len(key)
    return [
        (*(int(x) for x in k[width:]), int(count))
        for k, (count,) in bins.items()
        if k[:width] == key and count
    ]


def labelled_from_tables(
    sums: Mapping[tuple[Any, ...], list[float]],
    bins: Mapping[tuple[Any, ...], list[float]],
) -> dict[ModelKey, LabelledSums]:
    out = {}
    for key, values in sums.items():
        if values[0]:  # n: every contribution may have been taken back
            out[(str(key[2]), int(key[3]))] = LabelledSums.from_columns(
                values, _bin_rows(bins, key)
            )
    return dict(sorted(out.items()))


def paired_from_tables(
    sums: Mapping[tuple[Any, ...], list[float]],
    bins: Mapping[tuple[Any, ...], list[float]],
    joint: Mapping[tuple[Any, ...], list[float]],
) -> dict[PairKey, PairedSums]:
    out = {}
    for key, values in sums.items():
        if values[0]:  # champion_n
            out[(str(key[2]), int(key[3]), str(key[4]), int(key[5]))] = (
                PairedSums.from_columns(
                    values,
                    _bin_rows(bins, (*key, 0)),
                    _bin_rows(bins, (*key, 1)),
                    _bin_rows(joint, key),
                )
            )
    return dict(sorted(out.items()))
