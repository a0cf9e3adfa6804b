"""What the entry service adds to BentoML's ``/metrics``: the ledger's gauges,
the metrics self-check and the drift counts, all read at scrape time."""

from __future__ import annotations

from serving.entry import EntryApp
from serving.ledger_metrics import ledger_metrics_text
from serving.metrics import render_families
from serving.metrics_self_check import OK, MetricsStatus, self_check_families
from serving.placement import metrics_writers


def entry_metrics_text(entry: EntryApp) -> str:
    """The exposition text appended to BentoML's own metrics."""
    return (
        ledger_metrics_text(entry.statistics, entry.model_descriptions)
        + render_families(
            self_check_families(_self_check(entry), metrics_writers(entry.settings))
        )
        + render_families(entry.drift.metric_families())
    )


def _self_check(entry: EntryApp) -> MetricsStatus:
    return OK if entry.metrics_check is None else entry.metrics_check.check()
