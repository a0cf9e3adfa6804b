"""How the labelled sums are stored: column names, and comparing two copies.

The ledger's rollup tables use the column names of
:data:`LABELLED_SUMS_COLUMNS`, :data:`PAIRED_SUMS_COLUMNS` and the sparse
bin rows (:data:`SCORE_BIN_COLUMNS`, :data:`JOINT_BIN_COLUMNS`); the sums'
``columns()`` / ``bin_rows()`` give the values to add, ``from_columns``
reads them back, and ``agrees_with`` compares a rollup with a recomputation
(counts exact, float sums within :data:`SUM_TOLERANCE`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Scalar columns of one variant's labelled sums, in the order of
#: :meth:`LabelledSums.columns` / :meth:`LabelledSums.from_columns`. The
#: ledger's rollup table uses these names, so the two cannot drift apart.
#: ``n`` is also the count of both loss moments (every labelled row has both
#: losses), so it is stored once.
LABELLED_SUMS_COLUMNS = (
    "n", "positives", "sum_p", "sum_p2", "sum_py",
    "brier_sum", "brier_sum_sq", "logloss_sum", "logloss_sum_sq",
    "tp", "fp", "tn", "fn",
)  # fmt: skip
#: Relative (and, near 0, absolute) tolerance on float sums when rollups are
#: compared with a recomputation; counts must match exactly.
SUM_TOLERANCE = 1e-9
#: Columns of a sparse score-bin row: label (0/1), bin in [0, bins), count.
SCORE_BIN_COLUMNS = ("label", "bin", "count")
#: Scalar columns of shadow-mode paired sums (:meth:`PairedSums.columns`):
#: both models' labelled sums, prefixed, then the per-pair differences
#: (challenger − champion; their count is ``champion_n``) and McNemar's
#: discordant counts.
PAIRED_SUMS_COLUMNS = (
    *(f"champion_{c}" for c in LABELLED_SUMS_COLUMNS),
    *(f"challenger_{c}" for c in LABELLED_SUMS_COLUMNS),
    "bdiff_sum", "bdiff_sum_sq", "ldiff_sum", "ldiff_sum_sq",
    "mcnemar_b", "mcnemar_c",
)  # fmt: skip
#: Columns of a sparse joint-bin row of the paired sums.
JOINT_BIN_COLUMNS = ("label", "bin1", "bin2", "count")


def columns_agree(
    mine: Sequence[int | float], theirs: Sequence[int | float], tol: float
) -> bool:
    return all(
        a == b
        if isinstance(a, int) and isinstance(b, int)
        else math.isclose(a, b, rel_tol=tol, abs_tol=tol)
        for a, b in zip(mine, theirs, strict=True)
    )
