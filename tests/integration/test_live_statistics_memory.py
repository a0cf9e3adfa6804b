"""The live statistics' memory does not grow with traffic (issues #7, #12).

An epoch of 200,000 exposures, 1 % of them labelled, written behind the
ledger's back and then rolled up (``rebuild_rollups``): computing the entry
service's snapshot (``/ab-test/stats``, ``/metrics``) from the rollups must
peak at a few MB, while reading every exposure as column arrays, as the
service did before issue #7, peaks at tens of MB on the same ledger; that
second measurement shows the test can fail. numpy reports its buffers to
tracemalloc, so array memory is counted. (The cost in rows and SQLite
steps, flat from one epoch to a ten times larger one:
``tests/unit/test_live_statistics_cost.py``.) A scale test, in integration
for its size: filling, rolling up and tracing 200,000 rows takes about 5 s,
too long for ``make test-fast``, and fewer rows would blur the contrast.
"""

from __future__ import annotations

import sqlite3
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ab_router.ledger import EXPOSURE_COLUMNS
from serving.entry import EntryApp
from serving.settings import load_settings

EXPOSURES = 200_000
LABELLED_SHARE = 0.01
LIMIT_BYTES = 4_000_000


def _fill(path: Path, experiment: str, epoch: int) -> None:
    """About 200 req/s for 17 minutes of one epoch, written the fast way."""
    rng = np.random.default_rng(0)
    variant = np.where(rng.random(EXPOSURES) < 0.5, "v1", "v2").tolist()
    probability = rng.random(EXPOSURES).tolist()
    latency = rng.lognormal(np.log(12.0), 0.6, EXPOSURES).tolist()
    labelled = rng.random(EXPOSURES) < LABELLED_SHARE
    labels = np.where(labelled, rng.random(EXPOSURES) < 0.3, -1).tolist()

    def row(i: int) -> tuple[object, ...]:
        v, p, y, t = variant[i], probability[i], labels[i], 1.7e9 + i / 200
        return (
            f"r{i}", experiment, epoch, v, v, "request", None, "split", p,
            int(p >= 0.5), latency[i], t, 0, None, None, None,
            None if y < 0 else y, None if y < 0 else t + 60, 0, None,
        )  # fmt: skip

    placeholders = ", ".join("?" * 20)
    with sqlite3.connect(path) as connection:
        connection.executemany(
            f"INSERT INTO exposures ({EXPOSURE_COLUMNS}) VALUES ({placeholders})",
            map(row, range(EXPOSURES)),
        )
    connection.close()


def _peak_bytes(work: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_snapshot_memory_does_not_grow_with_unlabelled_traffic(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "ledger.sqlite3"
    monkeypatch.setenv("CHURN_AB_LEDGER_PATH", str(path))
    app = EntryApp(load_settings(), scorers={}, model_descriptions={})
    state = app.statistics.current_state()
    name, epoch = state.config.name, state.epoch
    _fill(path, name, epoch)
    app.ledger.rebuild_rollups()  # the rows were written behind its back

    bounded = _peak_bytes(app.statistics.quality_summary)
    stats = app.statistics.snapshot().stats
    assert stats["total_requests"] == EXPOSURES
    labels = sum(v["labelled"] for v in stats["variants"].values())
    assert 0.5 * LABELLED_SHARE * EXPOSURES < labels < 2 * LABELLED_SHARE * EXPOSURES

    # What the snapshot read before: every exposure of the epoch as arrays.
    unbounded = _peak_bytes(lambda: app.ledger.exposure_arrays(name, epoch))
    assert bounded < LIMIT_BYTES, f"snapshot peaked at {bounded / 1e6:.1f} MB"
    assert unbounded > 10 * LIMIT_BYTES, f"{unbounded / 1e6:.1f} MB"
