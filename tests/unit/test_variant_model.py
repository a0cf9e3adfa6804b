"""Bulk rows are scored in chunks, yielding to other work between chunks."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from numpy.typing import NDArray

from serving.model_runtime.variant_model import VariantModel


class RowIndexModel:
    """Scores a row as its first code; remembers the size of every call."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def score(self, codes: NDArray[np.float64]) -> NDArray[np.float64]:
        self.calls.append(len(codes))
        return np.column_stack([codes[:, 0], codes[:, 0] > 5])


def _codes(rows: int) -> NDArray[np.float64]:
    codes = np.zeros((rows, 19))
    codes[:, 0] = np.arange(rows)
    return codes


@pytest.mark.parametrize(
    ("rows", "chunks"),
    [(0, []), (1, [1]), (4, [4]), (5, [4, 1]), (8, [4, 4]), (9, [4, 4, 1])],
)
def test_bulk_rows_are_scored_in_chunks_in_order(rows: int, chunks: list[int]) -> None:
    model = RowIndexModel()
    scores = asyncio.run(
        VariantModel("v1", model, chunk_rows=4).score_batch(_codes(rows))
    )
    assert model.calls == chunks
    assert scores.shape == (rows, 2)
    np.testing.assert_array_equal(scores[:, 0], np.arange(rows))


def test_other_work_runs_between_chunks() -> None:
    model = RowIndexModel()
    variant = VariantModel("v1", model, chunk_rows=2)
    seen: list[int] = []

    async def online() -> None:
        await asyncio.sleep(0)
        seen.append(len(model.calls))  # bulk chunks scored before this ran

    async def both() -> None:
        await asyncio.gather(variant.score_batch(_codes(10)), online())

    asyncio.run(both())
    assert model.calls == [2] * 5
    assert seen and seen[0] < 5


def test_chunk_rows_must_be_positive() -> None:
    with pytest.raises(ValueError, match="chunk_rows"):
        VariantModel("v1", RowIndexModel(), chunk_rows=0)
