"""Records the experiment ledger stores: exposures, outcomes, transitions.

Plain frozen dataclasses so statistics, reports and the service share one
vocabulary without importing each other (or BentoML).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Mode(StrEnum):
    """How an experiment uses its variants.

    split: each request is answered by the variant it is assigned to.
    shadow: the champion answers; the challenger scores the same request off
        the response path, and both scores are recorded for a paired test.
    canary: like split, with the challenger's weight raised stage by stage
        while guardrails hold, and dropped to 0 when one breaks.
    """

    SPLIT = "split"
    SHADOW = "shadow"
    CANARY = "canary"


#: The model id of exposures written before model versions were recorded
#: (ledger schema 1): which model scored them is unknown.
UNKNOWN_MODEL_ID = 0


class UnitKind(StrEnum):
    """What the assignment was keyed on."""

    CUSTOMER = "customer"  # sticky: salted hash of customerID
    REQUEST = "request"  # no customerID: a fresh random draw per request


@dataclass(frozen=True)
class Exposure:
    """One answered prediction as the ledger holds it.

    ``variant`` is the variant that answered; ``assigned_variant`` the one the
    experiment chose (they differ only on a fallback, which statistics skip).
    ``shadow_*`` fields are set in shadow mode once the challenger has scored.
    ``model_id`` / ``shadow_model_id`` are the ledger's ids of the model
    versions that produced the score and the shadow score
    (``Ledger.register_model_version``).
    """

    request_id: str
    experiment: str
    epoch: int
    assigned_variant: str
    variant: str
    unit_kind: UnitKind
    unit_id: str | None
    mode: Mode
    churn_probability: float
    prediction: int
    latency_ms: float
    created_at: float  # unix seconds
    fallback: bool
    shadow_variant: str | None = None
    shadow_probability: float | None = None
    shadow_prediction: int | None = None
    label: int | None = None  # observed churn (1) or not (0), once fed back
    labelled_at: float | None = None
    model_id: int = UNKNOWN_MODEL_ID
    shadow_model_id: int | None = None


@dataclass(frozen=True)
class ModelVersion:
    """A model version as the ledger numbers it: compact, for every row."""

    id: int
    variant: str
    tag: str
    """The model's tag (``churn_v1:shpvf5…``)."""


@dataclass(frozen=True)
class EpochModel:
    """A model recorded as serving a variant in an epoch."""

    experiment: str
    epoch: int
    variant: str
    model_id: int
    tag: str
    recorded_at: float
    actor: str


@dataclass(frozen=True)
class Transition:
    """A change to an experiment: weights, mode, canary stage, reset, rollback."""

    experiment: str
    epoch: int
    kind: str
    reason: str
    weights: dict[str, float]
    created_at: float
    actor: str
