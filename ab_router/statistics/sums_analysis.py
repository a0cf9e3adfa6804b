"""The live view's labelled data: mergeable sums instead of rows.

:class:`QualitySums` is the :class:`~.analysis.LabelledData` the live
summary reads: the per-design ``quality`` and ``compare`` of
:mod:`.analysis` run on it unchanged, reading
:class:`~.labelled_sums.LabelledSums` and :class:`~.labelled_sums.PairedSums`
(the rollups) instead of rows, so the cost is O(variants × bins) whatever
the epoch's size. Every test but the ROC AUC one reads exactly the inputs
the row path computes (means, moments, counts); the AUC difference uses the
binned AUC and DeLong variance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ab_router.statistics.analysis import PairedEvidence
from ab_router.statistics.auc import auc_z_test, delong_independent_of, label_error
from ab_router.statistics.exposure_arrays import ExposureArrays
from ab_router.statistics.labelled_sums import LabelledSums, PairedSums
from ab_router.statistics.quality import LOG_LOSS_EPS, VariantQuality
from ab_router.statistics.results import DifferenceResult


@dataclass(frozen=True)
class QualitySums:
    """The labelled inputs of the live summary (a :class:`.LabelledData`).

    ``labelled[v]``: the sums of the labelled, non-fallback rows variant ``v``
    answered itself (any mode), the rows :mod:`.analysis` calls "own rows".
    ``paired``: shadow mode, the labelled non-fallback rows the champion
    answered and the challenger also scored; ``None`` when there are none.
    """

    labelled: Mapping[str, LabelledSums]
    paired: PairedSums | None = None

    @classmethod
    def from_arrays(
        cls,
        a: ExposureArrays,
        *,
        champion: str,
        challenger: str,
        eps: float = LOG_LOSS_EPS,
    ) -> QualitySums:
        """The sums a full recomputation from the rows gives (what the
        ledger's rollups must equal: ``rollups --verify``/``--rebuild``)."""
        own = ~a.fallback & a.labelled
        labelled = {
            str(v): _sums(a.take(own & (a.variant == v)), eps)
            for v in np.unique(a.variant[own])
        }
        x = a.take(a.paired_rows(champion, challenger) & a.labelled)
        paired = None
        if x.label.size:
            paired = PairedSums.from_arrays(
                x.probability,
                x.shadow_probability,
                x.label,
                x.prediction,
                x.shadow_prediction,
                eps=eps,
            )
        return cls(labelled, paired)

    def own(self, variant: str) -> LabelledSums:
        found = self.labelled.get(variant)
        return found if found is not None else LabelledSums.empty()

    def pairs_sums(self) -> PairedSums:
        return self.paired if self.paired is not None else PairedSums.empty()

    def own_quality(self, variant: str) -> VariantQuality:
        return VariantQuality.from_sums(variant, self.own(variant))

    def paired_quality(
        self, variant: str, champion: str, challenger: str
    ) -> VariantQuality:
        s = self.pairs_sums()
        side = s.challenger if variant == challenger else s.champion
        return VariantQuality.from_sums(variant, side)

    def independent_auc(
        self, champion: str, challenger: str, alpha: float
    ) -> DifferenceResult:
        s1, s2 = self.own(champion), self.own(challenger)
        return delong_independent_of(s2.auc(), s1.auc(), alpha=alpha)

    def pairs(self, champion: str, challenger: str, alpha: float) -> PairedEvidence:
        s = self.pairs_sums()
        return PairedEvidence(
            s.brier_differences,
            s.log_loss_differences,
            s.only_challenger_correct,
            s.only_champion_correct,
            _paired_auc(s, alpha),
        )


def _sums(x: ExposureArrays, eps: float) -> LabelledSums:
    return LabelledSums.from_arrays(x.probability, x.label, x.prediction, eps=eps)


def _paired_auc(s: PairedSums, alpha: float) -> DifferenceResult:
    """As :func:`.auc.delong_paired`, from the binned placements."""
    method = "delong_paired"
    scores = s.champion.scores
    error = label_error(int(scores.positive.sum()), int(scores.negative.sum()))
    if error is not None:
        return DifferenceResult.failed("roc_auc", method, error, confidence=1 - alpha)
    estimate, var = s.auc_difference()
    return auc_z_test(method, estimate, var, alpha)


__all__ = ["QualitySums"]
