"""Reference distributions: what each model saw at training time, for drift checks.

Training stores one ``ReferenceDistributions`` in each model's metadata (under
``REFERENCE_METADATA_KEY``); serving reads it back with ``from_metadata`` and
bins live requests against it (``ab_router.statistics.psi``).

The one binning rule, used for training shares and live counts alike:

* a numeric feature (and the score) has ascending inner ``edges``
  ``e_1 < ... < e_m``, giving ``m + 1`` bins; bin ``i`` holds
  ``e_i < x <= e_(i+1)`` with ``e_0 = -inf`` and ``e_(m+1) = +inf``. A value
  exactly on an edge goes to the lower bin; values below the training minimum
  land in the first bin and values above the maximum in the last, so live
  traffic never falls outside the bins.
* a categorical feature has one bin per schema category, indexed by its schema
  code (``churn_features.encoding.schema_codes``).

Edges are training quantiles taken as observed values (``inverted_cdf``), with
duplicates and any edge at the maximum dropped: every training bin then holds
at least one row (each bin contains its upper edge), and a feature with few
distinct values (SeniorCitizen: 0/1) gets fewer bins rather than empty ones.
Bins are closed on the right so that a mass at the minimum, common here
(TotalCharges 0 for new customers, many short tenures), keeps a bin of its own
instead of swallowing the decile edges above it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from churn_features.schema import CATEGORICAL_BY_NAME, FEATURE_ORDER

REFERENCE_METADATA_KEY: Final = "reference_distributions"
#: Bumped when the stored layout changes; ``from_metadata`` rejects others.
REFERENCE_FORMAT: Final = 1
#: About ten bins: the usual PSI granularity (Siddiqi 2006), coarse enough
#: that a few hundred live requests fill every bin.
DEFAULT_BINS: Final = 10
SCORE_NAME: Final = "score"


class ReferenceFormatError(ValueError):
    """Stored reference metadata that cannot be read; names the field."""


@dataclass(frozen=True)
class NumericReference:
    """Quantile bins of one numeric feature (or the score) and training shares."""

    name: str
    edges: tuple[float, ...]
    shares: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.shares) != len(self.edges) + 1:
            raise ReferenceFormatError(
                f"{self.name}: {len(self.edges)} edges need "
                f"{len(self.edges) + 1} shares, got {len(self.shares)}"
            )
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ReferenceFormatError(f"{self.name}: edges must be strictly ascending")
        _check_shares(self.name, self.shares)

    @property
    def bins(self) -> int:
        return len(self.shares)

    def bin_index(self, values: ArrayLike) -> NDArray[np.intp]:
        """The bin of each value (see the module docstring for the rule)."""
        return bin_numeric(np.asarray(self.edges, dtype=np.float64), values)


@dataclass(frozen=True)
class CategoricalReference:
    """Training share of each schema category, in schema order."""

    name: str
    categories: tuple[str, ...]
    shares: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.shares) != len(self.categories):
            raise ReferenceFormatError(
                f"{self.name}: {len(self.categories)} categories need as many "
                f"shares, got {len(self.shares)}"
            )
        _check_shares(self.name, self.shares)

    @property
    def bins(self) -> int:
        return len(self.shares)


FeatureReference = NumericReference | CategoricalReference


@dataclass(frozen=True)
class ReferenceDistributions:
    """Every feature's training distribution, in ``FEATURE_ORDER``, and the score's.

    ``rows`` is the number of training rows the feature shares come from;
    ``score_rows`` the number of out-of-fold scores (the same rows, each scored
    by a model that did not see it, so the score shares are what unseen
    customers look like, not the fitted model's optimistic in-sample view).
    """

    features: tuple[FeatureReference, ...]
    score: NumericReference
    rows: int
    score_rows: int

    def __post_init__(self) -> None:
        names = tuple(f.name for f in self.features)
        if names != FEATURE_ORDER:
            raise ReferenceFormatError(
                f"features must be in FEATURE_ORDER, got {', '.join(names)}"
            )

    def feature(self, name: str) -> FeatureReference:
        for reference in self.features:
            if reference.name == name:
                return reference
        raise KeyError(name)

    def to_metadata(self) -> dict[str, Any]:
        """Plain lists and dicts, as BentoML model metadata requires."""
        return {
            "format": REFERENCE_FORMAT,
            "rows": self.rows,
            "score_rows": self.score_rows,
            "features": {f.name: _feature_to_metadata(f) for f in self.features},
            "score": _feature_to_metadata(self.score),
        }

    @classmethod
    def from_metadata(cls, data: Mapping[str, Any]) -> ReferenceDistributions:
        """Read ``to_metadata``'s output; ``ReferenceFormatError`` names a bad field."""
        fmt = data.get("format")
        if fmt != REFERENCE_FORMAT:
            raise ReferenceFormatError(
                f"reference format {fmt!r} is not the supported {REFERENCE_FORMAT}"
            )
        stored = data.get("features")
        if not isinstance(stored, Mapping):
            raise ReferenceFormatError("reference: 'features' must be a mapping")
        missing = [name for name in FEATURE_ORDER if name not in stored]
        if missing:
            raise ReferenceFormatError(f"reference: no entry for {', '.join(missing)}")
        return cls(
            features=tuple(
                _feature_from_metadata(name, stored[name]) for name in FEATURE_ORDER
            ),
            score=_numeric_from_metadata(SCORE_NAME, data.get("score")),
            rows=_count(data, "rows"),
            score_rows=_count(data, "score_rows"),
        )


def bin_numeric(edges: NDArray[np.float64], values: ArrayLike) -> NDArray[np.intp]:
    """Bin index of each value against ascending inner ``edges``.

    ``side="left"`` puts a value equal to an edge in the lower bin.
    """
    return np.searchsorted(edges, np.asarray(values, dtype=np.float64), side="left")


def quantile_edges(values: ArrayLike, bins: int = DEFAULT_BINS) -> tuple[float, ...]:
    """Inner edges at the ``1/bins ... (bins-1)/bins`` quantiles, as observed values.

    Duplicate quantiles collapse and an edge equal to the maximum is dropped
    (the bin above it would be empty), so no training bin is empty.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("no values to take quantile edges from")
    if not np.isfinite(x).all():
        raise ValueError("quantile edges need finite values")
    probabilities = np.arange(1, bins) / bins
    edges = np.unique(np.quantile(x, probabilities, method="inverted_cdf"))
    return tuple(float(e) for e in edges[edges < x.max()])


def numeric_reference(
    name: str, values: ArrayLike, bins: int = DEFAULT_BINS
) -> NumericReference:
    """Quantile bins of ``values`` and the share of values in each."""
    x = np.asarray(values, dtype=np.float64).ravel()
    edges = quantile_edges(x, bins)
    counts = np.bincount(bin_numeric(np.asarray(edges), x), minlength=len(edges) + 1)
    return NumericReference(name, edges, _shares(counts))


def categorical_reference(name: str, codes: ArrayLike) -> CategoricalReference:
    """Share of each schema category among ``codes`` (schema category indices)."""
    categories = CATEGORICAL_BY_NAME[name].categories
    index = np.asarray(codes, dtype=np.float64).ravel().astype(np.intp)
    if index.size and (index.min() < 0 or index.max() >= len(categories)):
        raise ValueError(f"{name}: category code outside 0..{len(categories) - 1}")
    counts = np.bincount(index, minlength=len(categories))
    return CategoricalReference(name, categories, _shares(counts))


def reference_from_codes(
    codes: ArrayLike, scores: ArrayLike, bins: int = DEFAULT_BINS
) -> ReferenceDistributions:
    """References from an ``(n, 19)`` schema-code matrix and ``n'`` scores."""
    matrix = np.asarray(codes, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != len(FEATURE_ORDER):
        raise ValueError(f"codes must be (n, {len(FEATURE_ORDER)}), got {matrix.shape}")
    features: list[FeatureReference] = []
    for position, name in enumerate(FEATURE_ORDER):
        column = matrix[:, position]
        if name in CATEGORICAL_BY_NAME:
            features.append(categorical_reference(name, column))
        else:
            features.append(numeric_reference(name, column, bins))
    score_values = np.asarray(scores, dtype=np.float64).ravel()
    return ReferenceDistributions(
        features=tuple(features),
        score=numeric_reference(SCORE_NAME, score_values, bins),
        rows=int(matrix.shape[0]),
        score_rows=int(score_values.size),
    )


def _check_shares(name: str, shares: tuple[float, ...]) -> None:
    if any(s < 0 for s in shares) or abs(sum(shares) - 1.0) > 1e-6:
        raise ReferenceFormatError(f"{name}: shares must be >= 0 and sum to 1")


def _shares(counts: NDArray[np.int64]) -> tuple[float, ...]:
    total = int(counts.sum())
    if total == 0:
        raise ValueError("no rows to take shares from")
    return tuple(float(c) / total for c in counts)


def _feature_to_metadata(reference: FeatureReference) -> dict[str, Any]:
    if isinstance(reference, NumericReference):
        return {
            "kind": "numeric",
            "edges": list(reference.edges),
            "shares": list(reference.shares),
        }
    return {
        "kind": "categorical",
        "categories": list(reference.categories),
        "shares": list(reference.shares),
    }


def _feature_from_metadata(name: str, data: Any) -> FeatureReference:
    if name in CATEGORICAL_BY_NAME:
        if not isinstance(data, Mapping) or data.get("kind") != "categorical":
            raise ReferenceFormatError(f"{name}: expected a categorical reference")
        categories = tuple(str(c) for c in _list(name, data, "categories"))
        if categories != CATEGORICAL_BY_NAME[name].categories:
            raise ReferenceFormatError(f"{name}: categories differ from the schema's")
        return CategoricalReference(name, categories, _floats(name, data, "shares"))
    return _numeric_from_metadata(name, data)


def _numeric_from_metadata(name: str, data: Any) -> NumericReference:
    if not isinstance(data, Mapping) or data.get("kind") != "numeric":
        raise ReferenceFormatError(f"{name}: expected a numeric reference")
    return NumericReference(
        name, _floats(name, data, "edges"), _floats(name, data, "shares")
    )


def _list(name: str, data: Mapping[str, Any], key: str) -> Sequence[Any]:
    value = data.get(key)
    if not isinstance(value, list | tuple):
        raise ReferenceFormatError(f"{name}: '{key}' must be a list")
    return value


def _floats(name: str, data: Mapping[str, Any], key: str) -> tuple[float, ...]:
    values = _list(name, data, key)
    try:
        result = tuple(float(v) for v in values)
    except (TypeError, ValueError) as e:
        raise ReferenceFormatError(f"{name}: '{key}' must hold numbers") from e
    if not all(np.isfinite(result)):
        raise ReferenceFormatError(f"{name}: '{key}' must hold finite numbers")
    return result


def _count(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ReferenceFormatError(f"reference: '{key}' must be a positive integer")
    return value
