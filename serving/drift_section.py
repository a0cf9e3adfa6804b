"""The experiment page's drift section, built from ``GET /ab-test/drift``.

Rendered from the same JSON the API answers (``DriftMonitor.report()``),
every number marked with its pointer into it (``data-drift``), so the page
cannot show a PSI the API does not. Three tables: input drift per variant
(requests in the window, score PSI, the largest feature PSI, status), concept
drift per variant (labels, Brier and AUC worse than held-out by, status) and
the PSI of every feature per variant.

A PSI's status is read against the alerts' thresholds
(``PSI_WARNING_THRESHOLD``, ``PSI_CRITICAL_THRESHOLD``) the way the alert
rules read them: strictly above. A window with fewer than
``DRIFT_MIN_REQUESTS`` requests says so next to its status, because the
alerts do not fire on it. Concept drift's status is the API's own verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any, Final

from ab_router.statistics.concept_drift import ConceptDriftConfig
from ab_router.statistics.psi import (
    DRIFT_MIN_REQUESTS,
    PSI_CRITICAL_THRESHOLD,
    PSI_WARNING_THRESHOLD,
)
from serving.page_html import MISSING, Section, at, text, utc, value

SECTION_ID: Final = "drift"
STABLE, WARNING, CRITICAL = "stable", "warning", "critical"
NO_DATA, NO_REFERENCE = "no data", "no reference"
_SEVERITY: Final = {STABLE: 0, WARNING: 1, CRITICAL: 2}
PSI_SPEC: Final = ".3f"


_ABSENT: Final = object()


def _has(data: Mapping[str, Any], parts: tuple[str | int, ...]) -> bool:
    return at(data, *parts, default=_ABSENT) is not _ABSENT


def _num(report: Mapping[str, Any], parts: tuple[str | int, ...], spec: str) -> str:
    """A marked number; a bare dash where the API reports no such field (a
    model without reference has no requests or PSI to point at)."""
    return value("drift", report, parts, spec) if _has(report, parts) else MISSING


def psi_level(psi: Any) -> str:
    """``critical`` / ``warning`` above the thresholds, ``stable`` at or below."""
    if not isinstance(psi, (int, float)) or not math.isfinite(psi):
        return NO_DATA
    if psi > PSI_CRITICAL_THRESHOLD:
        return CRITICAL
    return WARNING if psi > PSI_WARNING_THRESHOLD else STABLE


def _psis(body: Mapping[str, Any]) -> list[Any]:
    """The score's PSI and every feature's, as the API reports them."""
    features = body.get("features") or []
    return [at(body, "score", "psi"), *(f.get("psi") for f in features)]


def input_status(body: Mapping[str, Any]) -> str:
    """A variant's worst PSI level; ``no reference`` / ``no data`` without one."""
    if body.get("error"):
        return NO_REFERENCE
    levels = [psi_level(p) for p in _psis(body)]
    judged = [level for level in levels if level in _SEVERITY]
    return max(judged, key=_SEVERITY.__getitem__) if judged else NO_DATA


def _status_cell(status: str, words: str) -> str:
    """``status`` (a fixed word) for styling and tests, ``words`` for people."""
    return (
        f'<td class="drift-{status.replace(" ", "-")}" '
        f'data-status="{escape(status)}">{escape(words)}</td>'
    )


def _largest_feature(report: Mapping[str, Any], variant: str) -> str:
    features = at(report, "variants", variant, "features") or []
    finite = [
        (f["psi"], i)
        for i, f in enumerate(features)
        if isinstance(f.get("psi"), (int, float)) and math.isfinite(f["psi"])
    ]
    if not finite:
        return MISSING
    _, index = max(finite)
    parts = ("variants", variant, "features", index, "psi")
    return (
        f"{value('drift', report, parts, PSI_SPEC)} ({text(features[index]['name'])})"
    )


def _input_row(report: Mapping[str, Any], variant: str) -> str:
    body = report["variants"][variant]
    status = input_status(body)
    requests = body.get("requests")
    few = (
        f", fewer than {DRIFT_MIN_REQUESTS:,} requests"
        if status != NO_REFERENCE
        and isinstance(requests, int)
        and requests < DRIFT_MIN_REQUESTS
        else ""
    )
    base = ("variants", variant)
    return (
        f'<tr><th scope="row">{escape(variant)}</th>'
        f"<td>{text(body.get('model_tag'))}</td>"
        f"<td>{_num(report, (*base, 'requests'), ',d')}</td>"
        f"<td>{_num(report, (*base, 'score', 'psi'), PSI_SPEC)}</td>"
        f"<td>{_largest_feature(report, variant)}</td>"
        f"{_status_cell(status, status + few)}</tr>"
    )


def concept_status(concept: Mapping[str, Any]) -> str:
    """The API's verdict in words: drifted on what, or why nothing was judged."""
    if concept.get("drifted"):
        on = [
            name
            for name, key in (("Brier", "brier_drift"), ("AUC", "auc_drift"))
            if concept.get(key)
        ]
        return "drifted: " + ", ".join(on)
    error = concept.get("error")
    return str(error).replace("_", " ") if error else "no drift"


def _concept_row(report: Mapping[str, Any], variant: str) -> str:
    concept = at(report, "variants", variant, "concept_drift") or {}
    status = "drifted" if concept.get("drifted") else "ok"
    base = ("variants", variant, "concept_drift")
    return (
        f'<tr><th scope="row">{escape(variant)}</th>'
        f"<td>{_num(report, (*base, 'labels'), ',d')}</td>"
        f"<td>{_num(report, (*base, 'brier_worse_by'), '+.4f')}</td>"
        f"<td>{_num(report, (*base, 'auc_worse_by'), '+.3f')}</td>"
        f"{_status_cell(status, concept_status(concept))}</tr>"
    )


def _feature_names(report: Mapping[str, Any], variants: Sequence[str]) -> list[str]:
    for variant in variants:
        features = at(report, "variants", variant, "features")
        if features:
            return [str(f["name"]) for f in features]
    return []


def _feature_cell(report: Mapping[str, Any], variant: str, index: int) -> str:
    parts = ("variants", variant, "features", index, "psi")
    level = psi_level(at(report, *parts))
    flag = f" {level}" if level in (WARNING, CRITICAL) else ""
    return (
        f'<td class="drift-{level.replace(" ", "-")}">'
        f"{_num(report, parts, PSI_SPEC)}{flag}</td>"
    )


def _feature_table(report: Mapping[str, Any], variants: Sequence[str]) -> str:
    names = _feature_names(report, variants)
    if not names:
        return ""
    head = "".join(f'<th scope="col">{escape(v)}</th>' for v in variants)
    rows = "".join(
        f'<tr><th scope="row">{escape(name)}</th>'
        + "".join(_feature_cell(report, v, i) for v in variants)
        + "</tr>"
        for i, name in enumerate(names)
    )
    return (
        '<div class="scroll"><table><caption>PSI of each feature against '
        "training</caption>"
        f'<thead><tr><th scope="col">Feature</th>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
    )


def _window_text(report: Mapping[str, Any]) -> str:
    window = report.get("window") or {}
    hours = window.get("hours")
    span = (
        "the whole epoch"
        if not hours
        else f"the last {hours} h (since {escape(utc(window.get('from')))})"
    )
    return f"epoch {value('drift', report, ('window', 'epoch'), 'd')}, {span}"


def _table(caption: str, columns: Sequence[str], rows: str) -> str:
    head = "".join(f'<th scope="col">{c}</th>' for c in columns)
    return (
        f'<div class="scroll"><table><caption>{caption}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>"
    )


def drift_section(report: Mapping[str, Any], concept: ConceptDriftConfig) -> Section:
    """The section for ``GET /ab-test/drift``'s ``report`` (the default window).

    ``concept`` is the service's concept-drift configuration, for the caption.
    """
    variants = sorted((report.get("variants") or {}).keys())
    intro = (
        f"<p>Window: {_window_text(report)}. Status is the largest PSI against "
        f"the model's training reference: above {PSI_WARNING_THRESHOLD:g} "
        f"warning, above {PSI_CRITICAL_THRESHOLD:g} critical (the alerts' "
        f"thresholds; they wait for {DRIFT_MIN_REQUESTS:,} requests).</p>"
    )
    if not variants:
        return Section(SECTION_ID, "Drift per variant", intro + "<p>No variants.</p>")
    inputs = _table(
        "Input drift (PSI against training)",
        ("Variant", "Model", "Requests", "Score PSI", "Largest feature PSI", "Status"),
        "".join(_input_row(report, v) for v in variants),
    )
    labels = value("drift", report, ("concept_window_labels",), ",d")
    concepts = _table(
        f"Concept drift (last {labels} labels against held-out; drifted when "
        f"Brier is worse by more than {concept.brier_margin:g} or AUC by more "
        f"than {concept.auc_margin:g}, from {concept.min_labels:,} labels)",
        ("Variant", "Labels", "Brier worse by", "AUC worse by", "Status"),
        "".join(_concept_row(report, v) for v in variants),
    )
    body = intro + inputs + concepts + _feature_table(report, variants)
    return Section(SECTION_ID, "Drift per variant", body)
