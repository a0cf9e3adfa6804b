"""Concurrent calls folded into one: fewer model-service hops and commits.

Each request of an entry worker used to make its own HTTP call to a model
service and its own ledger transaction. Under load most of that cost is per
call, not per row. A :class:`CallCoalescer` lets at most ``max_in_flight``
calls run at once; whatever arrives meanwhile waits and goes out as one call
when a slot frees up. With one request at a time nothing waits, so a lone
request pays no extra latency. Every caller still gets its own result or its
own exception only after the call that carried it finished: a request is
answered only after its exposures are committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")

BatchCall = Callable[[Sequence[ItemT]], Awaitable[Sequence[ResultT]]]


class CallCoalescer(Generic[ItemT, ResultT]):
    """Runs ``call`` over the items submitted while earlier calls ran."""

    def __init__(
        self,
        call: BatchCall[ItemT, ResultT],
        *,
        max_in_flight: int = 1,
        max_items: int = 256,
    ) -> None:
        if max_in_flight < 1 or max_items < 1:
            raise ValueError("max_in_flight and max_items must be at least 1")
        self._call = call
        self._max_in_flight = max_in_flight
        self._max_items = max_items
        self._waiting: list[tuple[ItemT, asyncio.Future[ResultT]]] = []
        self._in_flight = 0
        self.calls = 0  # how many calls carried the items (for tests/metrics)

    async def submit(self, item: ItemT) -> ResultT:
        """The result of ``call`` for this item (or the exception it raised)."""
        future: asyncio.Future[ResultT] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        self._start_calls()
        return await future

    def _start_calls(self) -> None:
        while self._waiting and self._in_flight < self._max_in_flight:
            batch = self._waiting[: self._max_items]
            del self._waiting[: self._max_items]
            # A caller that gave up (timeout, cancellation) is not sent.
            batch = [(item, f) for item, f in batch if not f.done()]
            if not batch:
                continue
            self._in_flight += 1
            self.calls += 1
            asyncio.get_running_loop().create_task(self._run(batch))

    async def _run(self, batch: list[tuple[ItemT, asyncio.Future[ResultT]]]) -> None:
        try:
            results = await self._call([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(
                    f"batched call returned {len(results)} results "
                    f"for {len(batch)} items"
                )
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # every caller of the batch hears about it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
        finally:
            self._in_flight -= 1
            self._start_calls()


Matrix = NDArray[np.float64]


def coalesced_scorer(
    scorer: Callable[[Matrix], Awaitable[Matrix]],
    *,
    max_in_flight: int,
    timeout_s: float,
    max_items: int = 256,
) -> Callable[[Matrix], Awaitable[Matrix]]:
    """A scorer whose concurrent calls share model-service requests.

    Rows of the waiting requests are stacked into one matrix, scored by one
    call, and each request gets back its own rows, in order. A call gets
    ``timeout_s``: a hung model service must not hold a slot longer than the
    callers wait (they fall back after the same budget).
    """

    async def score_stacked(matrices: Sequence[Matrix]) -> list[Matrix]:
        stacked = matrices[0] if len(matrices) == 1 else np.concatenate(matrices)
        scores = np.asarray(await asyncio.wait_for(scorer(stacked), timeout_s))
        if len(scores) != len(stacked):
            raise RuntimeError(
                f"model service returned {len(scores)} rows for {len(stacked)}"
            )
        bounds = np.cumsum([len(m) for m in matrices])[:-1]
        return list(np.split(scores, bounds))

    coalescer: CallCoalescer[Matrix, Matrix] = CallCoalescer(
        score_stacked, max_in_flight=max_in_flight, max_items=max_items
    )
    return coalescer.submit
