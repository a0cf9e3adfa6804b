"""Bulk rows in chunks, giving the event loop back between chunks (#17).

A ``/predict_batch`` of 10,000 customers costs ~15 us a row of churn-ab's own
Python in the entry worker (assignment, schema codes, answers and records,
response models): ~150 ms in which none of that worker's online requests
could run. Done a chunk at a time with a yield between chunks, an online
request waits for at most one chunk (~8 ms at 500 rows) instead of the lot.
A thread would not help: this is pure Python, which holds the GIL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

__all__ = ["BULK_CHUNK_ROWS", "chunks", "in_turns"]

T = TypeVar("T")
R = TypeVar("R")

# Rows of one step between two yields. Not a setting: a yield costs a few us,
# so 20 of them per 10,000 rows are noise, and 500 rows (~8 ms) is already
# shorter than BentoML's own validation of such a batch, which cannot yield.
BULK_CHUNK_ROWS = 500


def chunks(items: Sequence[T], size: int = BULK_CHUNK_ROWS) -> list[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size``, in order."""
    return [items[start : start + size] for start in range(0, len(items), size)]


async def in_turns(work: Callable[[T], R], parts: Iterable[T]) -> list[R]:
    """``work`` on each part in order, yielding to the loop between parts.

    No yield before the first part or after the last: a request of one part
    costs what it did before.
    """
    results: list[R] = []
    for part in parts:
        if results:
            await asyncio.sleep(0)
        results.append(work(part))
    return results
