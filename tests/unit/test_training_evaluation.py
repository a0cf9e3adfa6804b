"""Evaluation metrics and the threshold rule, checked against brute-force oracles."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from training.evaluation import (
    ECE_BINS,
    evaluate,
    expected_calibration_error,
    format_table,
)
from training.threshold import rate_matching_threshold


def ece_oracle(y: np.ndarray, p: np.ndarray, bins: int) -> float:
    """Loop-per-bin ECE, written independently of the vectorised version."""
    total = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        members = [
            i
            for i, value in enumerate(p)
            if low <= value < high or (b == bins - 1 and value == 1.0)
        ]
        if members:
            gap = abs(np.mean(p[members]) - np.mean(y[members]))
            total += len(members) / len(p) * gap
    return total


def test_ece_matches_loop_oracle_on_random_data() -> None:
    rng = np.random.default_rng(7)
    # Avoid exact bin edges, where float rounding of p * bins may legitimately
    # disagree with the oracle's comparison.
    p = rng.uniform(0.001, 0.999, size=2_000)
    p = p[np.abs(p * ECE_BINS - np.round(p * ECE_BINS)) > 1e-9]
    y = (rng.uniform(size=p.size) < p**1.5).astype(np.int64)
    assert expected_calibration_error(y, p) == pytest.approx(
        ece_oracle(y, p, ECE_BINS), abs=1e-12
    )


def test_ece_hand_computed_example() -> None:
    # Bin 0: p=0.05 twice, one positive -> |0.05 - 0.5| = 0.45, weight 2/4.
    # Bin 9: p=0.95 and 1.0, both positive -> |0.975 - 1| = 0.025, weight 2/4.
    y = np.array([0, 1, 1, 1])
    p = np.array([0.05, 0.05, 0.95, 1.0])
    assert expected_calibration_error(y, p) == pytest.approx(0.5 * 0.45 + 0.5 * 0.025)


def test_ece_rejects_misaligned_input() -> None:
    with pytest.raises(ValueError):
        expected_calibration_error(np.array([0, 1]), np.array([0.5]))


def test_threshold_metrics_use_the_decision_threshold() -> None:
    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8, 0.6, 0.45])
    result = evaluate(
        y, p, decision_threshold=0.4, training_rows=10, data_sha256="a" * 64
    )
    predicted = (p >= 0.4).astype(int)
    assert result.predicted_positive_rate == pytest.approx(predicted.mean())
    assert result.f1 == pytest.approx(f1_score(y, predicted))
    assert result.roc_auc == pytest.approx(roc_auc_score(y, p))
    assert result.base_rate == pytest.approx(0.5)
    assert (result.training_rows, result.test_rows) == (10, 6)
    assert result.brier_score == pytest.approx(np.mean((p - y) ** 2))


def test_metadata_is_plain_python() -> None:
    y = np.array([0, 1, 1, 0])
    p = np.array([0.2, 0.7, 0.6, 0.3])
    metadata = evaluate(
        y, p, decision_threshold=0.5, training_rows=4, data_sha256="b" * 64
    ).as_metadata()
    assert all(type(v) in (float, int, str) for v in metadata.values())


def test_table_has_one_column_per_model() -> None:
    y = np.array([0, 1, 1, 0])
    first = evaluate(
        y,
        np.array([0.2, 0.7, 0.6, 0.3]),
        decision_threshold=0.5,
        training_rows=4,
        data_sha256="c" * 64,
    )
    second = evaluate(
        y,
        np.array([0.6, 0.7, 0.6, 0.3]),
        decision_threshold=0.5,
        training_rows=4,
        data_sha256="c" * 64,
    )
    table = format_table({"v1": first, "v2": second})
    roc_line = next(line for line in table.splitlines() if line.startswith("roc_auc"))
    assert roc_line.split()[1:] == [f"{first.roc_auc:.4f}", f"{second.roc_auc:.4f}"]


def threshold_oracle(p: np.ndarray, base_rate: float) -> float:
    best, best_gap = None, np.inf
    for candidate in sorted(set(p.tolist())):
        gap = abs(np.mean(p >= candidate) - base_rate)
        if gap < best_gap:
            best, best_gap = candidate, gap
    assert best is not None
    return best


@pytest.mark.parametrize("base_rate", [0.0, 0.1, 0.265, 0.5, 0.9, 1.0])
def test_rate_matching_threshold_matches_brute_force(base_rate: float) -> None:
    rng = np.random.default_rng(3)
    # Rounded so that ties exist, as they do with forest vote fractions.
    p = np.round(rng.beta(2, 5, size=500), 2)
    chosen = rate_matching_threshold(p, base_rate)
    assert chosen == threshold_oracle(p, base_rate)


def test_rate_matching_threshold_reaches_the_rate_without_ties() -> None:
    p = np.linspace(0.01, 0.99, 1_000)
    threshold = rate_matching_threshold(p, 0.265)
    assert np.mean(p >= threshold) == pytest.approx(0.265, abs=1e-3)


def test_rate_matching_threshold_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        rate_matching_threshold(np.array([]), 0.2)
    with pytest.raises(ValueError):
        rate_matching_threshold(np.array([0.1]), 1.5)
