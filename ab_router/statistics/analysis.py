"""The two designs, one small class each, over either source of labels.

:class:`IndependentAnalysis` (split, canary) and :class:`PairedAnalysis`
(shadow) answer the same questions, so :func:`~.experiment.summarize` and
the report never branch on the design:

- ``srm``: the sample-ratio-mismatch check (not applicable when paired:
  nothing is randomised);
- ``quality``: the labelled data a variant is judged on (when paired, both
  variants on the same pairs, the challenger from its shadow scores);
- ``compare``: the fixed-horizon challenger − champion tests, the Brier
  difference for the confidence sequence (:mod:`.running`) and the labels
  that count per variant;
- ``running_brier``: the Brier difference after each label, in label-arrival
  order (the report's curve; rows only).

``quality`` and ``compare`` read a :class:`LabelledData`: the only thing
that differs between the exact summary and the live one is where the
labelled inputs come from. :class:`LabelledRows` computes them from rows
(exact, for the offline report); :class:`~.sums_analysis.QualitySums` from
the mergeable sums of the live view's rollups.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ab_router.statistics.auc import delong_independent, delong_paired
from ab_router.statistics.decision import DecisionConfig
from ab_router.statistics.design import Design
from ab_router.statistics.exposure_arrays import ExposureArrays
from ab_router.statistics.paired import mcnemar_test, paired_t_test
from ab_router.statistics.quality import (
    LOG_LOSS_EPS,
    VariantQuality,
    brier_losses,
    log_losses,
    variant_quality,
)
from ab_router.statistics.results import DifferenceResult
from ab_router.statistics.running import (
    RunningDifference,
    RunningMoments,
    independent_difference,
    paired_difference,
    running_independent,
    running_paired,
)
from ab_router.statistics.srm import SrmResult, srm_test
from ab_router.statistics.summaries import NOT_APPLICABLE, MomentSummary
from ab_router.statistics.two_sample import two_proportion_test, welch_test


@dataclass(frozen=True)
class Comparison:
    """Challenger − champion differences with fixed-horizon 95 % intervals."""

    design: Design
    brier: DifferenceResult
    log_loss: DifferenceResult
    accuracy: DifferenceResult
    roc_auc: DifferenceResult


@dataclass(frozen=True)
class Compared:
    """What :meth:`DesignAnalysis.compare` finds."""

    comparison: Comparison
    brier: RunningDifference
    """The Brier difference at the current labels (0-d arrays)."""
    labelled: dict[str, int]
    """Labels that count per variant (pairs, when paired)."""


@dataclass(frozen=True)
class PairedEvidence:
    """What the paired tests read about the labelled shadow pairs."""

    brier_differences: MomentSummary
    """Per-pair Brier(challenger) − Brier(champion)."""
    log_loss_differences: MomentSummary
    only_challenger_correct: int
    only_champion_correct: int
    roc_auc: DifferenceResult
    """The paired challenger − champion ROC AUC test."""

    @property
    def n(self) -> int:
        return self.brier_differences.n


class LabelledData(Protocol):
    """Where the labelled inputs of ``quality`` and ``compare`` come from."""

    def own_quality(self, variant: str) -> VariantQuality:
        """Quality on the labelled rows ``variant`` answered itself."""
        ...

    def paired_quality(
        self, variant: str, champion: str, challenger: str
    ) -> VariantQuality:
        """Quality of ``variant`` (champion or challenger) on the shadow pairs."""
        ...

    def independent_auc(
        self, champion: str, challenger: str, alpha: float
    ) -> DifferenceResult:
        """The challenger − champion ROC AUC test on each one's own rows."""
        ...

    def pairs(self, champion: str, challenger: str, alpha: float) -> PairedEvidence:
        """The paired tests' inputs on the shadow pairs."""
        ...


class DesignAnalysis(Protocol):
    design: Design

    def srm(
        self,
        assigned: Mapping[str, int],
        weights: Mapping[str, float],
        threshold: float,
    ) -> SrmResult: ...

    def quality(
        self, data: LabelledData, variant: str, champion: str, challenger: str
    ) -> VariantQuality: ...

    def compare(
        self,
        data: LabelledData,
        quality: Mapping[str, VariantQuality],
        champion: str,
        challenger: str,
        config: DecisionConfig,
    ) -> Compared: ...

    def running_brier(
        self, a: ExposureArrays, champion: str, challenger: str
    ) -> RunningDifference: ...


class LabelledRows:
    """:class:`LabelledData` from labelled exposure rows (exact)."""

    def __init__(self, a: ExposureArrays, eps: float = LOG_LOSS_EPS) -> None:
        self.a, self.eps = a, eps

    def _own_rows(self, variant: str) -> ExposureArrays:
        a = self.a
        return a.take(~a.fallback & (a.variant == variant) & a.labelled)

    def _pairs(self, champion: str, challenger: str) -> ExposureArrays:
        return self.a.take(self.a.paired_rows(champion, challenger) & self.a.labelled)

    def own_quality(self, variant: str) -> VariantQuality:
        x = self._own_rows(variant)
        return variant_quality(
            variant, x.probability, x.label, x.prediction, eps=self.eps
        )

    def paired_quality(
        self, variant: str, champion: str, challenger: str
    ) -> VariantQuality:
        x = self._pairs(champion, challenger)
        if variant == challenger:
            p, pred = x.shadow_probability, x.shadow_prediction
        else:
            p, pred = x.probability, x.prediction
        return variant_quality(variant, p, x.label, pred, eps=self.eps)

    def independent_auc(
        self, champion: str, challenger: str, alpha: float
    ) -> DifferenceResult:
        x1, x2 = self._own_rows(champion), self._own_rows(challenger)
        return delong_independent(
            x2.probability, x2.label, x1.probability, x1.label, alpha=alpha
        )

    def pairs(self, champion: str, challenger: str, alpha: float) -> PairedEvidence:
        x, eps = self._pairs(champion, challenger), self.eps
        y, p1, p2 = x.label, x.probability, x.shadow_probability
        correct1, correct2 = x.prediction == y, x.shadow_prediction == y
        return PairedEvidence(
            MomentSummary.from_values(brier_losses(p2, y) - brier_losses(p1, y)),
            MomentSummary.from_values(
                log_losses(p2, y, eps=eps) - log_losses(p1, y, eps=eps)
            ),
            int(np.sum(correct2 & ~correct1)),
            int(np.sum(correct1 & ~correct2)),
            delong_paired(p2, p1, y, alpha=alpha),
        )


def _in_label_order(a: ExposureArrays, rows: np.ndarray) -> ExposureArrays:
    return a.take(np.flatnonzero(rows)[np.argsort(a.label_time[rows], kind="stable")])


class IndependentAnalysis:
    """Split and canary: each variant is judged on the requests it answered."""

    design = Design.INDEPENDENT

    def srm(
        self,
        assigned: Mapping[str, int],
        weights: Mapping[str, float],
        threshold: float,
    ) -> SrmResult:
        return srm_test(assigned, weights, threshold=threshold)

    def quality(
        self, data: LabelledData, variant: str, champion: str, challenger: str
    ) -> VariantQuality:
        return data.own_quality(variant)

    def compare(
        self,
        data: LabelledData,
        quality: Mapping[str, VariantQuality],
        champion: str,
        challenger: str,
        config: DecisionConfig,
    ) -> Compared:
        alpha = config.alpha
        q1, q2 = quality[champion], quality[challenger]
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
            roc_auc=data.independent_auc(champion, challenger, alpha),
        )
        brier = independent_difference(
            RunningMoments.of(q1.brier_summary), RunningMoments.of(q2.brier_summary)
        )
        return Compared(comparison, brier, {v: q.labelled for v, q in quality.items()})

    def running_brier(
        self, a: ExposureArrays, champion: str, challenger: str
    ) -> RunningDifference:
        two = (a.variant == champion) | (a.variant == challenger)
        x = _in_label_order(a, ~a.fallback & a.labelled & two)
        return running_independent(
            brier_losses(x.probability, x.label), x.variant == challenger
        )


class PairedAnalysis:
    """Shadow: champion and challenger are judged on the same labelled pairs."""

    design = Design.PAIRED

    def srm(
        self,
        assigned: Mapping[str, int],
        weights: Mapping[str, float],
        threshold: float,
    ) -> SrmResult:
        nan = math.nan
        return SrmResult(
            dict(assigned), {}, nan, 0, nan, False, threshold, error=NOT_APPLICABLE
        )

    def quality(
        self, data: LabelledData, variant: str, champion: str, challenger: str
    ) -> VariantQuality:
        if variant not in (champion, challenger):
            return data.own_quality(variant)
        return data.paired_quality(variant, champion, challenger)

    def compare(
        self,
        data: LabelledData,
        quality: Mapping[str, VariantQuality],
        champion: str,
        challenger: str,
        config: DecisionConfig,
    ) -> Compared:
        alpha = config.alpha
        s = data.pairs(champion, challenger, alpha)
        comparison = Comparison(
            self.design,
            brier=paired_t_test(s.brier_differences, metric="brier", alpha=alpha),
            log_loss=paired_t_test(
                s.log_loss_differences, metric="log_loss", alpha=alpha
            ),
            accuracy=mcnemar_test(
                s.only_challenger_correct, s.only_champion_correct, s.n, alpha=alpha
            ),
            roc_auc=s.roc_auc,
        )
        brier = paired_difference(RunningMoments.of(s.brier_differences))
        return Compared(comparison, brier, {champion: s.n, challenger: s.n})

    def running_brier(
        self, a: ExposureArrays, champion: str, challenger: str
    ) -> RunningDifference:
        x = _in_label_order(a, a.paired_rows(champion, challenger) & a.labelled)
        return running_paired(
            brier_losses(x.shadow_probability, x.label)
            - brier_losses(x.probability, x.label)
        )


_ANALYSES: dict[Design, DesignAnalysis] = {
    Design.INDEPENDENT: IndependentAnalysis(),
    Design.PAIRED: PairedAnalysis(),
}


def analysis_for(design: Design | str) -> DesignAnalysis:
    """The analysis of ``design`` (a :class:`Design` or its value)."""
    return _ANALYSES[Design(design)]


__all__ = [
    "Compared",
    "Comparison",
    "DesignAnalysis",
    "IndependentAnalysis",
    "LabelledData",
    "LabelledRows",
    "PairedAnalysis",
    "PairedEvidence",
    "analysis_for",
]
