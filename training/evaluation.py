"""Score a fitted model on held-out rows and lay the results out side by side."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

ECE_BINS: Final = 10


@dataclass(frozen=True)
class Evaluation:
    """Held-out metrics for one model.

    Threshold metrics (accuracy, precision, recall, F1, predicted positive rate)
    use ``decision_threshold`` (positive when ``p >= threshold``); the others
    use the probabilities. Rates are fractions in [0, 1].
    """

    roc_auc: float
    accuracy: float
    precision: float
    recall: float
    f1: float
    log_loss: float
    brier_score: float
    expected_calibration_error: float
    predicted_positive_rate: float
    base_rate: float
    decision_threshold: float
    training_rows: int
    test_rows: int
    data_sha256: str

    def as_metadata(self) -> dict[str, float | int | str]:
        """Plain Python values, as BentoML model metadata requires."""
        return asdict(self)


def expected_calibration_error(
    target: NDArray[np.int64], probabilities: NDArray[np.float64], bins: int = ECE_BINS
) -> float:
    """ECE over ``bins`` equal-width bins of P(churn) on [0, 1].

    Sum over non-empty bins of (bin share of rows) x |mean predicted P(churn) -
    observed churn rate|. Bin edges are i/bins; a probability equal to an inner
    edge goes to the upper bin and 1.0 goes to the last bin.
    """
    y = np.asarray(target, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    if y.shape != p.shape or y.size == 0:
        raise ValueError("target and probabilities must be non-empty and aligned")
    index = np.minimum((p * bins).astype(np.int64), bins - 1)
    counts = np.bincount(index, minlength=bins)
    predicted = np.bincount(index, weights=p, minlength=bins)
    observed = np.bincount(index, weights=y, minlength=bins)
    filled = counts > 0
    gaps = np.abs(predicted[filled] - observed[filled])  # = count * |mean gap|
    return float(gaps.sum() / y.size)


def evaluate(
    target: NDArray[np.int64],
    probabilities: NDArray[np.float64],
    *,
    decision_threshold: float,
    training_rows: int,
    data_sha256: str,
) -> Evaluation:
    """All held-out metrics for one model's P(churn) on the test rows."""
    y = np.asarray(target, dtype=np.int64)
    p = np.asarray(probabilities, dtype=np.float64)
    predicted = (p >= decision_threshold).astype(np.int64)
    return Evaluation(
        roc_auc=float(roc_auc_score(y, p)),
        accuracy=float(accuracy_score(y, predicted)),
        precision=float(precision_score(y, predicted, zero_division=0)),
        recall=float(recall_score(y, predicted, zero_division=0)),
        f1=float(f1_score(y, predicted, zero_division=0)),
        log_loss=float(log_loss(y, p, labels=[0, 1])),
        brier_score=float(brier_score_loss(y, p)),
        expected_calibration_error=expected_calibration_error(y, p),
        predicted_positive_rate=float(predicted.mean()),
        base_rate=float(y.mean()),
        decision_threshold=float(decision_threshold),
        training_rows=int(training_rows),
        test_rows=int(y.size),
        data_sha256=data_sha256,
    )


def format_table(evaluations: Mapping[str, Evaluation]) -> str:
    """Metrics as rows, models as columns, for the terminal."""
    names: Sequence[str] = list(evaluations)
    if not names:
        return "(no models evaluated)"
    rows = [("metric", *names)]
    for field, _ in asdict(next(iter(evaluations.values()))).items():
        cells = [_cell(asdict(evaluations[n])[field]) for n in names]
        rows.append((field, *cells))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, str) and len(value) == 64:
        return value[:12] + "..."
    return str(value)
