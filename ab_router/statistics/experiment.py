"""``summarize``: everything ``GET /ab-test/stats`` and the report show.

It reads two inputs: an :class:`~.traffic_summary.EpochTraffic` (counts,
predicted churn and latency histograms per group, built by one SQL GROUP BY
on the live path) and the *labelled* exposures as column arrays. Memory is
therefore O(labels + latency buckets), independent of unlabelled traffic.
``summarize_arrays`` and ``summarize_experiment`` derive both inputs from
all exposures (offline report, tests) and go through the same code.

It computes:

- counts: exposures per answering variant, per assigned variant, fallbacks
  per assigned variant (fallback rows are answered by another variant than
  the one assigned, so they are left out of every statistic), labels;
- the sample-ratio-mismatch check on assigned counts (all rows, fallbacks
  included, because assignment happened before the fallback); not applicable
  in shadow mode, where nothing is randomised;
- per-variant quality, and latency (quantiles from the histogram: within
  0.1 ms below 100 ms, 1 ms up to 10 s; see :mod:`.latency`);
- the challenger − champion comparison: independent samples for split and
  canary, paired for shadow mode rows that carry the challenger's
  ``shadow_probability``;
- the anytime-valid confidence sequence for the Brier difference and the
  decision (see :mod:`ab_router.statistics.sequential` and ``.decision``).

Every difference is **challenger − champion**: negative is better for Brier
and log loss, positive is better for accuracy and ROC AUC.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ab_router.records import Exposure, Mode
from ab_router.statistics.auc import delong_independent, delong_paired
from ab_router.statistics.decision import (
    Decision,
    DecisionConfig,
    decide,
)
from ab_router.statistics.exposure_arrays import ExposureArrays
from ab_router.statistics.latency import LatencySummary
from ab_router.statistics.paired import mcnemar_test, paired_t_test
from ab_router.statistics.quality import (
    VariantQuality,
    brier_losses,
    log_losses,
    variant_quality,
)
from ab_router.statistics.results import DifferenceResult, to_jsonable
from ab_router.statistics.sequential import SequentialResult, confidence_sequence
from ab_router.statistics.srm import SrmResult, srm_test
from ab_router.statistics.summaries import NOT_APPLICABLE, MomentSummary
from ab_router.statistics.traffic_summary import EpochTraffic
from ab_router.statistics.two_sample import two_proportion_test, welch_test

INDEPENDENT = "independent"
PAIRED = "paired"


@dataclass(frozen=True)
class Comparison:
    """Challenger − champion differences with fixed-horizon 95 % intervals."""

    design: str  # "independent" or "paired"
    brier: DifferenceResult
    log_loss: DifferenceResult
    accuracy: DifferenceResult
    roc_auc: DifferenceResult


@dataclass(frozen=True)
class ExperimentSummary:
    """All statistics of one experiment (epoch); ``to_dict`` is JSON-safe."""

    experiment: str | None
    epochs: tuple[int, ...]
    mode: str | None
    design: str
    champion: str
    challenger: str
    weights: dict[str, float]
    total_exposures: int
    exposures: dict[str, int]
    """Non-fallback exposures per answering variant."""
    assigned: dict[str, int]
    """All exposures per assigned variant (what the SRM check tests)."""
    fallbacks: dict[str, int]
    """Fallback exposures per assigned variant (excluded from statistics)."""
    labelled: dict[str, int]
    """Labels available to the statistics per variant (pairs in shadow mode)."""
    srm: SrmResult
    quality: dict[str, VariantQuality]
    latency: dict[str, LatencySummary]
    comparison: Comparison
    sequential: SequentialResult
    decision: Decision
    config: DecisionConfig

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only; NaN and infinities become None."""
        out: dict[str, Any] = to_jsonable(self)
        return out


def summarize_experiment(
    exposures: Sequence[Exposure],
    weights: Mapping[str, float],
    config: DecisionConfig,
    *,
    champion: str = "v1",
    challenger: str = "v2",
) -> ExperimentSummary:
    """Summarise exposures of one experiment against its configured ``weights``.

    Pass the exposures of one epoch: the weights must have been constant
    over them for the SRM check and the comparison to be meaningful.
    """
    return summarize_arrays(
        ExposureArrays.from_exposures(exposures),
        weights,
        config,
        champion=champion,
        challenger=challenger,
    )


def summarize_arrays(
    a: ExposureArrays,
    weights: Mapping[str, float],
    config: DecisionConfig,
    *,
    champion: str = "v1",
    challenger: str = "v2",
) -> ExperimentSummary:
    """:func:`summarize_experiment` on exposures already in column form."""
    return summarize(
        EpochTraffic.from_arrays(a),
        a.take(a.labelled),
        weights,
        config,
        champion=champion,
        challenger=challenger,
    )


def summarize(
    traffic: EpochTraffic,
    labelled: ExposureArrays,
    weights: Mapping[str, float],
    config: DecisionConfig,
    *,
    champion: str = "v1",
    challenger: str = "v2",
) -> ExperimentSummary:
    """The one path behind every summary: traffic counts and latency from
    ``traffic``, quality and comparisons from ``labelled``.

    ``labelled`` needs to hold only the labelled exposures (unlabelled rows
    are ignored), so memory is O(labels + latency buckets), not O(requests).
    """
    a = labelled
    modes = traffic.counts("mode")
    mode = max(modes, key=lambda m: modes[m]) if modes else None
    ok = ~a.fallback
    paired_mask = a.paired_rows(champion, challenger)
    # Unlabelled shadow rows decide the design too: the design must not flip
    # when the first label arrives.
    pairs = traffic.where(fallback=False, variant=champion, shadow_variant=challenger)
    design = PAIRED if mode == Mode.SHADOW and pairs.requests else INDEPENDENT

    assigned = traffic.counts("assigned")
    if design == PAIRED:
        srm = SrmResult(
            assigned,
            {},
            math.nan,
            0,
            math.nan,
            False,
            config.srm_threshold,
            error=NOT_APPLICABLE,
        )
    else:
        srm = srm_test(assigned, weights, threshold=config.srm_threshold)

    answered = traffic.where(fallback=False)
    variants = sorted(
        set(weights) | set(traffic.counts("variant")) | {champion, challenger}
    )
    quality: dict[str, VariantQuality] = {}
    latency: dict[str, LatencySummary] = {}
    for v in variants:
        rows = ok & (a.variant == v)
        latency[v] = answered.where(variant=v).latency.summary()
        if design == PAIRED and v == challenger:
            lab = paired_mask & a.labelled
            quality[v] = variant_quality(
                v,
                a.shadow_probability[lab],
                a.label[lab],
                a.shadow_prediction[lab],
                eps=config.log_loss_eps,
            )
            continue
        if design == PAIRED and v == champion:
            lab = paired_mask & a.labelled
        else:
            lab = rows & a.labelled
        quality[v] = variant_quality(
            v,
            a.probability[lab],
            a.label[lab],
            a.prediction[lab],
            eps=config.log_loss_eps,
        )

    alpha = config.alpha
    q1, q2 = quality[champion], quality[challenger]
    if design == PAIRED:
        lab = paired_mask & a.labelled
        y = a.label[lab]
        p1, p2 = a.probability[lab], a.shadow_probability[lab]
        d_brier = MomentSummary.from_values(brier_losses(p2, y) - brier_losses(p1, y))
        d_log = MomentSummary.from_values(
            log_losses(p2, y, eps=config.log_loss_eps)
            - log_losses(p1, y, eps=config.log_loss_eps)
        )
        correct1 = a.prediction[lab] == y
        correct2 = a.shadow_prediction[lab] == y
        comparison = Comparison(
            PAIRED,
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
        t = d_brier.n
        se = math.sqrt(d_brier.variance / t) if t >= 2 else math.nan
        label_counts = {champion: t, challenger: t}
    else:
        b1, b2 = q1.brier_summary, q2.brier_summary
        rows1 = ok & (a.variant == champion) & a.labelled
        rows2 = ok & (a.variant == challenger) & a.labelled
        comparison = Comparison(
            INDEPENDENT,
            brier=welch_test(b2, b1, metric="brier", alpha=alpha),
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
                a.probability[rows2],
                a.label[rows2],
                a.probability[rows1],
                a.label[rows1],
                alpha=alpha,
            ),
        )
        t = b1.n + b2.n
        se = (
            math.sqrt(b1.variance / b1.n + b2.variance / b2.n)
            if b1.n >= 2 and b2.n >= 2
            else math.nan
        )
        label_counts = {v: quality[v].labelled for v in variants}

    estimate = comparison.brier.estimate
    sequential = confidence_sequence(
        estimate, se, t, alpha=alpha, planned_labels=config.planned_labels
    )
    unit_variance = t * se * se if t > 0 and not math.isnan(se) else math.nan
    decision = decide(
        sequential,
        srm,
        label_counts,
        unit_variance,
        config,
        champion=champion,
        challenger=challenger,
    )

    experiments = traffic.experiments
    return ExperimentSummary(
        experiment=experiments[0] if len(experiments) == 1 else None,
        epochs=traffic.epochs,
        mode=mode,
        design=design,
        champion=champion,
        challenger=challenger,
        weights={k: float(v) for k, v in weights.items()},
        total_exposures=traffic.requests,
        exposures=answered.counts("variant"),
        assigned=assigned,
        fallbacks=traffic.where(fallback=True).counts("assigned"),
        labelled=label_counts,
        srm=srm,
        quality=quality,
        latency=latency,
        comparison=comparison,
        sequential=sequential,
        decision=decision,
        config=config,
    )


__all__ = [
    "Comparison",
    "EpochTraffic",
    "ExperimentSummary",
    "ExposureArrays",
    "summarize",
    "summarize_arrays",
    "summarize_experiment",
]
