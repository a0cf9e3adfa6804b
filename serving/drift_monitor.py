"""Drift of each variant, read from the shared ledger: JSON and gauges.

Input drift: the PSI of every feature and of the score, from the live bin
counts every worker added to ``drift_counts``, against the reference
distributions stored with the model at training. A window is named by its
epoch and its last ``hours`` hours (0: the whole epoch); reading one costs
hours × variants rows and features × bins arithmetic, whatever the traffic.

Concept drift: Brier score and ROC AUC of the variant's last N labelled
answers of the epoch, against the model's own held-out values from training
(``ab_router.statistics.concept_drift``).

A model trained before reference distributions were stored has none: its
variant reports ``no_reference`` and exports no PSI, and serving goes on.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ab_router.errors import UnknownRequestError
from ab_router.ledger import Ledger
from ab_router.ledger.drift_counts import SECONDS_PER_HOUR, hour_of
from ab_router.statistics.concept_drift import ConceptDrift, concept_drift
from ab_router.statistics.psi import DriftCounts, DriftReport, drift_report
from churn_features.reference import (
    REFERENCE_METADATA_KEY,
    ReferenceDistributions,
    ReferenceFormatError,
)
from serving.http_errors import InvalidQueryError
from serving.metrics import PREFIX, GaugeFamily
from serving.settings import DriftSettings
from serving.state_cache import StateCache

logger = logging.getLogger("churn_ab.drift")

NO_REFERENCE = "no_reference"
# A century: longer windows are the whole epoch anyway (hours=0 says so).
MAX_WINDOW_HOURS = 24 * 366 * 100
NO_HELDOUT = "no_heldout_metrics"


def load_references(
    descriptions: Mapping[str, Mapping[str, Any]],
) -> dict[str, ReferenceDistributions | None]:
    """Each variant's training reference; None when the model has none."""
    references: dict[str, ReferenceDistributions | None] = {}
    for variant, description in descriptions.items():
        stored = description.get(REFERENCE_METADATA_KEY)
        try:
            references[variant] = (
                None if stored is None else ReferenceDistributions.from_metadata(stored)
            )
        except ReferenceFormatError:
            # Unreadable is treated as absent: drift is an aid, not a reason
            # to refuse to serve. Retraining stores a readable one.
            logger.warning("model of %s: unreadable reference", variant, exc_info=True)
            references[variant] = None
    return references


@dataclass(frozen=True)
class Window:
    experiment: str
    epoch: int
    hours: int  # 0: the whole epoch
    since_hour: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "hours": self.hours,
            "from": None
            if self.since_hour is None
            else float(self.since_hour * SECONDS_PER_HOUR),
        }


@dataclass(frozen=True)
class VariantDrift:
    variant: str
    model_tag: str
    error: str | None
    counts: DriftCounts | None
    report: DriftReport | None
    concept: ConceptDrift | None
    concept_error: str | None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"model_tag": self.model_tag, "error": self.error}
        if self.report is not None and self.counts is not None:
            body["requests"] = self.counts.rows
            body["features"] = [_psi(r) for r in self.report.features]
            body["score"] = _psi(self.report.score)
        body["concept_drift"] = (
            {"error": self.concept_error}
            if self.concept is None
            else {k: _finite(v) for k, v in vars(self.concept).items()}
            | {"drifted": self.concept.drifted}
        )
        return body


class DriftMonitor:
    def __init__(
        self,
        ledger: Ledger,
        state: StateCache,
        descriptions: Mapping[str, Mapping[str, Any]],
        references: Mapping[str, ReferenceDistributions | None],
        settings: DriftSettings,
    ) -> None:
        self.ledger = ledger
        self.state = state
        self.descriptions = dict(descriptions)
        self.references = dict(references)
        self.settings = settings
        self._cached: tuple[float, tuple[Any, ...], list[VariantDrift]] | None = None
        self._lock = threading.Lock()

    def window(self, epoch: int | None = None, hours: int | None = None) -> Window:
        state = self.state.current()
        name = state.config.name
        chosen = state.epoch if epoch is None else epoch
        span = self.settings.drift_window_hours if hours is None else hours
        if not 0 <= span <= MAX_WINDOW_HOURS:
            raise InvalidQueryError(
                f"hours must be 0..{MAX_WINDOW_HOURS}, got {span}", field="hours"
            )
        since = None if span == 0 else hour_of(time.time()) - span + 1
        return Window(name, chosen, span, since)

    async def report(
        self, epoch: int | None = None, hours: int | None = None
    ) -> dict[str, Any]:
        """``GET /ab-test/drift``: every variant's drift in the named window."""
        return await asyncio.to_thread(self._report, epoch, hours)

    def _report(self, epoch: int | None, hours: int | None) -> dict[str, Any]:
        window = self.window(epoch, hours)
        if epoch is not None and epoch not in self.ledger.epochs(window.experiment):
            raise UnknownRequestError(f"epoch {epoch} does not exist", field="epoch")
        return {
            "experiment": window.experiment,
            "window": window.to_dict(),
            "concept_window_labels": self.settings.concept_window_labels,
            "variants": {d.variant: d.to_dict() for d in self.variants(window)},
        }

    def current(self) -> list[VariantDrift]:
        """The gauges' window, reused for ``drift_refresh_s`` between scrapes."""
        window = self.window()
        key = (window.experiment, window.epoch, window.since_hour)
        with self._lock:
            now = time.monotonic()
            cached = self._cached
            if cached and cached[1] == key and now - cached[0] < self._refresh_s:
                return cached[2]
            view = self.variants(window)
            self._cached = (now, key, view)
            return view

    @property
    def _refresh_s(self) -> float:
        return self.settings.drift_refresh_s

    def variants(self, window: Window) -> list[VariantDrift]:
        counts = self.ledger.drift_counts(
            window.experiment, window.epoch, since_hour=window.since_hour
        )
        return [
            self._variant(window, variant, counts)
            for variant in sorted(self.descriptions)
        ]

    def _variant(
        self,
        window: Window,
        variant: str,
        counts: Mapping[tuple[str, str], DriftCounts],
    ) -> VariantDrift:
        tag = str(self.descriptions[variant].get("tag"))
        reference = self.references.get(variant)
        concept, concept_error = self._concept(window, variant)
        if reference is None:
            return VariantDrift(
                variant, tag, NO_REFERENCE, None, None, concept, concept_error
            )
        live = counts.get((variant, tag), DriftCounts.empty(reference))
        report = drift_report(reference, live)
        return VariantDrift(variant, tag, None, live, report, concept, concept_error)

    def _concept(
        self, window: Window, variant: str
    ) -> tuple[ConceptDrift | None, str | None]:
        metrics = self.descriptions[variant].get("metrics") or {}
        brier, auc = metrics.get("brier_score"), metrics.get("roc_auc")
        if brier is None or auc is None:
            return None, NO_HELDOUT
        scores, labels = self.ledger.recent_labels(
            window.experiment,
            window.epoch,
            variant,
            self.settings.concept_window_labels,
        )
        result = concept_drift(
            scores,
            labels,
            heldout_brier=float(brier),
            heldout_roc_auc=float(auc),
            config=self.settings.concept_config(),
        )
        return result, None

    def metric_families(self) -> list[GaugeFamily]:
        """PSI and concept-drift gauges of the current window, for /metrics."""
        view = self.current()
        with_counts = [d for d in view if d.report is not None]
        judged = [d for d in view if d.concept is not None]
        return [
            _family(
                "feature_psi",
                "PSI of a feature's live distribution against training "
                "(current epoch, drift window).",
                [
                    ({"feature": r.name, "variant": d.variant}, r.psi)
                    for d in with_counts
                    if d.report is not None
                    for r in d.report.features
                ],
            ),
            _family(
                "score_psi",
                "PSI of the live score distribution against out-of-fold training.",
                [
                    ({"variant": d.variant}, d.report.score.psi)
                    for d in with_counts
                    if d.report is not None
                ],
            ),
            _family(
                "drift_window_requests",
                "Answered requests behind the PSI gauges (drift window).",
                [
                    ({"variant": d.variant}, float(d.counts.rows))
                    for d in with_counts
                    if d.counts is not None
                ],
            ),
            *_concept_families(judged),
        ]


def _concept_families(judged: list[VariantDrift]) -> list[GaugeFamily]:
    def samples(attribute: str) -> list[tuple[dict[str, str], float]]:
        return [
            ({"variant": d.variant}, float(getattr(d.concept, attribute)))
            for d in judged
        ]

    return [
        _family(
            "concept_window_labels",
            "Labels in the concept-drift window.",
            samples("labels"),
        ),
        _family(
            "concept_window_brier_score",
            "Brier score of the concept-drift window.",
            samples("brier"),
        ),
        _family(
            "concept_window_roc_auc",
            "ROC AUC of the concept-drift window.",
            samples("roc_auc"),
        ),
        _family(
            "model_heldout_brier_score",
            "Brier score of the served model on its held-out test split.",
            samples("heldout_brier"),
        ),
        _family(
            "model_heldout_roc_auc",
            "ROC AUC of the served model on its held-out test split.",
            samples("heldout_roc_auc"),
        ),
        _family(
            "concept_drift",
            "1 when the window is worse than held-out by more than the margin, "
            "with enough labels; else 0.",
            [
                ({"variant": d.variant}, float(d.concept.drifted))
                for d in judged
                if d.concept is not None
            ],
        ),
    ]


def _family(
    name: str, help_text: str, samples: list[tuple[dict[str, str], float]]
) -> GaugeFamily:
    return GaugeFamily(f"{PREFIX}{name}", help_text, "gauge", tuple(samples))


def _psi(result: Any) -> dict[str, Any]:
    return {
        "name": result.name,
        "psi": _finite(result.psi),
        "rows": result.rows,
        "error": result.error,
    }


def _finite(value: Any) -> Any:
    # JSON has no NaN: an undefined statistic is null, its error says why.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
