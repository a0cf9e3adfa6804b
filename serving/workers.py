"""What each BentoML worker builds once, in its service's constructor.

BentoML-free like the rest of ``serving``: ``service.py`` hands in the model
references or ``bentoml.depends`` handles, so it keeps only the wiring.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from serving.access import AccessControl, announce
from serving.entry import EntryApp
from serving.metrics import ModelServiceMetrics, ServiceMetrics
from serving.metrics_self_check import MetricsSelfCheck
from serving.model_runtime.store import describe_model, load_pipeline, load_scorer
from serving.model_runtime.variant_model import VariantModel
from serving.placement import placed_scorers
from serving.settings import ModelSettings, Settings
from serving.warmup import warm_in_background


def model_worker(variant: str, model_ref: Any, settings: ModelSettings) -> VariantModel:
    """One variant's model, loaded for a model service worker; that worker's
    metrics self-check runs in the background."""
    model = VariantModel(
        variant,
        load_scorer(model_ref),
        chunk_rows=settings.batch_chunk_rows,
        metrics=ModelServiceMetrics.create(),
    )
    MetricsSelfCheck.from_environment().run_in_background()
    return model


def entry_worker(
    settings: Settings, access: AccessControl | None, models: Mapping[str, Any]
) -> EntryApp:
    """One entry worker: the scorers in the configured placement
    (``placed_scorers``), its metrics and their self-check, the log line
    that says whether API keys are on, and its statistics warmed up."""
    tags = settings.models.tags()
    scorers = placed_scorers(settings, models)
    metrics = ServiceMetrics.create()
    metrics_check = MetricsSelfCheck.from_environment()
    metrics_check.run_in_background()
    announce(access)
    entry = EntryApp(
        settings,
        scorers=scorers.online,
        bulk_scorers=scorers.bulk,
        model_descriptions={v: describe_model(t) for v, t in tags.items()},
        metrics=metrics,
        metrics_check=metrics_check,
        load_pipeline=load_pipeline,
    )
    warm_in_background(entry.statistics)
    return entry
