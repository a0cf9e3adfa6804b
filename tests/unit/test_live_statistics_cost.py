"""The live snapshot's cost does not grow with the epoch (issue #12).

Counted, not timed: SQLite's virtual-machine steps (``set_progress_handler``)
and the rows the ledger hands back while one fresh snapshot is computed
(what ``/ab-test/stats``, ``/metrics``, the canary and the page read). An
epoch ten times larger must cost the same, within a few per cent. Scores
and latencies cycle through a fixed grid, so the rollups of both epochs
have the same keys and bins (the bound is O(variants × buckets); a
real epoch fills its 4,096 bins at a few thousand labels). Reading the
labelled rows, as the snapshot did before, grows tenfold on the same
ledgers: the counters can fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from ab_router.config import ExperimentConfig
from ab_router.ledger.sqlite import SqliteLedger
from ab_router.records import Mode
from ab_router.simulate import synthetic_exposures
from ab_router.statistics.decision import DecisionConfig
from serving.live_statistics import LiveStatistics
from serving.state_cache import StateCache

SMALL = 3_000
LABELLED = 0.3
STEP = 100  # VM instructions per progress-handler call


@dataclass
class Cost:
    steps: int = 0
    reads: int = 0
    rows: int = 0


@contextmanager
def counted(ledger: SqliteLedger) -> Iterator[Cost]:
    cost = Cost()
    read = ledger._read

    def counting_read(sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        rows = read(sql, params)
        cost.reads += 1
        cost.rows += len(rows)
        return rows

    def step() -> int:
        cost.steps += STEP
        return 0

    chunks = ledger._read_chunks

    def counting_chunks(sql: str, params: Any) -> Iterator[list[tuple[Any, ...]]]:
        cost.reads += 1
        for chunk in chunks(sql, params):
            cost.rows += len(chunk)
            yield chunk

    connection = ledger._connection
    connection.set_progress_handler(step, STEP)
    ledger._read = counting_read  # type: ignore[method-assign]
    ledger._read_chunks = counting_chunks  # type: ignore[method-assign]
    try:
        yield cost
    finally:
        connection.set_progress_handler(None, STEP)
        del ledger._read, ledger._read_chunks


def _ledger(path: Path, n: int, mode: Mode) -> tuple[SqliteLedger, LiveStatistics]:
    ledger = SqliteLedger(path)
    config = ExperimentConfig(
        name="churn", salt="s", weights={"v1": 0.5, "v2": 0.5}, mode=mode
    )
    state = ledger.ensure_experiment(config)
    rows = synthetic_exposures(
        n, mode=mode, label_fraction=LABELLED, epoch=state.epoch, seed=1
    )

    def on_grid(i: int, p: float | None) -> float | None:
        return None if p is None else ((i * 7) % 16 + 0.5) / 16

    grid = [
        replace(
            e,
            churn_probability=on_grid(i, e.churn_probability),
            shadow_probability=on_grid(i + 3, e.shadow_probability),
            latency_ms=float(5 + i % 20),
        )
        for i, e in enumerate(rows)
    ]
    for start in range(0, n, 5_000):
        ledger.record_exposures(grid[start : start + 5_000])
    live = LiveStatistics(
        ledger,
        StateCache(ledger, state, 0.0),
        DecisionConfig(planned_labels=2000, min_labels=30),
    )
    return ledger, live


def _cost(ledger: SqliteLedger, work: Callable[[], object]) -> Cost:
    with counted(ledger) as cost:
        work()
    return cost


@pytest.mark.parametrize("mode", [Mode.SPLIT, Mode.SHADOW])
def test_a_snapshot_of_a_ten_times_larger_epoch_costs_the_same(
    tmp_path: Path, mode: Mode
) -> None:
    small, small_live = _ledger(tmp_path / "small.sqlite3", SMALL, mode)
    large, large_live = _ledger(tmp_path / "large.sqlite3", 10 * SMALL, mode)

    a = _cost(small, small_live.snapshot)
    b = _cost(large, large_live.snapshot)
    assert large_live.snapshot().stats["total_requests"] == 10 * SMALL
    assert b.reads == a.reads
    assert b.rows == a.rows
    assert b.steps <= 1.05 * a.steps + 10 * STEP, (a, b)

    # Cached: a call with nothing new reads the state's version (the state
    # cache polls it) and the rollups' signature, one row each.
    again = _cost(large, large_live.snapshot)
    assert (again.reads, again.rows) == (2, 2)

    # What the snapshot read before: the epoch's labelled rows.
    epoch = large_live.current_state().epoch
    rows_a = _cost(small, lambda: small.labelled_arrays("churn", epoch))
    rows_b = _cost(large, lambda: large.labelled_arrays("churn", epoch))
    assert rows_b.rows > 5 * rows_a.rows > 0
    small.close()
    large.close()
