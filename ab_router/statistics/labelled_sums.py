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

ROC AUC from the histogram: scores in the same bin count as ties, exact for
the binned scores and within 0.001 of the raw scores' AUC at 4 096 bins
(the bound and why: :mod:`.score_histogram`); DeLong's variance from the
placements of each bin.

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
