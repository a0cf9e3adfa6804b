r"""Labelled quality as mergeable sufficient statistics (issue #12, section 2).

Everything the live view needs about labelled rows, held in frozen
dataclasses with ``__add__`` (gbstats style): a label's transaction adds one
row's worth, workers, replicas and time windows add up, and reading the
experiment costs O(variants × bins), not O(labels).

Per variant, :class:`LabelledSums`:

- ``n``, ``Σy``, ``Σp``, ``Σp²``, ``Σp·y`` (Brier mean, calibration);
- Brier and log-loss :class:`MomentSummary` (sum and sum of squares of the
  per-row losses: Welch tests and the confidence sequence need the
  variance, which ``Σp², Σp·y`` alone do not give); the log-loss sum is
  ``log_loss.sum``;
- confusion counts of the prediction recorded with the exposure (its own
  threshold);
- a :class:`ScoreHistogram`: counts of scores per bin, by label.

The pieces live in modules with one job each, all importable from here:
:mod:`.score_histogram` (the histogram and its AUC), :mod:`.variant_sums`
(:class:`LabelledSums`), :mod:`.paired_sums` (:class:`PairedSums`) and
:mod:`.sums_storage` (column names and comparison).

ROC AUC from the histogram: scores in the same bin count as ties (one half),
which is exact for the binned scores. Against the raw scores the error is
at most half the share of positive–negative pairs that share a bin,

    |AUC_binned − AUC| ≤ ½ Σ_b pos_b · neg_b / (P · N),

which :meth:`ScoreHistogram.auc_error_bound` reports from the counts alone.
For smooth score densities ``f₊, f₋`` and ``B`` equal bins on [0, 1] the
bound is about ``½ ∫ f₊ f₋ / B``: with ``B`` = 4 096 it stays below 0.001
while ``∫ f₊ f₋ ≤ 8``, and the error actually seen is far smaller because
orderings inside a bin cancel (about 1e-5 on the random data of the tests).
DeLong's variance uses the placements of each bin (fraction of negatives
below plus half the ties), so it is DeLong's variance of the binned scores,
exactly.

Shadow mode, :class:`PairedSums`: both variants' sums on the same pairs,
per-pair Brier and log-loss differences, McNemar's discordant counts, and a
coarse joint histogram (64 × 64 bins by label) for the covariance of the two
models' placements that the paired DeLong variance needs; a full-resolution
joint histogram would cost 4 096² counts.

Storage (:mod:`.sums_storage`): the ledger's rollup tables use the column
names of :data:`LABELLED_SUMS_COLUMNS`, :data:`PAIRED_SUMS_COLUMNS` and the
sparse bin rows (:data:`SCORE_BIN_COLUMNS`, :data:`JOINT_BIN_COLUMNS`);
``columns()`` / ``bin_rows()`` give the values to add, ``from_columns``
reads them back. Every sum negates, so a changed label's old contribution
is subtracted (``new − old``), and ``agrees_with`` compares a rollup with a
recomputation (counts exact, float sums within :data:`SUM_TOLERANCE`).

The anytime-valid decision reads the same sums:
:meth:`LabelledSums.brier_difference` / :meth:`PairedSums.brier_difference`
give the :class:`~.running.RunningDifference` the summary feeds to
:func:`~.sequential.confidence_sequence`.
"""

from __future__ import annotations

from ab_router.statistics.paired_sums import JOINT_BINS, PairedSums
from ab_router.statistics.score_histogram import SCORE_BINS, ScoreHistogram, score_bins
from ab_router.statistics.sums_storage import (
    JOINT_BIN_COLUMNS,
    LABELLED_SUMS_COLUMNS,
    PAIRED_SUMS_COLUMNS,
    SCORE_BIN_COLUMNS,
    SUM_TOLERANCE,
)
from ab_router.statistics.variant_sums import LabelledSums

__all__ = [
    "JOINT_BINS",
    "JOINT_BIN_COLUMNS",
    "LABELLED_SUMS_COLUMNS",
    "PAIRED_SUMS_COLUMNS",
    "SCORE_BINS",
    "SCORE_BIN_COLUMNS",
    "SUM_TOLERANCE",
    "LabelledSums",
    "PairedSums",
    "ScoreHistogram",
    "score_bins",
]
