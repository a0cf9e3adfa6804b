"""The SQLite ledger: durable exposures, idempotent labels, versioned state."""

from __future__ import annotations

import multiprocessing
import time
import uuid
from pathlib import Path

import pytest

from ab_router.config import ExperimentConfig
from ab_router.errors import ConflictingLabelError, UnknownRequestError
from ab_router.ledger import LabelOutcome, SqliteLedger
from ab_router.records import Exposure, Mode, UnitKind

CONFIG = ExperimentConfig(name="exp", salt="s", weights={"v1": 0.5, "v2": 0.5})


def exposure(variant: str = "v1", unit: str | None = "c1", epoch: int = 1) -> Exposure:
    return Exposure(
        request_id=str(uuid.uuid4()),
        experiment="exp",
        epoch=epoch,
        assigned_variant=variant,
        variant=variant,
        unit_kind=UnitKind.CUSTOMER if unit else UnitKind.REQUEST,
        unit_id=unit,
        mode=Mode.SPLIT,
        churn_probability=0.7,
        prediction=1,
        latency_ms=1.5,
        created_at=time.time(),
        fallback=False,
    )


@pytest.fixture
def ledger(tmp_path: Path) -> SqliteLedger:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3")
    ledger.ensure_experiment(CONFIG)
    return ledger


def test_exposures_round_trip(ledger: SqliteLedger) -> None:
    written = [exposure("v1"), exposure("v2", unit=None)]
    ledger.record_exposures(written)
    assert ledger.exposures("exp", 1) == written
    assert ledger.count_exposures("exp", 1) == {"v1": 1, "v2": 1}


def test_labels_are_idempotent_and_conflicts_refused(ledger: SqliteLedger) -> None:
    e = exposure()
    ledger.record_exposures([e])
    assert ledger.label_request(e.request_id, True).outcome is LabelOutcome.ACCEPTED
    assert ledger.label_request(e.request_id, True).outcome is LabelOutcome.DUPLICATE
    with pytest.raises(ConflictingLabelError) as info:
        ledger.label_request(e.request_id, False)
    assert e.request_id in info.value.message
    assert ledger.exposures("exp")[0].label == 1
    with pytest.raises(UnknownRequestError):
        ledger.label_request("nope", True)


def test_label_by_customer_joins_the_latest_exposure(ledger: SqliteLedger) -> None:
    older, newer = exposure(unit="c9"), exposure(unit="c9")
    newer = Exposure(**{**newer.__dict__, "created_at": older.created_at + 10})
    ledger.record_exposures([older, newer])
    result = ledger.label_customer("exp", "c9", False)
    assert result.request_id == newer.request_id
    with pytest.raises(UnknownRequestError) as info:
        ledger.label_customer("exp", "unknown", True)
    assert info.value.field == "customerID"


def test_state_survives_reopen_and_changes_are_versioned(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    first = SqliteLedger(path)
    state = first.ensure_experiment(CONFIG)
    assert state.epoch == 1 and state.version == 1
    changed = CONFIG.with_weights({"v1": 0.8, "v2": 0.2})
    assert first.change_state(
        state,
        config=changed,
        canary_stage=-1,
        new_epoch=False,
        kind="weights",
        reason="test",
        actor="admin",
    )
    # A second change from the stale state loses the race instead of clobbering.
    assert not first.change_state(
        state,
        config=CONFIG,
        canary_stage=-1,
        new_epoch=False,
        kind="weights",
        reason="stale",
        actor="admin",
    )
    reopened = SqliteLedger(path).ensure_experiment(CONFIG)  # same start-up config
    assert dict(reopened.config.weights) == {"v1": 0.8, "v2": 0.2}
    assert [t.kind for t in first.transitions("exp")] == ["created", "weights"]


def test_new_startup_config_is_applied_and_recorded(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    SqliteLedger(path).ensure_experiment(CONFIG)
    other = CONFIG.with_weights({"v1": 0.6, "v2": 0.4})
    state = SqliteLedger(path).ensure_experiment(other)
    assert dict(state.config.weights) == {"v1": 0.6, "v2": 0.4}
    assert SqliteLedger(path).transitions("exp")[-1].kind == "reconfigured"


def _write_many(path: str, n: int) -> None:
    ledger = SqliteLedger(Path(path))
    for _ in range(n):
        ledger.record_exposures([exposure()])


def test_concurrent_writers_in_two_processes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    SqliteLedger(path).ensure_experiment(CONFIG)
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_write_many, args=(str(path), 200)) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert len(SqliteLedger(path).exposures("exp")) == 400


def test_column_arrays_equal_the_object_path_across_chunks(
    ledger: SqliteLedger,
) -> None:
    import numpy as np

    from ab_router.statistics.experiment import ExposureArrays

    rows = []
    for i in range(12_345):  # more than one 10,000-row chunk
        e = exposure("v1" if i % 3 else "v2", unit=None if i % 5 == 0 else f"c{i}")
        if i % 7 == 0:
            e = Exposure(**{**e.__dict__, "label": i % 2, "labelled_at": 5.0})
        if i % 11 == 0:
            e = Exposure(
                **{
                    **e.__dict__,
                    "shadow_variant": "v2",
                    "shadow_probability": 0.25,
                    "shadow_prediction": 0,
                    "fallback": True,
                }
            )
        rows.append(e)
    ledger.record_exposures(rows)
    got = ledger.exposure_arrays("exp", 1)
    want = ExposureArrays.from_exposures(ledger.exposures("exp", 1))
    for field in want.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(got, field), getattr(want, field), field)


def test_a_long_read_never_blocks_a_write(tmp_path: Path) -> None:
    """A read in chunks keeps a snapshot open; writes must still commit.

    The soak found 1,833 "database is locked" answers when the chunks were
    read on the connection that also writes.
    """
    path = tmp_path / "ledger.sqlite3"
    ledger = SqliteLedger(path)
    ledger.ensure_experiment(CONFIG)
    ledger.record_exposures([exposure() for _ in range(3000)])
    other_worker = SqliteLedger(path)
    chunks = ledger._read_chunks("SELECT request_id FROM exposures", (), size=1000)
    first = next(chunks)  # the snapshot is open now
    other_worker.record_exposures([exposure()])  # the database moves on
    ledger.record_exposures([exposure()])  # and this worker still writes
    assert len(first) + sum(len(c) for c in chunks) == 3000
    assert len(ledger.exposures("exp")) == 3002
