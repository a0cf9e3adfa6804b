"""Gauges rendered from the shared ledger at scrape time.

They describe global state (weights, stage, sample ratio), so they are read
from the one place every worker shares instead of being kept per process.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ab_router.state import ExperimentState
from ab_router.statistics.experiment import ExperimentSummary
from serving.metrics import PREFIX, GaugeFamily, render_families


class GaugeSource(Protocol):
    """What the gauges read: the state, the summary, the rollback count and
    the variants holding more than one model, all from the rollups' snapshot
    (``LiveStatistics``): a scrape costs the same at any epoch size."""

    def current_state(self) -> ExperimentState: ...

    def quality_summary(self) -> ExperimentSummary: ...

    def canary_rollbacks(self) -> int: ...

    def mixed_models(self) -> int: ...


def ledger_metrics_text(
    source: GaugeSource, model_descriptions: Mapping[str, Mapping[str, Any]]
) -> str:
    state = source.current_state()
    summary = source.quality_summary()
    name = state.config.name
    return render_families(
        [
            *_state_families(state),
            _model_family(model_descriptions),
            GaugeFamily(
                f"{PREFIX}srm_p_value",
                "Sample-ratio-mismatch chi-square p-value of the current epoch.",
                "gauge",
                (({"experiment": name}, summary.srm.p_value),),
            ),
            GaugeFamily(
                f"{PREFIX}canary_rollbacks_total",
                "Automatic canary rollbacks recorded in the ledger.",
                "counter",
                (({"experiment": name}, float(source.canary_rollbacks())),),
            ),
            GaugeFamily(
                f"{PREFIX}mixed_models",
                "Variants whose current-epoch traffic or labels come from more "
                "than one model (0 = every variant has one).",
                "gauge",
                (({"experiment": name}, float(source.mixed_models())),),
            ),
            *_quality_families(name, summary),
        ]
    )


def _state_families(state: ExperimentState) -> list[GaugeFamily]:
    name = state.config.name
    weights = state.effective_weights
    return [
        GaugeFamily(
            f"{PREFIX}variant_weight_ratio",
            "Traffic weight in force per variant (0..1).",
            "gauge",
            tuple(({"experiment": name, "variant": v}, w) for v, w in weights.items()),
        ),
        GaugeFamily(
            f"{PREFIX}canary_stage",
            "Index of the current canary stage; -1 outside canary mode.",
            "gauge",
            (({"experiment": name}, float(state.canary_stage)),),
        ),
        GaugeFamily(
            f"{PREFIX}experiment_epoch",
            "Current epoch of the experiment.",
            "gauge",
            (({"experiment": name}, float(state.epoch)),),
        ),
        GaugeFamily(
            f"{PREFIX}experiment_info",
            "The experiment and its mode.",
            "gauge",
            (({"experiment": name, "mode": state.config.mode.value}, 1.0),),
        ),
    ]


def _model_family(descriptions: Mapping[str, Mapping[str, Any]]) -> GaugeFamily:
    return GaugeFamily(
        f"{PREFIX}model_info",
        "Served models.",
        "gauge",
        tuple(
            (
                {
                    "variant": variant,
                    "tag": str(d.get("tag")),
                    "algorithm": str(d.get("algorithm")),
                },
                1.0,
            )
            for variant, d in sorted(descriptions.items())
        ),
    )


def _quality_families(name: str, summary: ExperimentSummary) -> list[GaugeFamily]:
    quality = summary.quality
    return [
        GaugeFamily(
            f"{PREFIX}{metric}",
            f"{help_text} Current epoch, fallbacks excluded.",
            "gauge",
            tuple(
                (
                    {"experiment": name, "variant": variant},
                    float(getattr(q, attribute)),
                )
                for variant, q in sorted(quality.items())
                if q.labelled > 0 or attribute == "labelled"
            ),
        )
        for metric, attribute, help_text in (
            ("variant_brier_score", "brier", "Brier score of labelled exposures."),
            ("variant_roc_auc", "roc_auc", "ROC AUC of labelled exposures."),
            ("labelled_exposures", "labelled", "Labelled exposures."),
        )
    ]
