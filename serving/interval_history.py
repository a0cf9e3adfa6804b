"""The experiment page's curve: the decision's interval, snapshot by snapshot.

The live view reads only rollups, which hold the running sums *now*, not
after every label; the label-by-label curve needs every labelled row in
arrival order, which grows with the epoch. So the page draws the interval
each snapshot of this process computed (the same numbers as the decision at
that moment), at bounded resolution: one point per ``step`` labels, the
latest point of each step kept, the step doubling whenever more than
``max_points`` would be kept. The last point is always the current
decision's interval. The history is per process and starts with it (or with
the epoch); the exact curve after every label, from the rows, is the
offline report's (``python -m ab_router report``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ab_router.statistics.difference_curve import CumulativeDifference
from ab_router.statistics.sequential import SequentialResult

Point = tuple[int, float, float, float]
"""(labels t, estimate, lower, upper)."""


@dataclass
class IntervalHistory:
    """Past intervals of one epoch's decision, at most ``max_points`` of them."""

    max_points: int
    epoch: tuple[object, ...] | None = None
    step: int = 1
    points: list[Point] = field(default_factory=list)

    def add(self, epoch: tuple[object, ...], sequential: SequentialResult) -> None:
        """Record the decision's interval; a new ``epoch`` key starts afresh."""
        if epoch != self.epoch:
            self.epoch, self.step, self.points = epoch, 1, []
        point = (
            int(sequential.t),
            _finite(sequential.estimate),
            _finite(sequential.lower),
            _finite(sequential.upper),
        )
        # The latest point of each step of labels stands for it; fewer labels
        # than before (never, short of a rebuilt ledger) replace the tail too.
        while self.points and self.points[-1][0] // self.step >= point[0] // self.step:
            self.points.pop()
        self.points.append(point)
        while len(self.points) > self.max_points:
            self.step *= 2
            self.points = _latest_per_step(self.points, self.step)

    def curve(self) -> CumulativeDifference:
        columns = np.array(self.points, dtype=float).reshape(-1, 4).T
        return CumulativeDifference(
            columns[0].astype(np.int64), columns[1], columns[2], columns[3]
        )


def _finite(value: float) -> float:
    return value if math.isfinite(value) else math.nan


def _latest_per_step(points: list[Point], step: int) -> list[Point]:
    kept: dict[int, Point] = {}
    for point in points:
        kept[point[0] // step] = point
    return list(kept.values())
