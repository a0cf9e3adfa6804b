"""Exposures and transitions to and from ledger rows."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from ab_router.records import Exposure, Mode, Transition, UnitKind

# The columns ``exposure_row`` writes and ``exposure_from_row`` reads, in order.
EXPOSURE_COLUMNS = (
    "request_id, experiment, epoch, assigned_variant, variant, unit_kind, unit_id, "
    "mode, churn_probability, prediction, latency_ms, created_at, fallback, "
    "shadow_variant, shadow_probability, shadow_prediction, label, labelled_at, "
    "model_id, shadow_model_id"
)

TRANSITION_COLUMNS = "experiment, epoch, kind, reason, weights, created_at, actor"

StoredId = str | bytes


def compact_request_id(request_id: str) -> StoredId:
    """How SQLite stores a request id: a canonical UUID (every id the service
    makes) as its 16 bytes instead of 36 characters; any other id as is.

    SQLite keeps a BLOB and a TEXT apart (they never compare equal), so the
    two forms cannot collide, and every id reads back as the string it was.
    """
    if len(request_id) == 36:
        try:
            parsed = uuid.UUID(request_id)
        except ValueError:
            return request_id
        if str(parsed) == request_id:
            return parsed.bytes
    return request_id


def request_id_of(stored: object) -> str:
    """The request id as callers know it, from either stored form."""
    if isinstance(stored, bytes | bytearray | memoryview):
        return str(uuid.UUID(bytes=bytes(stored)))
    return str(stored)


def exposure_row(
    e: Exposure, store_id: Callable[[str], StoredId] = str
) -> tuple[object, ...]:
    """The row of ``e``; ``store_id`` is the backend's request-id form."""
    return (
        store_id(e.request_id),
        e.experiment,
        e.epoch,
        e.assigned_variant,
        e.variant,
        e.unit_kind.value,
        e.unit_id,
        e.mode.value,
        e.churn_probability,
        e.prediction,
        e.latency_ms,
        e.created_at,
        int(e.fallback),
        e.shadow_variant,
        e.shadow_probability,
        e.shadow_prediction,
        e.label,
        e.labelled_at,
        e.model_id,
        e.shadow_model_id,
    )


def exposure_from_row(r: Sequence[object]) -> Exposure:
    return Exposure(
        request_id=request_id_of(r[0]),
        experiment=str(r[1]),
        epoch=int(r[2]),  # type: ignore[call-overload]
        assigned_variant=str(r[3]),
        variant=str(r[4]),
        unit_kind=UnitKind(str(r[5])),
        unit_id=None if r[6] is None else str(r[6]),
        mode=Mode(str(r[7])),
        churn_probability=float(r[8]),  # type: ignore[arg-type]
        prediction=int(r[9]),  # type: ignore[call-overload]
        latency_ms=float(r[10]),  # type: ignore[arg-type]
        created_at=float(r[11]),  # type: ignore[arg-type]
        fallback=bool(r[12]),
        shadow_variant=None if r[13] is None else str(r[13]),
        shadow_probability=None if r[14] is None else float(r[14]),  # type: ignore[arg-type]
        shadow_prediction=None if r[15] is None else int(r[15]),  # type: ignore[call-overload]
        label=None if r[16] is None else int(r[16]),  # type: ignore[call-overload]
        labelled_at=None if r[17] is None else float(r[17]),  # type: ignore[arg-type]
        model_id=int(r[18]),  # type: ignore[call-overload]
        shadow_model_id=None if r[19] is None else int(r[19]),  # type: ignore[call-overload]
    )


def transition_from_row(r: Sequence[Any]) -> Transition:
    """A row of ``TRANSITION_COLUMNS``."""
    return Transition(r[0], int(r[1]), r[2], r[3], json.loads(r[4]), r[5], r[6])
