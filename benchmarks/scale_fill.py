"""Fill a ledger with N exposures fast: rows and their rollups in bulk.

The ledger's own record path (``record_exposures``) computes each row's
rollup contribution in Python, about 3,000 rows/s on the benchmark machine:
ten million rows would take an hour. This loader writes the same rows and
the same rollups in one transaction per batch, with the rollup contribution
of the whole batch computed vectorised by the statistics' own constructors
(``LabelledSums.from_arrays``, ``latency.latency_us`` / ``bucket_of``) and
written through the ledger's own upsert (``rollups.apply``). Afterwards
``verify`` (``python -m ab_router rollups --verify``) checks that the
rollups equal a recomputation from the rows, so a loader bug cannot pass
for a fast ledger.

Rows have the service's shape: a uuid request id (16 bytes on SQLite), a
customer id, the default experiment, a 50/50 split, realistic scores,
latencies, and labels (30 % by default) written with the row.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np

from ab_router.config import ExperimentConfig
from ab_router.ledger import Ledger, rollups, schema
from ab_router.ledger.codecs import EXPOSURE_COLUMNS, compact_request_id
from ab_router.ledger.cursor import Cursor
from ab_router.records import Mode, UnitKind
from ab_router.statistics import latency
from ab_router.statistics.labelled_sums import LabelledSums

BATCH = 100_000
_INSERT = (
    f"INSERT INTO exposures ({EXPOSURE_COLUMNS}) "
    f"VALUES ({', '.join('?' * len(EXPOSURE_COLUMNS.split(',')))})"
)


def _batch(
    rng: np.random.Generator,
    first: int,
    size: int,
    start: float,
    labelled: float,
) -> dict[str, Any]:
    y = rng.random(size) < 0.27
    score = np.clip(rng.beta(2, 5, size) + 0.25 * y, 0.0, 1.0)
    return {
        "v2": rng.random(size) < 0.5,
        "y": y.astype(np.int64),
        "score": score,
        "prediction": (score >= 0.5).astype(np.int64),
        "latency": rng.lognormal(np.log(4.0), 0.5, size),
        "has_label": rng.random(size) < labelled,
        "created": start + (first + np.arange(size)) / 120.0,
        "ids": _uuid4_bytes(rng, size),
    }


def _uuid4_bytes(rng: np.random.Generator, size: int) -> bytes:
    """``size`` random version-4 UUIDs, 16 bytes each, back to back."""
    raw = rng.integers(0, 256, (size, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    return raw.tobytes()


def _stored_ids(ids: bytes, size: int, compact: bool) -> list[object]:
    """The ids as the backend stores them: SQLite keeps a canonical UUID as
    its 16 bytes (``compact_request_id``), PostgreSQL as its text."""
    chunks = [ids[16 * i : 16 * i + 16] for i in range(size)]
    if compact:
        return list(chunks)
    return [str(uuid.UUID(bytes=c)) for c in chunks]


def _rows(
    b: dict[str, Any],
    first: int,
    experiment: str,
    epoch: int,
    models: Mapping[str, int],
    compact: bool,
) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    v2, y, has = b["v2"].tolist(), b["y"].tolist(), b["has_label"].tolist()
    ids = _stored_ids(b["ids"], len(v2), compact)
    score, pred = b["score"].tolist(), b["prediction"].tolist()
    lat, created = b["latency"].tolist(), b["created"].tolist()
    for i in range(len(v2)):
        variant = "v2" if v2[i] else "v1"
        label = y[i] if has[i] else None
        out.append((
            ids[i], experiment, epoch, variant, variant,
            UnitKind.CUSTOMER.value, f"cust-{first + i:09d}", Mode.SPLIT.value,
            score[i], pred[i], lat[i], created[i], 0, None, None, None,
            label, None if label is None else created[i] + 3600.0,
            models[variant], None,
        ))  # fmt: skip
    return out


def _delta(
    b: dict[str, Any], experiment: str, epoch: int, models: Mapping[str, int]
) -> rollups.Delta:
    """The batch's rollup contribution, as ``record_exposures`` would add it."""
    delta = rollups.Delta()
    us = latency.latency_us(b["latency"])
    buckets = latency.bucket_of(us)
    for variant, mine in (("v1", ~b["v2"]), ("v2", b["v2"])):
        model = models[variant]
        cell = (experiment, epoch, variant, variant, 0, Mode.SPLIT.value, model, "")
        lat = b["latency"][mine]
        delta.tables[schema.TRAFFIC_CELLS.name][cell] = [
            int(mine.sum()), int(b["prediction"][mine].sum()),
            int(b["has_label"][mine].sum()), float(b["score"][mine].sum()),
            int(us[mine].sum()), float(lat.min()), float(lat.max()),
        ]  # fmt: skip
        found, counts = np.unique(buckets[mine], return_counts=True)
        for bucket, count in zip(found.tolist(), counts.tolist(), strict=True):
            delta.tables[schema.TRAFFIC_BUCKETS.name][(*cell, bucket)] = [count]
        lab = mine & b["has_label"]
        sums = LabelledSums.from_arrays(
            b["score"][lab], b["y"][lab], b["prediction"][lab]
        )
        key = (experiment, epoch, variant, model)
        delta.tables[schema.LABELLED_SUMS.name][key] = list(sums.columns())
        for label, bin_, count in sums.scores.bin_rows():
            delta.tables[schema.LABELLED_SCORE_BINS.name][(*key, label, bin_)] = [count]
    return delta


def fill(
    ledger: Ledger,
    config: ExperimentConfig,
    n: int,
    *,
    models: Mapping[str, int] | None = None,
    labelled: float = 0.3,
    seed: int = 0,
    progress: bool = True,
) -> float:
    """Write ``n`` exposures into the current epoch; returns seconds taken."""
    state = ledger.ensure_experiment(config)
    models = dict(models or {"v1": 0, "v2": 0})
    rng = np.random.default_rng(seed)
    compact = ledger._store_id is compact_request_id
    start = time.time() - n / 120.0  # 120 req/s up to now
    started = time.monotonic()
    for first in range(0, n, BATCH):
        size = min(BATCH, n - first)
        b = _batch(rng, first, size, start, labelled)
        rows = _rows(b, first, config.name, state.epoch, models, compact)
        delta = _delta(b, config.name, state.epoch, models)

        def work(cursor: Cursor, rows: Any = rows, delta: Any = delta) -> None:
            cursor.executemany(_INSERT, rows)
            ledger._write_rollups(cursor, delta)

        ledger._transaction(work, "bulk load")
        done = first + size
        if progress and (done // BATCH) % 10 == 0:
            rate = done / (time.monotonic() - started)
            print(f"  {done:,} of {n:,} ({rate:,.0f}/s)", flush=True)
    return time.monotonic() - started
