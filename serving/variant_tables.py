"""The experiment page's variants section: one column per variant.

Two tables from ``GET /ab-test/stats``: traffic and latency of the answering
variant, then labelled quality with intervals at the experiment's level
(``1 - alpha``): the Brier score's normal-approximation interval from its
sums and the accuracy's Wilson interval from the confusion counts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from html import escape
from statistics import NormalDist
from typing import Any

from serving.page_html import at, number_text, value


def mean_interval(moments: Any, confidence: float) -> tuple[float, float] | None:
    """Normal-approximation interval of a mean from (n, Σx, Σx²)."""
    if not isinstance(moments, Mapping):
        return None
    n, s, q = moments.get("n"), moments.get("sum"), moments.get("sum_squares")
    if not isinstance(n, int) or n < 2 or s is None or q is None:
        return None
    mean = s / n
    variance = max(q - s * s / n, 0.0) / (n - 1)
    half = NormalDist().inv_cdf(0.5 + confidence / 2) * math.sqrt(variance / n)
    return mean - half, mean + half


def wilson_interval(
    successes: int, n: int, confidence: float
) -> tuple[float, float] | None:
    """Wilson score interval of a proportion."""
    if n <= 0:
        return None
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _interval_text(interval: tuple[float, float] | None, spec: str) -> str:
    if interval is None:
        return ""
    lo, hi = (number_text(x, spec) for x in interval)
    return f' <span class="ci">[{lo}, {hi}]</span>'


# -- tables -----------------------------------------------------------------


_Cell = Callable[[str], str]


def _row(variants: Sequence[str], label: str, cell: _Cell) -> str:
    cells = "".join(f"<td>{cell(v)}</td>" for v in variants)
    return f'<tr><th scope="row">{label}</th>{cells}</tr>'


def _stat(stats: Mapping[str, Any], *parts: str, spec: str, unit: str = "") -> _Cell:
    return lambda v: value("stat", stats, ("variants", v, *parts), spec, unit)


def _quality(stats: Mapping[str, Any], name: str, spec: str) -> _Cell:
    return lambda v: value("stat", stats, ("quality", v, name), spec)


def _brier(stats: Mapping[str, Any], confidence: float) -> _Cell:
    def cell(v: str) -> str:
        moments = at(stats, "quality", v, "brier_summary")
        return value("stat", stats, ("quality", v, "brier"), ".4f") + _interval_text(
            mean_interval(moments, confidence), ".4f"
        )

    return cell


def _accuracy(stats: Mapping[str, Any], confidence: float) -> _Cell:
    def cell(v: str) -> str:
        c = at(stats, "quality", v, "confusion") or {}
        n = sum(int(c.get(k) or 0) for k in ("tp", "fp", "tn", "fn"))
        correct = int(c.get("tp") or 0) + int(c.get("tn") or 0)
        return value("stat", stats, ("quality", v, "accuracy"), ".3f") + (
            _interval_text(wilson_interval(correct, n, confidence), ".3f")
        )

    return cell


def _quality_note(stats: Mapping[str, Any]) -> _Cell:
    def cell(v: str) -> str:
        error = at(stats, "quality", v, "error")
        return escape(str(error).replace("_", " ")) if error else "ok"

    return cell


def _traffic_rows(stats: Mapping[str, Any], variants: Sequence[str]) -> list[str]:
    def stat(*parts: str, spec: str, unit: str = "") -> _Cell:
        return _stat(stats, *parts, spec=spec, unit=unit)

    return [
        _row(variants, "Requests answered", stat("requests", spec=",d")),
        _row(variants, "Share of traffic", stat("traffic_pct", spec=".1f", unit="%")),
        _row(variants, "Configured weight", stat("configured_weight", spec=".2f")),
        _row(variants, "Fallbacks answered", stat("fallbacks_answered", spec=",d")),
        _row(
            variants, "Predicted churn rate", stat("predicted_churn_rate", spec=".3f")
        ),
        *(
            _row(
                variants,
                f"Latency {q}",
                stat("latency_ms", q, spec=".1f", unit="ms"),
            )
            for q in ("p50", "p95", "p99")
        ),
    ]


def _labelled_rows(
    stats: Mapping[str, Any], variants: Sequence[str], confidence: float
) -> list[str]:
    level = f"{confidence:.0%}"
    return [
        _row(variants, "Labels", _stat(stats, "labelled", spec=",d")),
        _row(variants, f"Brier score [{level} interval]", _brier(stats, confidence)),
        _row(
            variants,
            f"Accuracy [{level} Wilson interval]",
            _accuracy(stats, confidence),
        ),
        _row(variants, "ROC AUC", _quality(stats, "roc_auc", ".3f")),
        _row(variants, "Log loss", _quality(stats, "log_loss", ".4f")),
        _row(
            variants,
            "Observed churn rate",
            _quality(stats, "observed_churn_rate", ".3f"),
        ),
        _row(variants, "Status", _quality_note(stats)),
    ]


def _variant_table(caption: str, variants: Sequence[str], rows: list[str]) -> str:
    head = "".join(f'<th scope="col">{escape(str(v))}</th>' for v in variants)
    return (
        f'<div class="scroll"><table><caption>{caption}</caption>'
        f'<thead><tr><th scope="col">Metric</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def variants_section(stats: Mapping[str, Any], summary: Mapping[str, Any]) -> str:
    """The variants section: traffic and latency, then labelled quality."""
    variants = list((stats.get("variants") or {}).keys())
    if not variants:
        return (
            '<section id="variants"><h2>Variants</h2>'
            "<p>No traffic in this epoch yet.</p></section>"
        )
    confidence = 1 - float(at(summary, "config", "alpha") or 0.05)
    return (
        '<section id="variants"><h2>Variants</h2>'
        + _variant_table(
            "Traffic and latency (answering variant)",
            variants,
            _traffic_rows(stats, variants),
        )
        + _variant_table(
            "Labelled quality (own answers, fallbacks excluded)",
            variants,
            _labelled_rows(stats, variants, confidence),
        )
        + "</section>"
    )
