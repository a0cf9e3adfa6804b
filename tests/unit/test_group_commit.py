"""Concurrent requests share ledger commits, and each is answered only after."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from ab_router.errors import LedgerUnavailableError
from churn_features.schema import EXAMPLE_CUSTOMER
from serving.entry import EntryApp
from serving.settings import load_settings


async def _scorer(codes: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.column_stack([np.full(len(codes), 0.3), np.zeros(len(codes))])


def _entry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> EntryApp:
    monkeypatch.setenv("CHURN_AB_LEDGER_PATH", str(tmp_path / "ledger.sqlite3"))
    return EntryApp(
        load_settings(),
        scorers={"v1": _scorer, "v2": _scorer},
        model_descriptions={},
    )


def test_concurrent_requests_are_all_recorded_in_fewer_commits(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app = _entry(monkeypatch, tmp_path)
    customers = [{**EXAMPLE_CUSTOMER, "customerID": f"group-{i}"} for i in range(60)]

    async def run() -> list[str]:
        answers = await asyncio.gather(
            *(app.requests.predict_one(c, time.perf_counter()) for c in customers)
        )
        return [a.request_id for a in answers]

    answered = asyncio.run(run())
    state = app.state.current()
    recorded = {e.request_id for e in app.ledger.exposures(state.config.name)}
    assert set(answered) <= recorded
    assert len(recorded) == len(customers)
    assert app.predictor._commits.calls < len(customers)


def test_a_failed_commit_fails_every_request_it_carried(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app = _entry(monkeypatch, tmp_path)
    # Another connection holds the write lock past the busy timeout.
    app.ledger._connection.execute("PRAGMA busy_timeout=50")  # type: ignore[attr-defined]
    blocker = sqlite3.connect(tmp_path / "ledger.sqlite3", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    customers = [{**EXAMPLE_CUSTOMER, "customerID": f"fail-{i}"} for i in range(10)]

    async def run() -> list[object]:
        return await asyncio.gather(
            *(app.requests.predict_one(c, time.perf_counter()) for c in customers),
            return_exceptions=True,
        )

    try:
        outcomes = asyncio.run(run())
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert all(isinstance(o, LedgerUnavailableError) for o in outcomes), outcomes
    state = app.state.current()
    assert app.ledger.exposures(state.config.name) == []
