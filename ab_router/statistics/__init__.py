"""Statistics for the churn A/B test: pure numpy/scipy, no BentoML.

Modules, from raw numbers to a verdict:

- :mod:`.summaries`: mergeable ``MomentSummary`` / ``ProportionSummary`` /
  ``ConfusionSummary`` (frozen, ``__add__``), GrowthBook-gbstats style.
- :mod:`.srm`: sample-ratio-mismatch χ² check.
- :mod:`.quality`: per-variant accuracy, precision, recall, ROC AUC, Brier,
  log loss, churn rates.
- :mod:`.latency`: mergeable fixed-bucket latency histogram and percentiles.
- :mod:`.exposure_arrays`: exposures as column arrays.
- :mod:`.traffic_summary`: ``EpochTraffic``, mergeable counts and latency per
  group of exposures, all the statistics read from unlabelled traffic.
- :mod:`.two_sample`: Welch t and two-proportion tests (split, canary).
- :mod:`.paired`: paired t and McNemar (shadow mode).
- :mod:`.auc`: DeLong variance, independent and paired AUC differences.
- :mod:`.design`: ``Design`` (independent or paired), derived from the
  traffic ``Mode`` in ``design_of``: the one name for the design.
- :mod:`.running`: the running challenger − champion difference and its
  standard error (vectorised cumulative sums, one function per design),
  shared by the summary, the report and the simulation.
- :mod:`.sequential`: anytime-valid confidence sequence for the primary
  metric (Brier difference).
- :mod:`.analysis`: what differs between the designs (SRM, quality,
  comparisons), one small class each, over a ``LabelledData`` source
  (``LabelledRows``: exact, from rows).
- :mod:`.labelled_sums`: labelled quality as mergeable sums (``LabelledSums``,
  ``PairedSums``, score histograms for a binned AUC), with the column names
  the ledger's rollups store; the pieces are :mod:`.score_histogram`,
  :mod:`.variant_sums`, :mod:`.paired_sums` and :mod:`.sums_storage`.
- :mod:`.sums_analysis`: ``QualitySums``, the ``LabelledData`` the live view
  reads from those sums; the designs' code is the same.
- :mod:`.model_split`: sums keyed by variant and model id, never pooled
  across models.
- :mod:`.power`: labels needed for a minimum detectable effect.
- :mod:`.decision`: ``DecisionConfig`` and the verdict.
- :mod:`.experiment`: ``summarize`` (traffic + labelled rows, exact), the
  entry point; ``summarize_arrays`` / ``summarize_experiment`` wrap it;
  ``summarize_sums`` (traffic + labelled sums, binned AUC) for the live view.

Degenerate data never raises: results carry an ``error`` code
(``no_data``, ``too_few_samples``, ``zero_variance``, ``single_class``,
``not_applicable``).

``scipy`` is imported inside the functions that compute a test statistic, not
at module level: every server process imports this package (the ledger's
rollups read its sums), importing ``scipy.stats`` costs ~0.7 s of CPU, and
only an entry worker asked for a report ever computes a p-value.
"""

from __future__ import annotations

from ab_router.statistics.auc import (
    AucResult,
    auc_with_variance,
    delong_independent,
    delong_paired,
)
from ab_router.statistics.decision import Decision, DecisionConfig, Verdict, decide
from ab_router.statistics.design import Design, design_of
from ab_router.statistics.experiment import (
    Comparison,
    ExperimentSummary,
    summarize,
    summarize_arrays,
    summarize_experiment,
    summarize_sums,
)
from ab_router.statistics.exposure_arrays import ExposureArrays
from ab_router.statistics.labelled_sums import (
    LabelledSums,
    PairedSums,
    ScoreHistogram,
)
from ab_router.statistics.latency import (
    LatencyHistogram,
    LatencySummary,
    latency_summary,
)
from ab_router.statistics.model_split import MixedModelsError, ModelSplit
from ab_router.statistics.paired import mcnemar_test, paired_t_test
from ab_router.statistics.power import anytime_labels, fixed_horizon_labels
from ab_router.statistics.quality import (
    VariantQuality,
    brier_losses,
    log_losses,
    variant_quality,
)
from ab_router.statistics.results import DifferenceResult, to_jsonable
from ab_router.statistics.sequential import (
    SequentialResult,
    anytime_p_value,
    boundary_factor,
    confidence_sequence,
    mixture_rho,
)
from ab_router.statistics.srm import SrmResult, srm_test
from ab_router.statistics.summaries import (
    NO_DATA,
    NOT_APPLICABLE,
    SINGLE_CLASS,
    TOO_FEW_SAMPLES,
    ZERO_VARIANCE,
    ConfusionSummary,
    MomentSummary,
    ProportionSummary,
)
from ab_router.statistics.sums_analysis import QualitySums
from ab_router.statistics.traffic_summary import EpochTraffic
from ab_router.statistics.two_sample import two_proportion_test, welch_test

__all__ = [
    "NOT_APPLICABLE",
    "NO_DATA",
    "SINGLE_CLASS",
    "TOO_FEW_SAMPLES",
    "ZERO_VARIANCE",
    "AucResult",
    "Comparison",
    "ConfusionSummary",
    "Decision",
    "DecisionConfig",
    "Design",
    "DifferenceResult",
    "EpochTraffic",
    "ExperimentSummary",
    "ExposureArrays",
    "LabelledSums",
    "LatencyHistogram",
    "LatencySummary",
    "MixedModelsError",
    "ModelSplit",
    "MomentSummary",
    "PairedSums",
    "ProportionSummary",
    "QualitySums",
    "ScoreHistogram",
    "SequentialResult",
    "SrmResult",
    "VariantQuality",
    "Verdict",
    "anytime_labels",
    "anytime_p_value",
    "auc_with_variance",
    "boundary_factor",
    "brier_losses",
    "confidence_sequence",
    "decide",
    "delong_independent",
    "delong_paired",
    "design_of",
    "fixed_horizon_labels",
    "latency_summary",
    "log_losses",
    "mcnemar_test",
    "mixture_rho",
    "paired_t_test",
    "srm_test",
    "summarize",
    "summarize_arrays",
    "summarize_experiment",
    "summarize_sums",
    "to_jsonable",
    "two_proportion_test",
    "variant_quality",
    "welch_test",
]
