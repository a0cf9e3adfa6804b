"""``EpochTraffic``: everything the statistics need from unlabelled traffic.

Request counts, predicted churn and latency per group of exposures, where a
group is one combination of the few small-valued columns (experiment, epoch,
answering and assigned variant, mode, fallback, shadow variant). Its size is
O(groups × latency buckets) however many requests the epoch holds, which is
what keeps the live view's memory flat (issue #7); only labelled rows are
still read one by one, because exact ROC AUC and DeLong need every score.

Like the other summaries it is frozen and merges with ``+``. The ledger builds
it with one SQL GROUP BY (``Ledger.epoch_traffic``);
:meth:`EpochTraffic.from_arrays` builds the same value from column arrays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np

from ab_router.statistics.exposure_arrays import ExposureArrays
from ab_router.statistics.latency import LatencyHistogram

KeyField = Literal[
    "experiment", "epoch", "variant", "assigned", "mode", "shadow_variant"
]


class TrafficKey(NamedTuple):
    experiment: str
    epoch: int
    variant: str
    """The variant that answered."""
    assigned: str
    mode: str
    fallback: bool
    shadow_variant: str
    """The variant that also scored the request (shadow mode); "" if none."""


@dataclass(frozen=True)
class TrafficCell:
    """The exposures of one group."""

    key: TrafficKey
    requests: int
    predicted_churn: int
    """How many were predicted to churn (sum of the 0/1 predictions)."""
    latency: LatencyHistogram

    def __add__(self, other: TrafficCell) -> TrafficCell:
        return TrafficCell(
            self.key,
            self.requests + other.requests,
            self.predicted_churn + other.predicted_churn,
            self.latency + other.latency,
        )


@dataclass(frozen=True)
class EpochTraffic:
    cells: tuple[TrafficCell, ...] = ()
    """One cell per key, sorted by key."""

    def __add__(self, other: EpochTraffic) -> EpochTraffic:
        return _merge((*self.cells, *other.cells))

    @classmethod
    def from_arrays(cls, a: ExposureArrays) -> EpochTraffic:
        shadow = np.where(np.isnan(a.shadow_probability), "", a.shadow_variant)
        columns = (
            a.experiment, a.epoch, a.variant, a.assigned, a.mode, a.fallback, shadow,
        )  # fmt: skip
        if a.fallback.size == 0:
            return cls()
        codes, values = [], []
        for column in columns:
            uniques, inverse = np.unique(column, return_inverse=True)
            codes.append(inverse.ravel())
            values.append(uniques.tolist())
        groups, group_of = np.unique(
            np.stack(codes, axis=1), axis=0, return_inverse=True
        )
        group_of = group_of.ravel()
        cells = []
        for g, group in enumerate(groups):
            rows = group_of == g
            v = [values[i][c] for i, c in enumerate(group.tolist())]
            key = TrafficKey(
                str(v[0]), int(v[1]), str(v[2]), str(v[3]), str(v[4]), bool(v[5]),
                str(v[6]),
            )  # fmt: skip
            cells.append(
                TrafficCell(
                    key,
                    int(rows.sum()),
                    int(a.prediction[rows].sum()),
                    LatencyHistogram.from_values(a.latency_ms[rows]),
                )
            )
        return _merge(cells)

    @classmethod
    def from_bucket_rows(
        cls,
        rows: Iterable[tuple[TrafficKey, int, int, int, int, float, float]],
    ) -> EpochTraffic:
        """From (key, bucket, requests, predicted churn, sum µs, min ms, max ms)
        rows: one per key and latency bucket, as the ledger's GROUP BY gives."""
        # Collected per key first: adding one-bucket histograms one at a
        # time would be quadratic in the number of buckets.
        by_key: dict[TrafficKey, list[tuple[int, int, int, int, float, float]]] = {}
        for key, *rest in rows:
            by_key.setdefault(key, []).append(tuple(rest))  # type: ignore[arg-type]
        cells = []
        for key, parts in by_key.items():
            buckets, requests, predicted, sum_us, mins, maxes = zip(*parts, strict=True)
            n = sum(requests)
            histogram = LatencyHistogram(
                n,
                sum(sum_us),
                min(mins),
                max(maxes),
                tuple(sorted(zip(buckets, requests, strict=True))),
            )
            cells.append(TrafficCell(key, n, sum(predicted), histogram))
        return _merge(cells)

    def where(
        self,
        *,
        variant: str | None = None,
        assigned: str | None = None,
        fallback: bool | None = None,
        shadow_variant: str | None = None,
    ) -> EpochTraffic:
        """The cells matching every given value."""
        wanted = {
            "variant": variant,
            "assigned": assigned,
            "fallback": fallback,
            "shadow_variant": shadow_variant,
        }
        wanted = {k: v for k, v in wanted.items() if v is not None}
        return EpochTraffic(
            tuple(
                c
                for c in self.cells
                if all(getattr(c.key, k) == v for k, v in wanted.items())
            )
        )

    @property
    def requests(self) -> int:
        return sum(c.requests for c in self.cells)

    @property
    def predicted_churn(self) -> int:
        return sum(c.predicted_churn for c in self.cells)

    @property
    def latency(self) -> LatencyHistogram:
        return sum((c.latency for c in self.cells), LatencyHistogram())

    def counts(self, field: KeyField) -> dict[str, int]:
        """Requests per value of ``field``, sorted by value."""
        out: dict[str, int] = {}
        for c in self.cells:
            name = str(getattr(c.key, field))
            out[name] = out.get(name, 0) + c.requests
        return dict(sorted(out.items()))

    @property
    def experiments(self) -> tuple[str, ...]:
        return tuple(sorted({c.key.experiment for c in self.cells}))

    @property
    def epochs(self) -> tuple[int, ...]:
        return tuple(sorted({c.key.epoch for c in self.cells}))


def _merge(cells: Iterable[TrafficCell]) -> EpochTraffic:
    by_key: dict[TrafficKey, TrafficCell] = {}
    for cell in cells:
        known = by_key.get(cell.key)
        by_key[cell.key] = cell if known is None else known + cell
    return EpochTraffic(tuple(by_key[k] for k in sorted(by_key)))


__all__ = ["EpochTraffic", "TrafficCell", "TrafficKey"]
