"""The model router's scorers in either placement (issue #13), one code path.

``services``: each variant's model runs in its own BentoML model service; the
entry calls it over BentoML's client (``serving.model_calls``). ``inline``:
the entry worker loads both models and scores itself, one thread per model.
Either way the router gets one online and one bulk scorer per variant and
puts the same timeouts, circuit breakers and fallback around them.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from serving.coalescing import coalesced_scorer
from serving.metrics import ModelServiceMetrics
from serving.model_calls import remote_bulk_scorer, remote_scorer
from serving.model_router import Scorer
from serving.model_runtime.store import load_scorer
from serving.model_runtime.variant_model import VariantModel
from serving.settings import EntrySettings, ModelSettings, Placement, Settings


@dataclass(frozen=True)
class Scorers:
    """Per variant: the scorer for ``/predict`` rows and for ``/predict_batch``."""

    online: dict[str, Scorer]
    bulk: dict[str, Scorer]


def remote_scorers(dependencies: Mapping[str, Any], settings: EntrySettings) -> Scorers:
    """Scorers that call each variant's model service (``bentoml.depends``)."""
    return Scorers(
        online={v: remote_scorer(d, settings) for v, d in dependencies.items()},
        bulk={v: remote_bulk_scorer(d) for v, d in dependencies.items()},
    )


def inline_scorers(
    model_refs: Mapping[str, Any], settings: ModelSettings, entry: EntrySettings
) -> Scorers:
    """Scorers that load each variant's model here and score it in-process.

    Each model gets one thread: scoring never blocks the event loop, so the
    router's timeout still fires when a model hangs (the hung call keeps its
    thread; the breaker then stops sending to it) and the other variant
    answers. Concurrent online requests share calls as they do to a model
    service (``serving/coalescing.py``): one thread hop and one model call
    for all that arrived while the previous call ran.
    """
    models = {
        variant: VariantModel(
            variant,
            load_scorer(ref),
            chunk_rows=settings.batch_chunk_rows,
            metrics=ModelServiceMetrics.create(),
            executor=ThreadPoolExecutor(1, thread_name_prefix=f"churn-{variant}"),
        )
        for variant, ref in model_refs.items()
    }
    return Scorers(
        online={
            v: coalesced_scorer(
                m.score_on_thread,
                max_in_flight=entry.model_calls_in_flight,
                timeout_s=entry.model_timeout_s,
            )
            for v, m in models.items()
        },
        bulk={v: m.score_batch for v, m in models.items()},
    )


def placed_scorers(settings: Settings, models: Mapping[str, Any]) -> Scorers:
    """The scorers in the configured placement; ``models`` holds each
    variant's model reference (``inline``) or ``bentoml.depends`` handle
    (``services``)."""
    if settings.models.model_placement is Placement.INLINE:
        return inline_scorers(models, settings.models, settings.entry)
    return remote_scorers(models, settings.entry)


def metrics_writers(settings: Settings) -> int:
    """Processes that write this server's Prometheus files: the entry
    workers, and each model service's workers when they run on their own."""
    writers = settings.entry.entry_workers
    if settings.models.model_placement is Placement.SERVICES:
        writers += 2 * settings.models.model_workers
    return writers
