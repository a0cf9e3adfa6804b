"""An entry worker computes its first statistics snapshot (and imports scipy)
in the background at start, so the first /ab-test/stats or /metrics read does
not pay ~0.5 s for them."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from ab_router.config import ExperimentConfig
from ab_router.ledger.sqlite import SqliteLedger
from ab_router.statistics.decision import DecisionConfig
from serving.live_statistics import LiveStatistics
from serving.state_cache import StateCache
from serving.warmup import warm_in_background


def _live(tmp_path: Path) -> LiveStatistics:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3")
    state = ledger.ensure_experiment(
        ExperimentConfig(name="churn", salt="s", weights={"v1": 0.5, "v2": 0.5})
    )
    return LiveStatistics(
        ledger, StateCache(ledger, state, 0.0), DecisionConfig(min_labels=30)
    )


def test_the_first_snapshot_is_computed_before_anyone_asks(tmp_path: Path) -> None:
    live = _live(tmp_path)
    warm_in_background(live).join(timeout=30)
    asked = time.monotonic()
    # The snapshot a first reader gets was computed by the warm-up, not by it.
    assert live.snapshot().computed_at < asked


def test_without_the_warm_up_the_first_reader_computes_it(tmp_path: Path) -> None:
    live = _live(tmp_path)
    asked = time.monotonic()
    assert live.snapshot().computed_at >= asked


def test_a_failed_warm_up_is_logged_and_leaves_the_worker_running(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    live = _live(tmp_path)
    live.ledger.close()  # every read now fails
    with caplog.at_level(logging.WARNING, logger="churn_ab.warmup"):
        warm_in_background(live).join(timeout=30)
    assert "warm-up" in caplog.text
