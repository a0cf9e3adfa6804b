"""A /predict_batch gives the entry worker's event loop back between chunks of
its own per-row work, so online requests interleave with it (#17).

Mechanism, not timing: a concurrent task notes how far the batch had got
each time the loop ran it, and the batch's per-row steps may not run more
than one chunk of rows between two of its turns.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from churn_features.schema import EXAMPLE_CUSTOMER, ID_COLUMN
from serving.chunks import BULK_CHUNK_ROWS, chunks, in_turns
from serving.entry import EntryApp
from tests.support.entry_apps import entry_app

TAGS = {"v1": "churn_v1:first", "v2": "churn_v2:second"}


async def _scorer(codes: NDArray[np.float64]) -> NDArray[np.float64]:
    # A score that differs row by row (tenure), so a row answered out of
    # order or with another row's score shows.
    probability = codes[:, 4] / 100.0
    return np.column_stack([probability, (probability > 0.3).astype(np.float64)])


def _entry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: str) -> EntryApp:
    return entry_app(monkeypatch, tmp_path, mode=mode, scorer=_scorer, tags=TAGS)


class _Watched(dict[str, Any]):
    """A customer that counts how often its id is read: once in assignment,
    once in answering, per row."""

    reads = 0

    def get(self, key: str, default: Any = None) -> Any:
        if key == ID_COLUMN:
            _Watched.reads += 1
        return super().get(key, default)


def _customers(n: int) -> list[dict[str, Any]]:
    return [
        _Watched({**EXAMPLE_CUSTOMER, "customerID": f"c-{i}", "tenure": i % 72})
        for i in range(n)
    ]


async def _progress_between_turns(call: Callable[[], Awaitable[object]]) -> list[int]:
    """Id reads between consecutive turns of a concurrent task during ``call``."""
    seen: list[int] = []
    stop = False

    async def ticker() -> None:
        while not stop:
            seen.append(_Watched.reads)
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    start = _Watched.reads
    await call()
    end = _Watched.reads
    stop = True
    await task
    marks = [start, *(r for r in seen if start <= r <= end), end]
    return [b - a for a, b in itertools.pairwise(marks)]


# -- the chunking helpers: where the yields are ---------------------------


def _yields(parts: int) -> int:
    """How often a concurrent task ran while ``in_turns`` did ``parts`` parts."""

    async def run() -> int:
        turns = 0

        async def ticker() -> None:
            nonlocal turns
            while True:
                turns += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        before = turns
        await in_turns(len, chunks(range(parts * 10), 10))
        during = turns - before
        task.cancel()
        return during

    return asyncio.run(run())


@pytest.mark.parametrize(("parts", "yields"), [(0, 0), (1, 0), (2, 1), (5, 4)])
def test_in_turns_yields_between_parts_only(parts: int, yields: int) -> None:
    assert _yields(parts) == yields


@pytest.mark.parametrize(
    ("rows", "sizes"),
    [
        (0, []),
        (1, [1]),
        (BULK_CHUNK_ROWS, [BULK_CHUNK_ROWS]),
        (BULK_CHUNK_ROWS + 1, [BULK_CHUNK_ROWS, 1]),
        (2 * BULK_CHUNK_ROWS, [BULK_CHUNK_ROWS, BULK_CHUNK_ROWS]),
    ],
)
def test_chunks_are_consecutive_and_at_most_a_chunk(
    rows: int, sizes: list[int]
) -> None:
    parts = chunks(list(range(rows)))
    assert [len(p) for p in parts] == sizes
    assert [x for p in parts for x in p] == list(range(rows))


# -- the batch path: the loop gets a turn at least every chunk of rows ---------


def _batch_progress(app: EntryApp, customers: list[dict[str, Any]]) -> list[int]:
    """Ids read between the loop's turns while ``app`` answers the batch."""

    async def run() -> list[int]:
        progress = await _progress_between_turns(
            lambda: app.requests.predict_batch(customers, time.perf_counter())
        )
        await app.predictor.drain()
        return progress

    return asyncio.run(run())


@pytest.mark.parametrize("mode", ["split", "shadow"])
def test_a_batch_lets_the_loop_in_every_chunk_of_rows(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: str
) -> None:
    app = _entry(monkeypatch, tmp_path, mode)
    rows = 6 * BULK_CHUNK_ROWS + 7
    customers = _customers(rows)

    progress = _batch_progress(app, customers)
    assert sum(progress) == 2 * rows  # assignment and answering read each id once
    # Before #17's chunking, all of assignment ran in one turn (3,007 reads).
    assert max(progress) <= BULK_CHUNK_ROWS
    interleaved = [p for p in progress if p > 0]
    assert len(interleaved) >= 2 * math.ceil(rows / BULK_CHUNK_ROWS)


def test_a_single_prediction_does_not_yield(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app = _entry(monkeypatch, tmp_path, "split")
    (customer,) = _customers(1)

    async def run() -> list[int]:
        return await _progress_between_turns(
            lambda: app.requests.predict_one(customer, time.perf_counter())
        )

    # Assignment and answering each read the id once; the ledger commit
    # (in a thread) is the only wait between them.
    assert [p for p in asyncio.run(run()) if p > 0] == [1, 1]


def test_chunked_batch_answers_match_single_predictions_in_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app = _entry(monkeypatch, tmp_path, "split")
    rows = 2 * BULK_CHUNK_ROWS + 1
    customers = _customers(rows)

    async def run() -> tuple[list[Any], list[Any]]:
        batch = await app.requests.predict_batch(customers, time.perf_counter())
        ones = [
            await app.requests.predict_one(c, time.perf_counter()) for c in customers
        ]
        return batch.predictions, ones

    batch, ones = asyncio.run(run())
    assert len(batch) == rows
    fields = ("model_version", "assigned_variant", "churn_probability", "prediction")
    assert [[getattr(p, f) for f in fields] for p in batch] == [
        [getattr(p, f) for f in fields] for p in ones
    ]
    assert {p.model_version for p in batch} == {"v1", "v2"}
    # Every answer is in the ledger, in the order the path commits them: each
    # assigned variant's rows together, in first-seen order.
    recorded = app.ledger.exposures(app.settings.experiment.name)[:rows]
    first = batch[0].assigned_variant
    expected = [p for p in batch if p.assigned_variant == first] + [
        p for p in batch if p.assigned_variant != first
    ]
    assert [e.request_id for e in recorded] == [p.request_id for p in expected]
    assert [e.unit_id for e in recorded] == [
        c["customerID"]
        for p, c in sorted(
            zip(batch, customers, strict=True),
            key=lambda pc: pc[0].assigned_variant != first,
        )
    ]


@pytest.mark.parametrize(
    ("rows", "turns"),
    [
        # One chunk: assignment, then answering, each in one turn.
        (BULK_CHUNK_ROWS, [BULK_CHUNK_ROWS, BULK_CHUNK_ROWS]),
        # One row more: each of the two steps yields once, before its last row.
        (BULK_CHUNK_ROWS + 1, [BULK_CHUNK_ROWS, 1, BULK_CHUNK_ROWS, 1]),
    ],
)
def test_a_batch_yields_only_past_a_chunk(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, rows: int, turns: list[int]
) -> None:
    # Shadow mode: the champion answers every row, so the rows form one group
    # and only the chunk size splits them.
    app = _entry(monkeypatch, tmp_path, "shadow")
    customers = _customers(rows)

    assert [p for p in _batch_progress(app, customers) if p > 0] == turns
