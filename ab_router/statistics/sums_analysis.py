"""The per-design analysis again, reading mergeable sums instead of rows.

:mod:`.analysis` judges each design on labelled rows (exact, for the offline
report); this module answers the same ``quality`` and ``compare`` questions
from :class:`~.labelled_sums.LabelledSums` and
:class:`~.labelled_sums.PairedSums` (the live view's rollups), so the cost is
O(variants × bins) whatever the epoch's size. Every test but the ROC AUC one
reads exactly the inputs the row path computes (means, moments, counts);
the AUC difference uses the binned AUC and DeLong variance. The SRM check
and the verdict do not read labelled data and stay in :mod:`.analysis` and
:mod:`.experiment`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ab_router.statistics.analysis import Compared, Comparison
from ab_router.statistics.auc import auc_z_test, delong_independent_of, label_error
from ab_router.statistics.decision import DecisionConfig
from ab_router.statistics.design import Design
from ab_router.statistics.exposure_arrays import ExposureArrays
from ab_router.statistics.labelled_sums import LabelledSums, PairedSums
from ab_router.statistics.paired import mcnemar_test, paired_t_test
from ab_router.statistics.quality import LOG_LOSS_EPS, VariantQuality
from ab_router.statistics.results import DifferenceResult
from ab_router.statistics.two_sample import two_proportion_test, welch_test


@dataclass(frozen=True)
class QualitySums:
    """The labelled inputs of the live summary.

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

    def pairs(self) -> PairedSums:
        return self.paired if self.paired is not None else PairedSums.empty()


def _sums(x: ExposureArrays, eps: float) -> LabelledSums:
    return LabelledSums.from_arrays(x.probability, x.label, x.prediction, eps=eps)


class SumsAnalysis(Protocol):
    design: Design

    def quality(
        self, sums: QualitySums, variant: str, champion: str, challenger: str
    ) -> VariantQuality: ...

    def compare(
        self,
        sums: QualitySums,
        quality: Mapping[str, VariantQuality],
        champion: str,
        challenger: str,
        config: DecisionConfig,
    ) -> Compared: ...


class IndependentSums:
    """Split and canary: each variant's own rows (as ``IndependentAnalysis``)."""

    design = Design.INDEPENDENT

    def quality(
        self, sums: QualitySums, variant: str, champion: str, challenger: str
    ) -> VariantQuality:
        return VariantQuality.from_sums(variant, sums.own(variant))

    def compare(
        self,
        sums: QualitySums,
        quality: Mapping[str, VariantQuality],
        champion: str,
        challenger: str,
        config: DecisionConfig,
    ) -> Compared:
        alpha = config.alpha
        q1, q2 = quality[champion], quality[challenger]
        s1, s2 = sums.own(champion), sums.own(challenger)
        comparison = Comparison(
            self.design,
            brier=welch_test(
                q2.brier_summary, q1.brier_summary, metric="brier", alpha=alpha
            ),
            log_loss=welch_test(
                q2.log_loss_summary, q1.log_loss_summary, metric="log_loss", alpha=alpha
            ),
            accuracy=two_proportion_test(
                q2.confusion.correct,
                q1.confusion.correct,
                metric="accuracy",
                alpha=alpha,
            ),
            roc_auc=delong_independent_of(s2.auc(), s1.auc(), alpha=alpha),
        )
        brier = s2.brier_difference(s1)
        return Compared(comparison, brier, {v: q.labelled for v, q in quality.items()})


class PairedSumsAnalysis:
    """Shadow: both variants on the same labelled pairs (as ``PairedAnalysis``)."""

    design = Design.PAIRED

    def quality(
        self, sums: QualitySums, variant: str, champion: str, challenger: str
    ) -> VariantQuality:
        if variant == champion:
            return VariantQuality.from_sums(variant, sums.pairs().champion)
        if variant == challenger:
            return VariantQuality.from_sums(variant, sums.pairs().challenger)
        return VariantQuality.from_sums(variant, sums.own(variant))

    def compare(
        self,
        sums: QualitySums,
        quality: Mapping[str, VariantQuality],
        champion: str,
        challenger: str,
        config: DecisionConfig,
    ) -> Compared:
        alpha = config.alpha
        s = sums.pairs()
        comparison = Comparison(
            self.design,
            brier=paired_t_test(s.brier_differences, metric="brier", alpha=alpha),
            log_loss=paired_t_test(
                s.log_loss_differences, metric="log_loss", alpha=alpha
            ),
            accuracy=mcnemar_test(
                s.only_challenger_correct, s.only_champion_correct, s.n, alpha=alpha
            ),
            roc_auc=_paired_auc(s, alpha),
        )
        return Compared(
            comparison, s.brier_difference(), {champion: s.n, challenger: s.n}
        )


def _paired_auc(s: PairedSums, alpha: float) -> DifferenceResult:
    """As :func:`.auc.delong_paired`, from the binned placements."""
    method = "delong_paired"
    scores = s.champion.scores
    error = label_error(int(scores.positive.sum()), int(scores.negative.sum()))
    if error is not None:
        return DifferenceResult.failed("roc_auc", method, error, confidence=1 - alpha)
    estimate, var = s.auc_difference()
    return auc_z_test(method, estimate, var, alpha)


_ANALYSES: dict[Design, SumsAnalysis] = {
    Design.INDEPENDENT: IndependentSums(),
    Design.PAIRED: PairedSumsAnalysis(),
}


def sums_analysis_for(design: Design | str) -> SumsAnalysis:
    """The sum-based analysis of ``design``."""
    return _ANALYSES[Design(design)]


__all__ = [
    "IndependentSums",
    "PairedSumsAnalysis",
    "QualitySums",
    "SumsAnalysis",
    "sums_analysis_for",
]
