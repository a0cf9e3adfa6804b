"""The BentoML service and API options that come from the settings.

``service.py``'s class decorators run when it is imported, so these are plain
dicts built from the already validated ``Settings``; the model services and
the entry share one request timeout. ``JsonArray`` is the model APIs' answer.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from bentoml.validators import ContentType

from serving.settings import ModelSettings, Settings, observability_config

# A model service API's answer. Declaring the media type BentoML would infer
# saves it rebuilding the output's JSON schema for every response: 9-15% of a
# model worker's CPU.
JsonArray = Annotated[np.ndarray, ContentType("application/json")]


def model_options(settings: Settings) -> dict[str, Any]:
    """``@bentoml.service`` options of each variant's model service."""
    return {
        "workers": settings.models.model_workers,
        "traffic": {"timeout": settings.entry.request_timeout_s},
        **observability_config(settings.entry),
    }


def entry_options(settings: Settings) -> dict[str, Any]:
    """``@bentoml.service`` options of the entry service."""
    return {
        "workers": settings.entry.entry_workers,
        "traffic": {"timeout": settings.entry.request_timeout_s},
        **observability_config(settings.entry),
    }


def batching(models: ModelSettings) -> dict[str, Any]:
    """``@bentoml.api`` options of the batchable online ``score`` API."""
    return {
        "batchable": True,
        "batch_dim": 0,
        "max_batch_size": models.max_batch_size,
        "max_latency_ms": models.max_latency_ms,
    }
