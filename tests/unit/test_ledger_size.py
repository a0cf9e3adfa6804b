"""Bytes per exposure of a SQLite ledger (issue #12: at most 200 before
archiving). Filled the way the service writes: UUID request ids, customer ids
for most requests, grouped commits of 16, 30 % labelled. The same rows in
the schema-1 layout take more than 200 bytes, so the bound can fail."""

from __future__ import annotations

import random
import sqlite3
import uuid
from dataclasses import replace
from pathlib import Path

from ab_router.ledger import SqliteLedger
from ab_router.ledger.codecs import EXPOSURE_COLUMNS, exposure_row
from ab_router.records import Exposure, UnitKind
from tests.support.ledgers import CONFIG, exposure
from tests.unit.test_ledger import SCHEMA_BEFORE_THE_PACKAGE

EXPOSURES = 12_000
LIMIT = 200


def _traffic() -> list[Exposure]:
    rng = random.Random(3)
    rows = []
    for i in range(EXPOSURES):
        customer = rng.random() < 0.9
        p = rng.random()
        rows.append(
            replace(
                exposure(rng.choice(["v1", "v2"])),
                request_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                unit_kind=UnitKind.CUSTOMER if customer else UnitKind.REQUEST,
                unit_id=f"{rng.randint(1000, 9999)}-VHVEG" if customer else None,
                churn_probability=p,
                prediction=int(p >= 0.5),
                latency_ms=rng.lognormvariate(2.5, 0.5),
                created_at=1.7e9 + i / 120,
                experiment="exp",
            )
        )
    return rows


def _bytes_per_exposure(path: Path) -> float:
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        free = connection.execute("PRAGMA freelist_count").fetchone()[0]
        size = connection.execute("PRAGMA page_size").fetchone()[0]
    connection.close()
    return (pages - free) * size / EXPOSURES


def test_an_exposure_takes_at_most_200_bytes(tmp_path: Path) -> None:
    rows = _traffic()
    path = tmp_path / "ledger.sqlite3"
    ledger = SqliteLedger(path)
    ledger.ensure_experiment(CONFIG)
    for start in range(0, EXPOSURES, 16):
        ledger.record_exposures(rows[start : start + 16])
    for e in rows[: EXPOSURES * 3 // 10]:
        ledger.label_request(e.request_id, e.churn_probability > 0.6, observed_at=1.0)
    ledger.close()
    compact = _bytes_per_exposure(path)

    old = tmp_path / "schema1.sqlite3"
    with sqlite3.connect(old) as connection:
        connection.executescript(SCHEMA_BEFORE_THE_PACKAGE)
        labelled = {e.request_id for e in rows[: EXPOSURES * 3 // 10]}
        schema_1 = [
            replace(e, label=1, labelled_at=1.0) if e.request_id in labelled else e
            for e in rows
        ]
        columns = EXPOSURE_COLUMNS.rsplit(", model_id", 1)[0] + ", observed_at"
        connection.executemany(
            f"INSERT INTO exposures ({columns}) VALUES ({', '.join('?' * 19)})",
            [
                (*exposure_row(e)[:18], 1.0 if e.label is not None else None)
                for e in schema_1
            ],
        )
    connection.close()
    before = _bytes_per_exposure(old)
    assert compact <= LIMIT < before, (compact, before)
