"""Markdown report of an experiment, with PNG plots.

``render_report`` works from ledger records only, so it runs the same on a
live ledger (``python -m ab_router report``) and on synthetic exposures in
tests. Plots use matplotlib's object API on the Agg canvas: no display, no
global pyplot state shared with a host process.

Plots:

- ``brier_difference.png``: the running Brier difference challenger −
  champion after each label (labels in arrival order) with its anytime-valid
  confidence sequence (:mod:`ab_router.statistics.sequential`), the zero line
  and ``±mde``. Because the sequence is valid at every point, reading a
  crossing off this plot is legitimate; the intersection of all past
  intervals is valid too, but not drawn, to keep the plot readable.
- ``latency.png``: latency distributions per answering variant.
- ``traffic_share.png``: share of assigned exposures per variant over time,
  against the configured weights.

Every value is exact: recomputed from the epoch's rows (``summarize``, ROC
AUC ``auc_method = "exact"``), and the report says so; the live view reads
the ledger's rollups instead (``summarize_sums``, binned ROC AUC). The same
values are written machine-readable to ``summary.json``
(``ExperimentSummary.to_dict()``, the shape of ``/ab-test/report``'s
``summary``).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from ab_router.statistics import (
    DecisionConfig,
    DifferenceResult,
    ExperimentSummary,
    ExposureArrays,
    summarize_arrays,
)
from ab_router.statistics.design import Design
from ab_router.statistics.difference_curve import (
    CumulativeDifference,
    cumulative_brier_difference,
    thin,
)
from ab_router.statistics.model_split import models_in_force

if TYPE_CHECKING:
    from ab_router.records import EpochModel, Exposure

REPORT_NAME = "report.md"
SUMMARY_NAME = "summary.json"
MAX_POINTS = 600  # points per curve; more only slows rendering


def _plot_difference(
    curve: CumulativeDifference, config: DecisionConfig, path: Path, label: str
) -> None:
    fig = Figure(figsize=(8, 4.5), dpi=100)
    ax = fig.add_subplot()
    idx = thin(curve.t.size, MAX_POINTS)
    if idx.size:
        t = curve.t[idx]
        ax.fill_between(
            t,
            curve.lower[idx],
            curve.upper[idx],
            alpha=0.25,
            label=f"{1 - config.alpha:.0%} anytime-valid interval",
        )
        ax.plot(t, curve.estimate[idx], lw=1.5, label="running estimate")
        # Scale to the sequence after the warm-up: the first few labels give
        # intervals so wide they would flatten everything else.
        warm = curve.t >= 2 * config.min_labels
        shown = np.isfinite(curve.lower) & np.isfinite(curve.upper) & warm
        if shown.any():
            span = max(
                float(np.abs(curve.lower[shown]).max()),
                float(np.abs(curve.upper[shown]).max()),
                2 * config.mde,
            )
            ax.set_ylim(-1.1 * span, 1.1 * span)
        ax.axvline(2 * config.min_labels, color="grey", ls=":", lw=0.8, label="warm-up")
    ax.axhline(0.0, color="black", lw=0.8)
    for sign in (-1, 1):
        ax.axhline(
            sign * config.mde,
            color="grey",
            ls="--",
            lw=0.8,
            label="±MDE" if sign > 0 else None,
        )
    ax.set_xlabel("labels received (arrival order)")
    ax.set_ylabel(f"Brier difference {label}\n(negative: challenger better)")
    ax.set_title("Brier difference with its anytime-valid confidence sequence")
    ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path)


def _plot_latency(arrays: ExposureArrays, variants: Sequence[str], path: Path) -> None:
    fig = Figure(figsize=(8, 4.5), dpi=100)
    ax = fig.add_subplot()
    ok = ~arrays.fallback
    data = {v: arrays.latency_ms[ok & (arrays.variant == v)] for v in variants}
    data = {v: x[np.isfinite(x) & (x > 0)] for v, x in data.items()}
    nonempty = [x for x in data.values() if x.size]
    if nonempty:
        lo = min(float(x.min()) for x in nonempty)
        hi = max(float(x.max()) for x in nonempty)
        bins: list[float] | int = (
            np.geomspace(lo, hi * 1.0001, 50).tolist() if hi > lo else 10
        )
        for v, x in data.items():
            if x.size:
                p50, p95 = np.percentile(x, [50, 95])
                ax.hist(
                    x,
                    bins=bins,
                    alpha=0.5,
                    density=True,
                    label=f"{v}: p50 {p50:.1f} ms, p95 {p95:.1f} ms",
                )
        if hi > lo:
            ax.set_xscale("log")
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, "no exposures", ha="center", transform=ax.transAxes)
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("density")
    ax.set_title("Latency per answering variant (fallbacks excluded)")
    fig.tight_layout()
    fig.savefig(path)


def _plot_traffic(
    arrays: ExposureArrays, weights: Mapping[str, float], path: Path
) -> None:
    fig = Figure(figsize=(8, 4.5), dpi=100)
    ax = fig.add_subplot()
    created = arrays.created_at
    variants = sorted(set(arrays.assigned.tolist()) | set(weights))
    if created.size:
        t0 = float(created.min())
        hours = (created - t0) / 3600.0
        edges = np.linspace(0.0, max(float(hours.max()), 1e-9), 31)
        which = np.clip(np.searchsorted(edges, hours, side="right") - 1, 0, 29)
        totals = np.bincount(which, minlength=30).astype(float)
        mids = (edges[:-1] + edges[1:]) / 2
        has = totals > 0
        for v in variants:
            counts = np.bincount(which[arrays.assigned == v], minlength=30)
            line = ax.plot(
                mids[has],
                counts[has] / totals[has],
                marker=".",
                label=f"{v} (observed)",
            )
            if weights.get(v, 0.0) > 0 or v in weights:
                share = weights.get(v, 0.0) / max(sum(weights.values()), 1e-12)
                ax.axhline(
                    share,
                    ls="--",
                    lw=0.8,
                    color=line[0].get_color(),
                    label=f"{v} (configured {share:.0%})",
                )
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, "no exposures", ha="center", transform=ax.transAxes)
    ax.set_xlabel("hours since first exposure")
    ax.set_ylabel("share of assigned exposures")
    ax.set_title("Traffic share over time (all exposures, by assigned variant)")
    fig.tight_layout()
    fig.savefig(path)


def fmt(x: float | None, spec: str = ".4f") -> str:
    """A number for the report; NaN and None become an em dash."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return format(x, spec)


def _p(x: float) -> str:
    if not math.isfinite(x):
        return "—"
    return "< 0.0001" if x < 1e-4 else f"{x:.4f}"


def _difference_row(name: str, better: str, r: DifferenceResult) -> str:
    note = f" ({r.error})" if r.error else ""
    return (
        f"| {name} | {fmt(r.estimate)} | [{fmt(r.ci_low)}, {fmt(r.ci_high)}] | "
        f"{_p(r.p_value)} | {r.method}{note} | {better} |"
    )


def _markdown(
    s: ExperimentSummary,
    title: str,
    images: Mapping[str, str],
    models: Sequence[str] = (),
) -> str:
    lines = [
        *_overview(s, title),
        *models,
        *_primary(s, images["difference"]),
        *_srm_section(s, images["traffic"]),
        *_quality_section(s),
        *_comparison_section(s),
        *_latency_section(s, images["latency"]),
        "## Method",
        "",
        "Anytime-valid asymptotic confidence sequence (Waudby-Smith et al. 2024, "
        "normal-mixture boundary of Howard et al. 2021) for the Brier "
        "difference; see `ab_router/statistics/sequential.py`.",
        "",
    ]
    return "\n".join(lines)


def _overview(s: ExperimentSummary, title: str) -> list[str]:
    d, cfg = s.decision, s.config
    return [
        f"# {title}",
        "",
        f"**Verdict: {d.verdict.value}** — {d.message}",
        "",
        f"- Experiment: `{s.experiment}`, epochs {list(s.epochs)}, mode "
        f"`{s.mode}`, analysis `{s.design}`; champion `{s.champion}`, "
        f"challenger `{s.challenger}`",
        f"- Configured weights: {dict(s.weights)}",
        f"- Exposures: {s.total_exposures} in total; answered (no fallback): "
        f"{s.exposures}; fallbacks by assigned variant (excluded): {s.fallbacks}",
        f"- Labels used: {s.labelled}",
        f"- Values: exact, recomputed from every row of the epoch (ROC AUC "
        f"`{s.auc_method}`); the live view (`/ab-test/stats`, `/metrics`, the "
        "experiment page) reads the ledger's rollups, with ROC AUC from "
        "4,096-bin score histograms (`binned_4096`, within 0.001 of exact) "
        "and other values equal up to float rounding",
        f"- Decision settings: α = {cfg.alpha}, MDE = {cfg.mde} (Brier), power = "
        f"{cfg.power}, at least {cfg.min_labels} labels per variant, planned "
        f"labels = {cfg.planned_labels}, SRM threshold p < {cfg.srm_threshold}",
        "",
    ]


def _primary(s: ExperimentSummary, image: str) -> list[str]:
    seq, d, cfg = s.sequential, s.decision, s.config
    return [
        "## Primary metric: Brier difference (anytime-valid)",
        "",
        f"Δ = Brier({s.challenger}) − Brier({s.champion}) = "
        f"**{fmt(seq.estimate)}**, {1 - cfg.alpha:.0%} anytime-valid interval "
        f"**[{fmt(seq.lower)}, {fmt(seq.upper)}]**, anytime-valid p = "
        f"{_p(seq.p_value)}, after {seq.t} labels (ρ = {fmt(seq.rho, '.5f')})."
        + (f" Not computable: `{seq.error}`." if seq.error else ""),
        "",
        f"Power calculation at the observed variance: "
        f"{fmt(d.labels_needed_total, 'd')} labels in total for the anytime-valid "
        f"rule to detect a Brier difference of {cfg.mde} with {cfg.power:.0%} "
        f"power ({fmt(d.fixed_horizon_labels_total, 'd')} for a single "
        f"fixed-horizon look).",
        "",
        f"![Brier difference]({image})",
        "",
    ]


def _srm_section(s: ExperimentSummary, image: str) -> list[str]:
    srm = s.srm
    if srm.error:
        text = f"Not applicable (`{srm.error}`): observed {srm.observed}."
    else:
        text = (
            f"Observed {srm.observed}, expected "
            f"{ {k: round(v, 1) for k, v in srm.expected.items()} }, χ² = "
            f"{fmt(srm.statistic, '.3f')}, df = {srm.df}, p = {_p(srm.p_value)} — "
            + ("**ALARM**" if srm.alarm else "no alarm")
            + (
                f" (traffic to weight-0 variants: {list(srm.unexpected_variants)})"
                if srm.unexpected_variants
                else ""
            )
        )
    return ["## Sample-ratio mismatch", "", text, "", f"![Traffic share]({image})", ""]


def _quality_section(s: ExperimentSummary) -> list[str]:
    lines = [
        "## Quality per variant (labelled exposures)",
        "",
        "| variant | labels | accuracy | precision | recall | ROC AUC | Brier | "
        "log loss | observed churn | predicted churn |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for v, x in s.quality.items():
        lines.append(
            f"| {v} | {x.labelled} | {fmt(x.accuracy)} | {fmt(x.precision)} | "
            f"{fmt(x.recall)} | {fmt(x.roc_auc)} | {fmt(x.brier)} | "
            f"{fmt(x.log_loss)} | {fmt(x.observed_churn_rate)} | "
            f"{fmt(x.predicted_churn_rate)} |"
        )
    return [*lines, ""]


def _comparison_section(s: ExperimentSummary) -> list[str]:
    c, cfg = s.comparison, s.config
    return [
        f"## Fixed-horizon comparisons ({s.challenger} − {s.champion}, "
        f"{1 - cfg.alpha:.0%} intervals)",
        "",
        "Valid for a single look at a pre-planned size only; the decision uses "
        "the anytime-valid interval above.",
        "",
        "| metric | difference | interval | p-value | method | better if |",
        "|---|---|---|---|---|---|",
        _difference_row("Brier", "negative", c.brier),
        _difference_row("log loss", "negative", c.log_loss),
        _difference_row("accuracy", "positive", c.accuracy),
        _difference_row("ROC AUC", "positive", c.roc_auc),
        "",
    ]


def _latency_section(s: ExperimentSummary, image: str) -> list[str]:
    lines = [
        "## Latency (answered requests, fallbacks excluded)",
        "",
        "| variant | n | mean ms | p50 | p95 | p99 | min | max |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v, lat in s.latency.items():
        lines.append(
            f"| {v} | {lat.n} | {fmt(lat.mean_ms, '.2f')} | {fmt(lat.p50_ms, '.2f')} "
            f"| {fmt(lat.p95_ms, '.2f')} | {fmt(lat.p99_ms, '.2f')} | "
            f"{fmt(lat.min_ms, '.2f')} | {fmt(lat.max_ms, '.2f')} |"
        )
    lines += ["", f"![Latency]({image})", ""]
    if s.design is Design.PAIRED:
        lines += [
            "In shadow mode the recorded latency is the champion's; the "
            "challenger scores off the response path.",
            "",
        ]
    return lines


def render_report(
    exposures: Sequence[Exposure],
    weights: Mapping[str, float],
    config: DecisionConfig,
    out_dir: Path,
    *,
    title: str,
    champion: str = "v1",
    challenger: str = "v2",
    models: Sequence[EpochModel] = (),
    model_tags: Mapping[int, str] | None = None,
) -> Path:
    """Write ``report.md`` and its PNG plots into ``out_dir``; return its path.

    ``models`` are the epoch's recorded models, ``model_tags`` every model
    id's tag: the report names the models, and when a variant's exposures
    come from several models it judges only the recorded one's (issue #18:
    never pool two models).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    exposures, model_lines = _one_model_each(exposures, models, model_tags or {})
    arrays = ExposureArrays.from_exposures(exposures)
    summary = summarize_arrays(
        arrays, weights, config, champion=champion, challenger=challenger
    )
    images = _write_plots(arrays, summary, weights, config, out_dir)
    path = out_dir / REPORT_NAME
    path.write_text(_markdown(summary, title, images, model_lines), encoding="utf-8")
    # The same exact values, machine-readable (ExperimentSummary.to_dict()).
    (out_dir / SUMMARY_NAME).write_text(
        json.dumps(summary.to_dict(), indent=1, sort_keys=True), encoding="utf-8"
    )
    return path


def _write_plots(
    arrays: ExposureArrays,
    summary: ExperimentSummary,
    weights: Mapping[str, float],
    config: DecisionConfig,
    out_dir: Path,
) -> dict[str, str]:
    """Draw the three plots into ``out_dir``; their file names by role."""
    champion, challenger = summary.champion, summary.challenger
    images = {
        "difference": "brier_difference.png",
        "latency": "latency.png",
        "traffic": "traffic_share.png",
    }
    curve = cumulative_brier_difference(
        arrays,
        config,
        design=summary.design,
        champion=champion,
        challenger=challenger,
    )
    _plot_difference(
        curve, config, out_dir / images["difference"], f"{challenger} − {champion}"
    )
    variants = [v for v in summary.latency if summary.latency[v].n > 0]
    _plot_latency(arrays, variants, out_dir / images["latency"])
    _plot_traffic(arrays, weights, out_dir / images["traffic"])
    return images


def _one_model_each(
    exposures: Sequence[Exposure],
    models: Sequence[EpochModel],
    tags: Mapping[int, str],
) -> tuple[list[Exposure], list[str]]:
    """The exposures to judge, and the report's section naming the models.

    A variant answered by several models is judged on one, by the live
    view's rule (:func:`~ab_router.statistics.model_split.models_in_force`):
    the first recorded for the epoch, else the highest id.
    """
    seen = Counter((e.variant, e.model_id) for e in exposures)
    recorded = [(m.variant, m.model_id) for m in models]
    by_variant: dict[str, list[int]] = {}
    for variant, model_id in sorted(seen):
        by_variant.setdefault(variant, []).append(model_id)
    mixed = {v for v, ids in by_variant.items() if len(ids) > 1}
    judged = models_in_force({v: by_variant[v] for v in mixed}, recorded)
    kept = [e for e in exposures if judged.get(e.variant, e.model_id) == e.model_id]
    lines = [
        "## Models",
        "",
        "| variant | model | model id | exposures | recorded for the epoch |",
        "|---|---|---|---|---|",
        *(
            f"| {v} | `{tags.get(i, f'model {i}')}` | {i} | {seen.get((v, i), 0)} "
            f"| {'yes' if (v, i) in recorded else 'no'} |"
            for v, i in sorted(set(seen) | set(recorded))
        ),
        "",
    ]
    if mixed:
        lines += [
            f"**Mixed models**: {', '.join(sorted(mixed))} answered with more "
            "than one model in this epoch. The statistics below never pool "
            "them: they use only "
            + ", ".join(f"{v}'s model {judged[v]}" for v in sorted(mixed))
            + ".",
            "",
        ]
    return kept, lines
