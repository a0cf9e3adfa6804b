"""What differs between the two designs, one small class each.

:class:`IndependentAnalysis` (split, canary) and :class:`PairedAnalysis`
(shadow) answer the same questions, so :func:`~.experiment.summarize` and
the report never branch on the design:

- ``srm``: the sample-ratio-mismatch check (not applicable when paired:
  nothing is randomised);
- ``quality``: the labelled rows a variant is judged on (when paired, both
  variants on the same pairs, the challenger from its shadow scores);
- ``compare``: the fixed-horizon challenger − champion tests, the Brier
  difference for the confidence sequence (:mod:`.running`) and the labels
  that count per variant;
- ``running_brier``: the Brier difference after each label, in label-arrival
  order (the report's curve).
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


class DesignAnalysis(Protocol):
    design: Design

    def srm(
        self,
        assigned: Mapping[str, int],
        weights: Mapping[str, float],
        threshold: float,
    ) -> SrmResult: ...

    def quality(
        self,
        a: ExposureArrays,
        variant: str,
        champion: str,
        challenger: str,
        eps: float,
    ) -> VariantQuality: ...

    def compare(
        self,
        a: ExposureArrays,
        quality: Mapping[str, VariantQuality],
        champion: str,
        challenger: str,
        config: DecisionConfig,
    ) -> Compared: ...

    def running_brier(
        self, a: ExposureArrays, champion: str, challenger: str
    ) -> RunningDifference: ...


def _own_rows_quality(a: ExposureArrays, variant: str, eps: float) -> VariantQuality:
    """Quality on the labelled rows ``variant`` answered itself (no fallbacks)."""
    lab = ~a.fallback & (a.variant == variant) & a.labelled
    return variant_quality(
        variant, a.probability[lab], a.label[lab], a.prediction[lab], eps=eps
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
        self,
        a: ExposureArrays,
        variant: str,
        champion: str,
        challenger: str,
        eps: float,
    ) -> VariantQuality:
        return _own_rows_quality(a, variant, eps)

    def compare(
        self,
        a: ExposureArrays,
        quality: Mapping[str, VariantQuality],
        champion: str,
        challenger: str,
        config: DecisionConfig,
    ) -> Compared:
        alpha = config.alpha
        q1, q2 = quality[champion], quality[challenger]
        x1 = a.take(~a.fallback & (a.variant == champion) & a.labelled)
        x2 = a.take(~a.fallback & (a.variant == challenger) & a.labelled)
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
            roc_auc=delong_independent(
                x2.probability, x2.label, x1.probability, x1.label, alpha=alpha
            ),
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
        self,
        a: ExposureArrays,
        variant: str,
        champion: str,
        challenger: str,
        eps: float,
    ) -> VariantQuality:
        if variant not in (champion, challenger):
            return _own_rows_quality(a, variant, eps)
        x = a.take(a.paired_rows(champion, challenger) & a.labelled)
        if variant == challenger:
            p, pred = x.shadow_probability, x.shadow_prediction
        else:
            p, pred = x.probability, x.prediction
        return variant_quality(variant, p, x.label, pred, eps=eps)

    def compare(
        self,
        a: ExposureArrays,
        quality: Mapping[str, VariantQuality],
        champion: str,
        challenger: str,
        config: DecisionConfig,
    ) -> Compared:
        alpha, eps = config.alpha, config.log_loss_eps
        x = a.take(a.paired_rows(champion, challenger) & a.labelled)
        y, p1, p2 = x.label, x.probability, x.shadow_probability
        d_brier = MomentSummary.from_values(brier_losses(p2, y) - brier_losses(p1, y))
        d_log = MomentSummary.from_values(
            log_losses(p2, y, eps=eps) - log_losses(p1, y, eps=eps)
        )
        correct1, correct2 = x.prediction == y, x.shadow_prediction == y
        comparison = Comparison(
            self.design,
            brier=paired_t_test(d_brier, metric="brier", alpha=alpha),
            log_loss=paired_t_test(d_log, metric="log_loss", alpha=alpha),
            accuracy=mcnemar_test(
                int(np.sum(correct2 & ~correct1)),
                int(np.sum(correct1 & ~correct2)),
                int(y.size),
                alpha=alpha,
            ),
            roc_auc=delong_paired(p2, p1, y, alpha=alpha),
        )
        brier = paired_difference(RunningMoments.of(d_brier))
        return Compared(comparison, brier, {champion: d_brier.n, challenger: d_brier.n})

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
    "PairedAnalysis",
    "analysis_for",
]
