"""An entry worker's drift recorder: what it counts reaches the ledger, once."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from ab_router.errors import LedgerUnavailableError
from ab_router.ledger import SqliteLedger
from ab_router.statistics.psi import bin_codes
from churn_features.reference import ReferenceDistributions, reference_from_codes
from serving.drift_recorder import DriftRecorder
from tests.unit.test_reference import synthetic_codes

TAG = "churn_v1:abc"


@pytest.fixture(scope="module")
def reference() -> ReferenceDistributions:
    codes = synthetic_codes(2000, seed=11)
    return reference_from_codes(codes, np.random.default_rng(12).beta(1, 3, 2000))


def recorder(
    ledger: SqliteLedger,
    reference: ReferenceDistributions,
    *,
    buffer_rows: int = 1000,
    flush_s: float = 3600.0,
) -> DriftRecorder:
    return DriftRecorder(
        ledger,
        {"v1": reference, "v2": None},
        {"v1": TAG, "v2": "churn_v2:old"},
        flush_s=flush_s,
        buffer_rows=buffer_rows,
        clock=lambda: 7200.0,  # hour 2
    )


def test_every_observed_row_is_counted_once_and_none_without_reference(
    tmp_path: Path, reference: ReferenceDistributions
) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3")
    drift = recorder(ledger, reference)
    codes = synthetic_codes(60, seed=1)
    scores = np.random.default_rng(2).uniform(size=60)
    for start in range(0, 60, 7):  # requests of up to 7 rows
        drift.observe(
            "exp", 1, "v1", codes[start : start + 7], scores[start : start + 7]
        )
        drift.observe(
            "exp", 1, "v2", codes[start : start + 7], scores[start : start + 7]
        )
    drift.flush()
    drift.flush()  # nothing new: adds nothing
    assert ledger.drift_counts("exp", 1) == {
        ("v1", TAG): bin_codes(reference, codes, scores)
    }
    assert ledger.drift_counts("exp", 1, since_hour=3) == {}


def test_a_refused_flush_is_kept_and_added_by_the_next(
    tmp_path: Path, reference: ReferenceDistributions
) -> None:
    path = tmp_path / "ledger.sqlite3"
    ledger = SqliteLedger(path, busy_timeout_ms=50)
    drift = recorder(ledger, reference)
    first, second = synthetic_codes(30, seed=3), synthetic_codes(20, seed=4)
    drift.observe("exp", 1, "v1", first, np.full(30, 0.2))
    # Another process holds the writer lock: the flush is refused.
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    drift.flush()
    with pytest.raises(LedgerUnavailableError):  # it really was refused
        ledger.add_drift_counts(drift._pending)
    blocker.execute("ROLLBACK")
    blocker.close()
    assert ledger.drift_counts("exp", 1) == {}
    drift.observe("exp", 1, "v1", second, np.full(20, 0.7))
    drift.flush()
    expected = bin_codes(reference, first, np.full(30, 0.2)) + bin_codes(
        reference, second, np.full(20, 0.7)
    )
    assert ledger.drift_counts("exp", 1) == {("v1", TAG): expected}


def test_a_full_buffer_wakes_the_flushing_thread_and_close_flushes_the_rest(
    tmp_path: Path, reference: ReferenceDistributions
) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3")
    drift = recorder(ledger, reference, buffer_rows=50)
    flushed = threading.Event()
    original = ledger.add_drift_counts

    def add(deltas: dict) -> None:  # type: ignore[type-arg]
        original(deltas)
        flushed.set()

    ledger.add_drift_counts = add  # type: ignore[method-assign]
    drift.start()
    codes = synthetic_codes(80, seed=5)
    drift.observe("exp", 1, "v1", codes[:50], np.full(50, 0.5))
    assert flushed.wait(30), "a full buffer did not wake the flush (flush_s is 1 h)"
    assert ledger.drift_counts("exp", 1)[("v1", TAG)].rows == 50
    drift.observe("exp", 1, "v1", codes[50:], np.full(30, 0.5))
    drift.close()
    assert ledger.drift_counts("exp", 1)[("v1", TAG)].rows == 80
