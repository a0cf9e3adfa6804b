"""Concurrent calls share one call; each caller gets exactly its own outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import pytest
from numpy.typing import NDArray

from serving.coalescing import CallCoalescer, coalesced_scorer


class Recorder:
    """A batch call that records what it was given and can be held open."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.fail_with: Exception | None = None

    async def __call__(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        await self.release.wait()
        if self.fail_with is not None:
            raise self.fail_with
        return [item * 10 for item in items]


def test_lone_call_is_not_delayed() -> None:
    async def run() -> None:
        recorder = Recorder()
        recorder.release.set()
        coalescer = CallCoalescer(recorder, max_in_flight=1)
        assert await coalescer.submit(3) == 30
        assert await coalescer.submit(4) == 40
        assert recorder.batches == [[3], [4]]

    asyncio.run(run())


def test_calls_waiting_for_a_slot_go_out_together_in_order() -> None:
    async def run() -> None:
        recorder = Recorder()
        coalescer = CallCoalescer(recorder, max_in_flight=1)
        first = asyncio.create_task(coalescer.submit(1))
        await asyncio.sleep(0)
        rest = [asyncio.create_task(coalescer.submit(i)) for i in range(2, 7)]
        await asyncio.sleep(0)
        assert recorder.batches == [[1]]
        recorder.release.set()
        assert await first == 10
        assert await asyncio.gather(*rest) == [20, 30, 40, 50, 60]
        assert recorder.batches == [[1], [2, 3, 4, 5, 6]]
        assert coalescer.calls == 2

    asyncio.run(run())


def test_max_items_bounds_a_call() -> None:
    async def run() -> None:
        recorder = Recorder()
        coalescer = CallCoalescer(recorder, max_in_flight=1, max_items=2)
        tasks = [asyncio.create_task(coalescer.submit(i)) for i in range(5)]
        await asyncio.sleep(0)
        recorder.release.set()
        assert await asyncio.gather(*tasks) == [0, 10, 20, 30, 40]
        assert all(len(batch) <= 2 for batch in recorder.batches)
        assert sorted(i for batch in recorder.batches for i in batch) == list(range(5))

    asyncio.run(run())


def test_a_failure_reaches_every_caller_of_that_call_only() -> None:
    async def run() -> None:
        recorder = Recorder()
        coalescer = CallCoalescer(recorder, max_in_flight=1)
        failing = [asyncio.create_task(coalescer.submit(i)) for i in (1, 2)]
        await asyncio.sleep(0)
        recorder.fail_with = ConnectionError("model service went away")
        recorder.release.set()
        for task in failing:
            with pytest.raises(ConnectionError):
                await task
        recorder.fail_with = None
        assert await coalescer.submit(3) == 30

    asyncio.run(run())


def test_a_caller_that_gave_up_is_not_sent_and_others_still_answer() -> None:
    async def run() -> None:
        recorder = Recorder()
        coalescer = CallCoalescer(recorder, max_in_flight=1)
        first = asyncio.create_task(coalescer.submit(1))
        await asyncio.sleep(0)
        impatient = asyncio.create_task(coalescer.submit(2))
        patient = asyncio.create_task(coalescer.submit(3))
        await asyncio.sleep(0)
        impatient.cancel()
        recorder.release.set()
        assert await first == 10
        assert await patient == 30
        assert recorder.batches == [[1], [3]]

    asyncio.run(run())


def test_in_flight_limit_is_respected() -> None:
    async def run() -> None:
        recorder = Recorder()
        coalescer = CallCoalescer(recorder, max_in_flight=2)
        tasks = [asyncio.create_task(coalescer.submit(i)) for i in range(6)]
        for _ in range(3):
            await asyncio.sleep(0)
        assert len(recorder.batches) == 2
        recorder.release.set()
        await asyncio.gather(*tasks)
        assert sorted(i for b in recorder.batches for i in b) == list(range(6))

    asyncio.run(run())


def test_wrong_result_count_is_an_error_not_a_silent_misalignment() -> None:
    async def short(items: Sequence[int]) -> list[int]:
        return list(items)[:-1]

    async def run() -> None:
        coalescer = CallCoalescer(short, max_in_flight=1)
        with pytest.raises(RuntimeError, match="returned 0 results for 1"):
            await coalescer.submit(1)

    asyncio.run(run())


def test_coalesced_scorer_returns_each_caller_its_own_rows() -> None:
    calls: list[int] = []

    async def scorer(codes: NDArray[np.float64]) -> NDArray[np.float64]:
        calls.append(len(codes))
        await asyncio.sleep(0.01)
        return np.column_stack([codes[:, 0] / 100.0, codes[:, 0]])

    async def run() -> None:
        score = coalesced_scorer(scorer, max_in_flight=1, timeout_s=5.0)
        matrices = [
            np.full((n, 19), float(k), dtype=np.float64)
            for k, n in enumerate([1, 3, 1, 2, 5], start=1)
        ]
        results = await asyncio.gather(*(score(m) for m in matrices))
        for k, (matrix, result) in enumerate(
            zip(matrices, results, strict=True), start=1
        ):
            assert result.shape == (len(matrix), 2)
            assert np.all(result[:, 1] == k)
        assert calls == [1, 11]

    asyncio.run(run())


def test_coalesced_scorer_frees_its_slot_when_the_model_hangs() -> None:
    hang = asyncio.Event()

    async def scorer(codes: NDArray[np.float64]) -> NDArray[np.float64]:
        if not hang.is_set():
            await asyncio.sleep(3600)
        return np.zeros((len(codes), 2))

    async def run() -> None:
        score = coalesced_scorer(scorer, max_in_flight=1, timeout_s=0.05)
        with pytest.raises(TimeoutError):
            await score(np.zeros((1, 19)))
        hang.set()
        result = await asyncio.wait_for(score(np.zeros((2, 19))), 1.0)
        assert result.shape == (2, 2)

    asyncio.run(run())
