"""``GET /ab-test/``: the experiment as a server-rendered HTML page.

Plain string building with :func:`html.escape` on every value that comes from
the ledger or the configuration (names, reasons, actors, messages): a page
this small does not need a template engine, and one dependency less is one
thing less to keep safe. No script, no external asset: the page refreshes
itself with ``<meta http-equiv="refresh">`` and draws its chart as inline
SVG (:mod:`serving.interval_chart`), so it works offline and in the image;
the Content-Security-Policy it is served with forbids anything else. The
variants' tables are built in :mod:`serving.variant_tables`, the numbers'
markup in :mod:`serving.page_html`.

Every number shown comes from the same snapshot as ``GET /ab-test/stats``
(and ``GET /ab-test/report`` for the fixed-horizon comparisons), and carries
its source as a JSON pointer (``data-stat`` / ``data-summary``) and its
exact value (``data-value``), so a test can check the page against the API.

Cost of a view: the cached snapshot (the epoch's rollups, recomputed only
when they moved, see :meth:`LiveStatistics.snapshot`), its curve capped at
``MAX_CURVE_POINTS`` points, and the experiment's transitions, which grow
with admin actions and canary stages, not with traffic; at most
``MAX_TRANSITIONS`` of them are shown. The curve is the decision's interval
as this process's snapshots saw it (:mod:`serving.interval_history`), so its
last point is the decision's interval; the label-by-label curve from the
rows is the offline report's.

Sections other features add come in as :class:`Section` objects through
``extra_sections``; nothing is shown for a feature that has not supplied one.
Drift per variant (:mod:`serving.drift_section`) is one, read from
``GET /ab-test/drift``'s own answer, its numbers marked ``data-drift``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from starlette.responses import HTMLResponse

from ab_router.statistics.difference_curve import CumulativeDifference
from serving.drift_monitor import DriftMonitor
from serving.drift_section import drift_section
from serving.interval_chart import interval_chart_svg
from serving.live_statistics import LiveStatistics
from serving.page_html import (
    Section,
    at,
    number_text,
    text,
    utc,
    value,
    weights_text,
)
from serving.variant_tables import variants_section

REFRESH_S = 15
MAX_TRANSITIONS = 50
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class PageView:
    """What one rendering of the page reads, all from one snapshot."""

    stats: Mapping[str, Any]
    """``GET /ab-test/stats``."""
    summary: Mapping[str, Any]
    """``ExperimentSummary.to_dict()``, what ``GET /ab-test/report`` shows."""
    curve: CumulativeDifference
    transitions: Sequence[Mapping[str, Any]]
    extra_sections: Sequence[Section] = ()


def page_view(
    statistics: LiveStatistics, extra_sections: Sequence[Section] = ()
) -> PageView:
    """Read the page's inputs: the cached snapshot and the transitions."""
    snapshot = statistics.snapshot()
    return PageView(
        snapshot.stats,
        snapshot.summary.to_dict(),
        snapshot.curve,
        statistics.transitions(),
        tuple(extra_sections),
    )


async def experiment_page_response(
    statistics: LiveStatistics, drift: DriftMonitor | None = None
) -> HTMLResponse:
    """The page as a response, computed off the event loop.

    With ``drift``, the page shows its default window, read exactly as
    ``GET /ab-test/drift`` reads it.
    """
    sections = []
    if drift is not None:
        report = await drift.report()
        sections.append(drift_section(report, drift.settings.concept_config()))
    view = await asyncio.to_thread(page_view, statistics, sections)
    return HTMLResponse(
        render_page(view),
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "Cache-Control": "no-store",
        },
    )


# -- sections ---------------------------------------------------------------


def _overview(stats: Mapping[str, Any], summary: Mapping[str, Any]) -> str:
    stage, stages = stats.get("canary_stage"), stats.get("canary_stages") or []
    if stats.get("mode") == "canary" and isinstance(stage, int) and stage >= 0:
        share = stages[stage] if stage < len(stages) else None
        canary = (
            f"stage {stage + 1} of {len(stages)}, challenger share "
            f"{number_text(share, '.0%')}"
        )
    else:
        canary = "not running"
    rows = [
        ("Experiment", text(stats.get("experiment"))),
        ("Epoch", value("stat", stats, ("epoch",), "d")),
        ("Mode", f"{text(stats.get('mode'))} ({text(summary.get('design'))})"),
        ("Weights in force", weights_text(stats.get("effective_weights"))),
        ("Configured weights", weights_text(stats.get("configured_weights"))),
        (
            "Champion / challenger",
            f"{text(stats.get('champion'))} / {text(stats.get('challenger'))}",
        ),
        (
            "Canary stage",
            f"{escape(canary)} (index {value('stat', stats, ('canary_stage',), 'd')})",
        ),
        ("Requests this epoch", value("stat", stats, ("total_requests",), ",d")),
        ("State changed", escape(utc(stats.get("updated_at")))),
    ]
    items = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return f'<section id="overview"><h2>Experiment</h2><dl>{items}</dl></section>'


def _decision(summary: Mapping[str, Any], stats: Mapping[str, Any]) -> str:
    decision = summary.get("decision") or {}
    verdict = str(decision.get("verdict") or "unknown")
    winner = decision.get("winner")
    more = value("stat", stats, ("decision", "more_labels_needed"), ",d")
    words = {
        "keep_collecting": "Keep collecting labels.",
        "challenger_better": "The challenger is better.",
        "champion_better": "The champion is better.",
        "no_meaningful_difference": "No difference worth acting on.",
        "srm_alarm": "Stop: the split does not match the weights, so the "
        "comparison cannot be trusted.",
    }.get(verdict, verdict.replace("_", " ").capitalize() + ".")
    return (
        f'<section id="decision" class="decision verdict-{escape(verdict)}">'
        "<h2>Decision</h2>"
        f'<p class="verdict" data-verdict="{escape(verdict)}">{escape(words)}'
        + (f" Winner: <strong>{escape(str(winner))}</strong>." if winner else "")
        + "</p>"
        f'<p class="message">{text(decision.get("message"))}</p>'
        f"<p>More labels needed at the observed variance: {more}</p>"
        "</section>"
    )


def _srm(stats: Mapping[str, Any]) -> str:
    srm = stats.get("srm") or {}
    observed, expected = srm.get("observed") or {}, srm.get("expected") or {}
    variants = sorted(set(observed) | set(expected))
    body = "".join(
        f'<tr><th scope="row">{escape(str(v))}</th>'
        f"<td>{value('stat', stats, ('srm', 'observed', v), ',d')}</td>"
        f"<td>{value('stat', stats, ('srm', 'expected', v), ',.1f')}</td></tr>"
        for v in variants
    )
    if srm.get("error"):
        verdict = f"Not checked: {escape(str(srm['error']))}."
    elif srm.get("alarm"):
        verdict = "<strong>Alarm:</strong> the split does not match the weights."
    else:
        verdict = "No mismatch detected."
    return (
        '<section id="srm"><h2>Sample-ratio check</h2>'
        f'<p class="srm-verdict" data-alarm="{str(bool(srm.get("alarm"))).lower()}">'
        f"{verdict} χ² = {value('stat', stats, ('srm', 'statistic'), '.3f')}, "
        f"df = {value('stat', stats, ('srm', 'df'), 'd')}, "
        f"p = {value('stat', stats, ('srm', 'p_value'), '.3g')} "
        f"(alarm below {value('stat', stats, ('srm', 'threshold'), 'g')})</p>"
        '<div class="scroll"><table><caption>Assigned requests</caption>'
        '<thead><tr><th scope="col">Variant</th><th scope="col">Observed</th>'
        '<th scope="col">Expected</th></tr></thead>'
        f"<tbody>{body}</tbody></table></div></section>"
    )


def _comparison(summary: Mapping[str, Any]) -> str:
    champion, challenger = summary.get("champion"), summary.get("challenger")
    names = {
        "brier": "Brier score (lower is better)",
        "log_loss": "Log loss (lower is better)",
        "accuracy": "Accuracy",
        "roc_auc": "ROC AUC",
    }
    rows = []
    for key, name in names.items():
        parts = ("comparison", key)

        def cell(field: str, spec: str, parts: tuple[str, ...] = parts) -> str:
            return value("summary", summary, (*parts, field), spec)

        error = at(summary, *parts, "error")
        rows.append(
            f'<tr><th scope="row">{name}</th><td>{cell("estimate", "+.4f")}</td>'
            f"<td>[{cell('ci_low', '+.4f')}, {cell('ci_high', '+.4f')}]</td>"
            f"<td>{cell('p_value', '.3g')}</td>"
            f"<td>{text(error.replace('_', ' ') if error else 'ok')}</td></tr>"
        )
    sequential = (
        f"[{value('summary', summary, ('sequential', 'lower'), '+.4f')}, "
        f"{value('summary', summary, ('sequential', 'upper'), '+.4f')}]"
    )
    return (
        '<section id="comparison"><h2>Challenger − champion</h2>'
        f"<p>{text(challenger)} − {text(champion)}, on "
        f"{value('summary', summary, ('sequential', 't'), ',d')} labels. "
        f"Anytime-valid interval of the Brier difference: {sequential} "
        f"(estimate {value('summary', summary, ('sequential', 'estimate'), '+.4f')})."
        "</p>"
        '<div class="scroll"><table><caption>Fixed-horizon comparisons, '
        "95 % intervals (for reference; the decision uses the anytime-valid "
        "interval)</caption>"
        '<thead><tr><th scope="col">Metric</th><th scope="col">Difference</th>'
        '<th scope="col">Interval</th><th scope="col">p</th>'
        '<th scope="col">Status</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _chart(summary: Mapping[str, Any], curve: CumulativeDifference) -> str:
    config = summary.get("config") or {}
    label = f"{summary.get('challenger')} − {summary.get('champion')}"
    svg = interval_chart_svg(
        curve,
        mde=float(config.get("mde") or 0.0),
        min_labels=int(config.get("min_labels") or 0),
        alpha=float(config.get("alpha") or 0.05),
        label=label,
    )
    body = (
        f"<figure>{svg}<figcaption>The band is the anytime-valid interval, the "
        "line the running estimate; the dashed lines mark ±MDE. Below zero the "
        f"challenger is better. {len(curve.t)} points: the decision's interval "
        "at each refresh this server computed (the offline report draws it "
        "after every label).</figcaption></figure>"
        if svg
        else "<p>No interval yet: both variants need labels.</p>"
    )
    return (
        '<section id="interval"><h2>Interval against labels collected</h2>'
        f"{body}</section>"
    )


def _transitions(transitions: Sequence[Mapping[str, Any]]) -> str:
    shown = list(reversed(transitions[-MAX_TRANSITIONS:]))
    rows = "".join(
        f'<tr><th scope="row">{escape(utc(t.get("created_at")))}</th>'
        f"<td>{text(t.get('epoch'))}</td><td>{text(t.get('kind'))}</td>"
        f"<td>{weights_text(t.get('weights'))}</td><td>{text(t.get('actor'))}</td>"
        f'<td class="reason">{text(t.get("reason"))}</td></tr>'
        for t in shown
    )
    note = (
        f"<p>Latest {MAX_TRANSITIONS} of {len(transitions)}, newest first.</p>"
        if len(transitions) > MAX_TRANSITIONS
        else ""
    )
    if not shown:
        return '<section id="transitions"><h2>Transitions</h2><p>None.</p></section>'
    return (
        f'<section id="transitions"><h2>Transitions</h2>{note}'
        '<div class="scroll"><table><caption>Changes to the experiment, newest '
        'first</caption><thead><tr><th scope="col">When</th>'
        '<th scope="col">Epoch</th><th scope="col">Kind</th>'
        '<th scope="col">Weights</th><th scope="col">Actor</th>'
        '<th scope="col">Reason</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div></section>"
    )


def _extra(section: Section) -> str:
    return (
        f'<section id="{escape(section.id)}"><h2>{escape(section.heading)}</h2>'
        f"{section.body}</section>"
    )


STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1b1b1b;background:#f4f5f7}
main{max-width:1200px;margin:0 auto;padding:16px 24px 32px}
h1{font-size:1.5rem;margin:8px 0 4px}h2{font-size:1.15rem;margin:0 0 8px}
section{background:#fff;border:1px solid #dde;border-radius:6px;padding:12px 16px;
margin:12px 0}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:0 16px}
.grid>section{margin:12px 0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:0}
dt{color:#555}dd{margin:0}
table{border-collapse:collapse;width:100%;margin:4px 0 8px}
caption{text-align:left;color:#555;padding:4px 0}
th,td{padding:4px 8px;border-bottom:1px solid #e6e6ea;text-align:right;
vertical-align:top}
th[scope=row],thead th:first-child,#transitions th,#transitions td{text-align:left}
thead th{background:#f0f1f4}
.num{font-variant-numeric:tabular-nums}.ci{color:#555;white-space:nowrap}
.scroll{overflow-x:auto}
.verdict{font-size:1.1rem;font-weight:600;margin:0 0 4px}
.verdict-challenger_better{border-left:6px solid #2a7d2a}
.verdict-champion_better,.verdict-no_meaningful_difference{border-left:6px solid
#55a}
.verdict-keep_collecting{border-left:6px solid #c90}
.verdict-srm_alarm{border-left:6px solid #b22}
.chart{width:100%;height:auto;max-height:420px}
.chart .tick{font-size:12px;fill:#444}.chart .axis{font-size:13px;fill:#222}
figure{margin:0}figcaption{color:#555;font-size:.9rem}
footer{color:#666;font-size:.85rem}
.drift-warning{color:#8a5a00;font-weight:600}
.drift-critical,.drift-drifted{color:#b22;font-weight:600}
@media (max-width:700px){
main{padding:8px}.grid{display:block}section{padding:10px}
body{font-size:14px}th,td{padding:3px 5px}
dl{grid-template-columns:1fr}dt{margin-top:6px}
}
"""


def render_page(view: PageView, *, refresh_s: int = REFRESH_S) -> str:
    """The whole page as one HTML document."""
    stats, summary = view.stats, view.summary
    name = text(stats.get("experiment"))
    epoch = text(stats.get("epoch"))
    extra = "".join(_extra(s) for s in view.extra_sections)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="refresh" content="{int(refresh_s)}">'
        '<link rel="icon" href="data:,">'
        f"<title>Experiment {name}, epoch {epoch} · churn-ab</title>"
        f"<style>{STYLE}</style></head><body><main>"
        f"<h1>Experiment {name}</h1>"
        + _decision(summary, stats)
        + '<div class="grid">'
        + _overview(stats, summary)
        + _srm(stats)
        + "</div>"
        + variants_section(stats, summary)
        + _comparison(summary)
        + _chart(summary, view.curve)
        + extra
        + _transitions(view.transitions)
        + f"<footer>Refreshes every {int(refresh_s)} s. Same numbers as "
        '<a href="stats">/ab-test/stats</a> and '
        '<a href="report">/ab-test/report</a>.</footer>'
        "</main></body></html>"
    )
