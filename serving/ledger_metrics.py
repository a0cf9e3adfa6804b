"""Gauges rendered from the shared ledger at scrape time.

They describe global state (weights, stage, sample ratio), so they are read
from the one place every worker shares instead of being kept per process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scipy import stats

from serving.metrics import PREFIX, GaugeFamily, render_families

if TYPE_CHECKING:
    from serving.entry import EntryApp


def srm_p_value(counts: dict[str, int], weights: dict[str, float]) -> float | None:
    """Chi-square p-value of counts against weights; None without traffic."""
    variants = [v for v, w in weights.items() if w > 0]
    total = sum(counts.get(v, 0) for v in variants)
    if len(variants) < 2 or total == 0:
        return None
    weight_sum = sum(weights[v] for v in variants)
    observed = [counts.get(v, 0) for v in variants]
    expected = [total * weights[v] / weight_sum for v in variants]
    return float(stats.chisquare(observed, expected).pvalue)


def ledger_metrics_text(entry: EntryApp) -> str:
    state = entry.current_state()
    name = state.config.name
    weights = state.effective_weights
    counts = entry.ledger.count_exposures(name, state.epoch)
    families = [
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
        GaugeFamily(
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
                for variant, d in sorted(entry.model_descriptions.items())
            ),
        ),
    ]
    p_value = srm_p_value(counts, weights)
    if p_value is not None:
        families.append(
            GaugeFamily(
                f"{PREFIX}srm_p_value",
                "Sample-ratio-mismatch chi-square p-value of the current epoch.",
                "gauge",
                (({"experiment": name}, p_value),),
            )
        )
    return render_families(families)
