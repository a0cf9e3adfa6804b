"""``summarize``: everything ``GET /ab-test/stats`` and the report show.

It reads two inputs: an :class:`~.traffic_summary.EpochTraffic` (counts,
predicted churn and latency histograms per group, built by one SQL GROUP BY
on the live path) and the *labelled* exposures as column arrays. Memory is
therefore O(labels + latency buckets), independent of unlabelled traffic.
``summarize_arrays`` and ``summarize_experiment`` derive both inputs from
all exposures (offline report, tests) and go through the same code.

:func:`summarize_sums` is the live view's sibling: the same traffic summary,
but labelled quality from mergeable sums (:mod:`.labelled_sums`, read through
:mod:`.sums_analysis`), so it costs O(variants × bins) at any epoch size. The
two share everything but the source of the labelled data (a
:class:`~.analysis.LabelledData`); the summary says which ROC AUC it shows in
``auc_method``.

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

from ab_router.records import Exposure
from ab_router.statistics.analysis import (
    Compared,
    Comparison,
    DesignAnalysis,
    LabelledData,
    LabelledRows,
    analysis_for,
)
from ab_router.statistics.decision import (
    Decision,
    DecisionConfig,
    decide,
)
from ab_router.statistics.design import Design, design_of
from ab_router.statistics.exposure_arrays import ExposureArrays
from ab_router.statistics.labelled_sums import SCORE_BINS, LabelledSums, PairedSums
from ab_router.statistics.latency import LatencySummary
from ab_router.statistics.quality import VariantQuality
from ab_router.statistics.results import to_jsonable
from ab_router.statistics.sequential import SequentialResult, confidence_sequence
from ab_router.statistics.srm import SrmResult
from ab_router.statistics.sums_analysis import QualitySums
from ab_router.statistics.traffic_summary import EpochTraffic

#: ``ExperimentSummary.auc_method`` of the exact summary.
AUC_EXACT = "exact"


@dataclass(frozen=True)
class ExperimentSummary:
    """All statistics of one experiment (epoch); ``to_dict`` is JSON-safe."""

    experiment: str | None
    epochs: tuple[int, ...]
    mode: str | None
    design: Design
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
    auc_method: str = AUC_EXACT
    """Where ``roc_auc`` (and its comparison) comes from: ``"exact"`` (every
    score, :func:`summarize`) or ``"binned_<bins>"`` (score histograms,
    :func:`summarize_sums`)."""

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
    """The exact summary: traffic counts and latency from ``traffic``,
    quality and comparisons from the ``labelled`` rows (offline report).

    ``labelled`` needs to hold only the labelled exposures (unlabelled rows
    are ignored), so memory is O(labels + latency buckets), not O(requests).
    """
    return _summary(
        traffic, LabelledRows(labelled, config.log_loss_eps), weights, config,
        champion=champion, challenger=challenger, auc_method=AUC_EXACT,
    )  # fmt: skip


def summarize_sums(
    traffic: EpochTraffic,
    labelled: Mapping[str, LabelledSums],
    paired: PairedSums | None,
    weights: Mapping[str, float],
    config: DecisionConfig,
    *,
    champion: str = "v1",
    challenger: str = "v2",
) -> ExperimentSummary:
    """The live summary, from rollups only: O(variants × bins) at any size.

    ``labelled[v]`` holds the sums of the labelled non-fallback rows ``v``
    answered; ``paired`` those of the labelled shadow pairs (champion
    answered, challenger scored), or None (see :class:`.QualitySums`). They
    must have been built with ``config.log_loss_eps``. Every field equals
    :func:`summarize` on the same rows up to float summation order, except the
    ROC AUC ones, which are binned (``auc_method``; within 0.001, see
    :mod:`.labelled_sums`). Pass sums of one model per variant: see
    :mod:`.model_split`.
    """
    return _summary(
        traffic, QualitySums(labelled, paired), weights, config,
        champion=champion, challenger=challenger,
        auc_method=binned_auc_method(_bins(labelled, paired)),
    )  # fmt: skip


def binned_auc_method(bins: int) -> str:
    """The ``auc_method`` of a summary whose AUC comes from ``bins`` bins."""
    return f"binned_{bins}"


def _bins(labelled: Mapping[str, LabelledSums], paired: PairedSums | None) -> int:
    """The histograms' resolution (the same for every variant by construction)."""
    if paired is not None:
        return paired.champion.scores.bins
    return next((s.scores.bins for s in labelled.values()), SCORE_BINS)


def _variants(
    traffic: EpochTraffic, weights: Mapping[str, float], champion: str, challenger: str
) -> list[str]:
    return sorted({*weights, *traffic.counts("variant"), champion, challenger})


def _summary(
    traffic: EpochTraffic,
    data: LabelledData,
    weights: Mapping[str, float],
    config: DecisionConfig,
    *,
    champion: str,
    challenger: str,
    auc_method: str,
) -> ExperimentSummary:
    """Both summaries: the design's quality and comparisons on ``data`` (rows
    or sums, the only difference), then counts, latency, SRM and the verdict."""
    mode = _main_mode(traffic)
    analysis = _analysis(traffic, mode, champion, challenger)
    quality = {
        v: analysis.quality(data, v, champion, challenger)
        for v in _variants(traffic, weights, champion, challenger)
    }
    compared = analysis.compare(data, quality, champion, challenger, config)
    assigned = traffic.counts("assigned")
    answered = traffic.where(fallback=False)
    srm = analysis.srm(assigned, weights, config.srm_threshold)
    sequential, decision = _verdict(compared, srm, config, champion, challenger)
    experiments = traffic.experiments
    return ExperimentSummary(
        experiment=experiments[0] if len(experiments) == 1 else None,
        epochs=traffic.epochs,
        mode=mode,
        design=analysis.design,
        champion=champion,
        challenger=challenger,
        weights={k: float(v) for k, v in weights.items()},
        total_exposures=traffic.requests,
        exposures=answered.counts("variant"),
        assigned=assigned,
        fallbacks=traffic.where(fallback=True).counts("assigned"),
        labelled=compared.labelled,
        srm=srm,
        quality=quality,
        latency={v: answered.where(variant=v).latency.summary() for v in quality},
        comparison=compared.comparison,
        sequential=sequential,
        decision=decision,
        config=config,
        auc_method=auc_method,
    )


def _main_mode(traffic: EpochTraffic) -> str | None:
    """The mode most exposures of the epoch were recorded in."""
    modes = traffic.counts("mode")
    return max(modes, key=lambda m: modes[m]) if modes else None


def _analysis(
    traffic: EpochTraffic, mode: str | None, champion: str, challenger: str
) -> DesignAnalysis:
    """The analysis of the epoch's design."""
    # Unlabelled shadow rows decide the design too: the design must not flip
    # when the first label arrives.
    pairs = traffic.where(fallback=False, variant=champion, shadow_variant=challenger)
    return analysis_for(design_of(mode, has_pairs=pairs.requests > 0))


def _verdict(
    compared: Compared,
    srm: SrmResult,
    config: DecisionConfig,
    champion: str,
    challenger: str,
) -> tuple[SequentialResult, Decision]:
    """The confidence sequence at the current labels, and the decision on it."""
    brier = compared.brier
    t, se = int(brier.t), float(brier.se)
    sequential = confidence_sequence(
        float(brier.estimate),
        se,
        t,
        alpha=config.alpha,
        planned_labels=config.planned_labels,
    )
    unit_variance = t * se * se if t > 0 and not math.isnan(se) else math.nan
    decision = decide(
        sequential,
        srm,
        compared.labelled,
        unit_variance,
        config,
        champion=champion,
        challenger=challenger,
    )
    return sequential, decision


__all__ = [
    "Comparison",
    "Design",
    "EpochTraffic",
    "ExperimentSummary",
    "ExposureArrays",
    "summarize",
    "summarize_arrays",
    "summarize_experiment",
    "summarize_sums",
]
