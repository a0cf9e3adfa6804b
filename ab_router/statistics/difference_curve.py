"""The running Brier difference and its confidence sequence, label by label.

One curve for the offline report's plot and the live experiment page: the
challenger − champion Brier difference after each label (labels in arrival
order, :mod:`.running`) with its anytime-valid confidence sequence. No
plotting here, so the service can draw it without importing matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ab_router.statistics.analysis import analysis_for
from ab_router.statistics.decision import DecisionConfig
from ab_router.statistics.design import Design
from ab_router.statistics.exposure_arrays import ExposureArrays

if TYPE_CHECKING:
    from numpy.typing import NDArray


@dataclass(frozen=True)
class CumulativeDifference:
    """Running Brier difference and confidence sequence after each label."""

    t: NDArray[np.int64]
    estimate: NDArray[np.float64]
    lower: NDArray[np.float64]
    upper: NDArray[np.float64]

    def thinned(self, max_points: int) -> CumulativeDifference:
        """At most ``max_points`` points, evenly spread, first and last kept."""
        idx = thin(self.t.size, max_points)
        return CumulativeDifference(
            self.t[idx], self.estimate[idx], self.lower[idx], self.upper[idx]
        )


def thin(n: int, max_points: int) -> NDArray[np.int64]:
    """Indices of at most ``max_points`` of ``n`` points, ends included."""
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, max_points).astype(np.int64))


def cumulative_brier_difference(
    arrays: ExposureArrays,
    config: DecisionConfig,
    *,
    design: Design | str,
    champion: str,
    challenger: str,
) -> CumulativeDifference:
    """The confidence sequence of Δ = Brier(challenger) − Brier(champion) over time.

    Rows enter in label-arrival order; the last point equals the summary's.
    Points where either variant has fewer than two labels are NaN.
    """
    running = analysis_for(design).running_brier(arrays, champion, challenger)
    lo, hi = running.sequence(config.alpha, config.planned_labels)
    return CumulativeDifference(running.t.astype(np.int64), running.estimate, lo, hi)
