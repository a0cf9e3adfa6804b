"""Races between processes, on both ledger backends.

SQLite gets them right with its single writer lock, PostgreSQL must with row
locks. The SQLite parameter needs no PostgreSQL: the server is started only
when a PostgreSQL parameter asks for it.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from collections.abc import Iterator
from dataclasses import replace
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

from ab_router.admin import Change
from ab_router.errors import ConflictingLabelError, UnknownRequestError
from ab_router.records import Mode
from ab_router.state import NOT_IN_CANARY
from tests.support.ledgers import (
    CONFIG,
    Store,
    exposure,
    running_postgres,
    sqlite_store,
)

SPAWN = multiprocessing.get_context("spawn")
ROUNDS = 15


@pytest.fixture(scope="module")
def postgres() -> Iterator[Any]:
    with running_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        return sqlite_store(tmp_path)
    return Store("postgres", request.getfixturevalue("postgres").create_database())


def _join_all(workers: list[Any]) -> None:
    for worker in workers:
        worker.join(timeout=90)
    assert [w.exitcode for w in workers] == [0] * len(workers)


def _write_many(store: Store, n: int) -> None:
    ledger = store.open()
    for _ in range(n):
        ledger.record_exposures([exposure()])


def test_concurrent_writers_in_two_processes_lose_nothing(store: Store) -> None:
    store.open().ensure_experiment(CONFIG)
    workers = [SPAWN.Process(target=_write_many, args=(store, 200)) for _ in range(2)]
    for worker in workers:
        worker.start()
    _join_all(workers)
    assert len(store.open().exposures("exp")) == 400
    assert store.open().count_exposures("exp", 1) == {"v1": 400}


def _race_state_changes(
    store: Store, index: int, barrier: Barrier, results: Queue[Any]
) -> None:
    ledger = store.open()
    mine = CONFIG.with_weights({"v1": 0.1 + 0.8 * index, "v2": 0.9 - 0.8 * index})
    for round_ in range(ROUNDS):
        state = ledger.state("exp", CONFIG.known_variants)
        barrier.wait(timeout=60)  # both hold the same version now
        won = ledger.change_state(
            state,
            Change(mine, NOT_IN_CANARY, "weights", new_epoch=False),
            reason=f"round {round_}",
            actor=f"worker-{index}",
        )
        results.put((round_, index, won))
        barrier.wait(timeout=60)  # nobody reads the next state early


def test_two_processes_changing_the_same_version_one_wins(store: Store) -> None:
    store.open().ensure_experiment(CONFIG)
    barrier = SPAWN.Barrier(2)
    results: Queue[Any] = SPAWN.Queue()
    workers = [
        SPAWN.Process(target=_race_state_changes, args=(store, i, barrier, results))
        for i in range(2)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=90) for _ in range(2 * ROUNDS)]
    _join_all(workers)
    winners = {
        r: [i for r2, i, won in outcomes if r2 == r and won] for r in range(ROUNDS)
    }
    assert all(len(w) == 1 for w in winners.values()), winners
    ledger = store.open()
    transitions = ledger.transitions("exp")
    assert len(transitions) == 1 + ROUNDS
    assert ledger.state_version("exp") == 1 + ROUNDS
    # The stored weights are those of the last round's winner.
    last = winners[ROUNDS - 1][0]
    assert transitions[-1].actor == f"worker-{last}"
    assert ledger.current_weights("exp") == transitions[-1].weights


def _race_labels(
    store: Store,
    churned: bool,
    request_ids: list[str],
    barrier: Barrier,
    results: Queue[Any],
) -> None:
    ledger = store.open()
    for request_id in request_ids:
        barrier.wait(timeout=60)
        try:
            outcome = str(ledger.label_request(request_id, churned).outcome)
        except ConflictingLabelError:
            outcome = "conflict"
        results.put((request_id, churned, outcome))


def test_two_processes_labelling_one_request_differently(store: Store) -> None:
    """Exactly one label is accepted; the other process is told it conflicts,
    and the stored label is the accepted one, never overwritten."""
    ledger = store.open()
    ledger.ensure_experiment(CONFIG)
    written = [exposure() for _ in range(ROUNDS)]
    ledger.record_exposures(written)
    ids = [e.request_id for e in written]
    barrier = SPAWN.Barrier(2)
    results: Queue[Any] = SPAWN.Queue()
    workers = [
        SPAWN.Process(target=_race_labels, args=(store, churned, ids, barrier, results))
        for churned in (True, False)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=90) for _ in range(2 * ROUNDS)]
    _join_all(workers)
    stored = {e.request_id: e.label for e in store.open().exposures("exp")}
    for request_id in ids:
        mine = sorted((o, c) for r, c, o in outcomes if r == request_id)
        assert [o for o, _ in mine] == ["accepted", "conflict"], mine
        accepted_churned = mine[0][1]
        assert stored[request_id] == int(accepted_churned)


def _register(store: Store, tag: str, barrier: Barrier, results: Queue[Any]) -> None:
    ledger = store.open()
    barrier.wait(timeout=60)
    results.put(ledger.register_model_version("v2", tag))


def test_processes_registering_one_tag_get_one_id(store: Store) -> None:
    store.open().ensure_experiment(CONFIG)
    barrier = SPAWN.Barrier(4)
    results: Queue[Any] = SPAWN.Queue()
    workers = [
        SPAWN.Process(target=_register, args=(store, "churn_v2:same", barrier, results))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    ids = {results.get(timeout=90) for _ in workers}
    _join_all(workers)
    assert len(ids) == 1
    versions = store.open().model_versions()
    assert [v.tag for v in versions.values()].count("churn_v2:same") == 1


def _write_forever(store: Store) -> None:
    """Grouped commits with shadow scores, until killed."""
    ledger = store.open()
    rng = random.Random(os.getpid())
    for batch in range(1_000_000):
        rows = [
            replace(
                exposure(rng.choice(["v1", "v2"]), unit=None),
                request_id=f"w{batch}-{i}",
                mode=Mode.SHADOW,
                churn_probability=rng.random(),
                latency_ms=rng.lognormvariate(2, 1),
            )
            for i in range(rng.randint(1, 16))
        ]
        ledger.record_exposures(rows)
        ledger.record_shadow_scores(
            "v2", [(e.request_id, rng.random(), 1) for e in rows if rng.random() < 0.7]
        )


def _label_forever(store: Store) -> None:
    """Labels (some repeated, some conflicting) of rows the writer wrote."""
    ledger = store.open()
    rng = random.Random(os.getpid())
    while True:
        request_id = f"w{rng.randint(0, 200)}-{rng.randint(0, 3)}"
        try:
            ledger.label_request(request_id, rng.random() < 0.5)
        except (UnknownRequestError, ConflictingLabelError):
            time.sleep(0.001)


def test_rollups_agree_with_the_rows_after_writers_are_killed(store: Store) -> None:
    """SIGKILL in the middle of grouped commits, shadow scores and labels:
    each transaction is all or nothing, rollups included."""
    ledger = store.open()
    ledger.ensure_experiment(CONFIG)
    workers = [
        SPAWN.Process(target=_write_forever, args=(store,)),
        SPAWN.Process(target=_label_forever, args=(store,)),
    ]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 60
    while ledger.epoch_counts("exp", 1)[1] < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    for worker in workers:
        assert worker.pid is not None and worker.is_alive()
        os.kill(worker.pid, signal.SIGKILL)
    for worker in workers:
        worker.join(timeout=30)
    assert [w.exitcode for w in workers] == [-signal.SIGKILL] * 2
    after = store.open()
    exposures, labels = after.epoch_counts("exp", 1)
    assert labels >= 40 and exposures > labels
    assert after.verify_rollups() == []
    rows = after.exposure_arrays("exp", 1)
    assert (rows.label.size, int(rows.labelled.sum())) == (exposures, labels)
