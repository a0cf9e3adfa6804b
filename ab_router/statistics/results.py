"""Result records shared by the statistical comparisons, and JSON conversion."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np


@dataclass(frozen=True)
class DifferenceResult:
    """A difference ``x - y`` between two variants with its interval and p-value.

    ``error`` is None when the numbers are usable; otherwise it names why not
    (``no_data``, ``too_few_samples``, ``zero_variance``, ``single_class``) and
    the fields that could not be computed are NaN (``None`` in JSON).
    """

    metric: str
    method: str
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    statistic: float = math.nan
    df: float = math.nan
    confidence: float = 0.95
    error: str | None = None

    @classmethod
    def failed(
        cls,
        metric: str,
        method: str,
        error: str,
        *,
        estimate: float = math.nan,
        confidence: float = 0.95,
    ) -> DifferenceResult:
        nan = math.nan
        return cls(
            metric, method, estimate, nan, nan, nan, confidence=confidence, error=error
        )

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums, mappings and numpy scalars to plain JSON types.

    NaN and infinities become None: ``json.dumps`` would otherwise emit the
    non-standard ``NaN`` token that browsers and most clients reject.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
        }
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        f = float(value)
        return f if math.isfinite(f) else None
    return value
