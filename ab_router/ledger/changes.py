"""The SQL of experiment changes, shared by the SQLite and PostgreSQL ledgers.

``Ledger`` runs these statements in its backend's transaction (SQLite:
``BEGIN IMMEDIATE``; PostgreSQL: an advisory lock and ``FOR UPDATE``); what is
written is decided here once. Statements use ``?`` placeholders; the
PostgreSQL ledger turns them into ``%s``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from ab_router.admin import Change
from ab_router.config import ExperimentConfig
from ab_router.records import Mode
from ab_router.state import NOT_IN_CANARY, ExperimentState

Statement = tuple[str, tuple[object, ...]]

SELECT_SEED = "SELECT seed_config FROM experiments WHERE name = ?"

_INSERT_TRANSITION = (
    "INSERT INTO transitions (experiment, epoch, kind, reason, weights, "
    "created_at, actor) VALUES (?, ?, ?, ?, ?, ?, ?)"
)

# A reconfiguration keeps the stored epoch: the transition reads it.
_INSERT_TRANSITION_AT_STORED_EPOCH = (
    "INSERT INTO transitions (experiment, epoch, kind, reason, "
    "weights, created_at, actor) SELECT name, epoch, ?, ?, ?, ?, ? "
    "FROM experiments WHERE name = ?"
)


def seed_of(config: ExperimentConfig) -> str:
    """The stored form of a start-up configuration (compared across restarts)."""
    return json.dumps(config.to_dict(), sort_keys=True)


def startup_statements(
    config: ExperimentConfig, stored_seed: str | None, actor: str, now: float
) -> list[Statement]:
    """What start-up writes: create the experiment, apply a changed start-up
    configuration as a recorded transition, or nothing (runtime changes made
    through the admin API survive the restart)."""
    seed = seed_of(config)
    stage = 0 if config.mode is Mode.CANARY else NOT_IN_CANARY
    weights = json.dumps(dict(config.weights), sort_keys=True)
    if stored_seed is None:
        return [
            (
                "INSERT INTO experiments VALUES (?, ?, ?, 1, ?, 1, ?)",
                (config.name, seed, seed, stage, now),
            ),
            (
                _INSERT_TRANSITION,
                (
                    config.name,
                    1,
                    "created",
                    "experiment created from the start-up configuration",
                    weights,
                    now,
                    actor,
                ),
            ),
        ]
    if stored_seed == seed:
        return []
    return [
        (
            "UPDATE experiments SET config = ?, seed_config = ?, "
            "canary_stage = ?, version = version + 1, updated_at = ? "
            "WHERE name = ?",
            (seed, seed, stage, now, config.name),
        ),
        (
            _INSERT_TRANSITION_AT_STORED_EPOCH,
            (
                "reconfigured",
                "start-up configuration differs from the stored one",
                weights,
                now,
                actor,
                config.name,
            ),
        ),
    ]


def change_statements(
    state: ExperimentState, change: Change, *, reason: str, actor: str, now: float
) -> tuple[Statement, Statement]:
    """(conditional update, transition) of one admin or canary change.

    The update only matches while the stored version is still the one the
    change was decided on; a backend commits the transition only if it did.
    """
    config, stage = change.config, change.canary_stage
    epoch = state.epoch + 1 if change.new_epoch else state.epoch
    effective = ExperimentState(config, epoch, stage, 0, now)
    update: Statement = (
        "UPDATE experiments SET config = ?, epoch = ?, canary_stage = ?, "
        "version = version + 1, updated_at = ? "
        "WHERE name = ? AND version = ?",
        (seed_of(config), epoch, stage, now, config.name, state.version),
    )
    transition: Statement = (
        _INSERT_TRANSITION,
        (
            config.name,
            epoch,
            change.kind,
            reason,
            json.dumps(effective.effective_weights, sort_keys=True),
            now,
            actor,
        ),
    )
    return update, transition


_INSERT_EPOCH_MODEL = (
    "INSERT INTO epoch_models (experiment, epoch, variant, model_id, "
    "recorded_at, actor) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)

# An epoch an admin or canary change starts keeps the models that served the
# one before it: the same instances keep serving.
_CARRY_EPOCH_MODELS = (
    "INSERT INTO epoch_models (experiment, epoch, variant, model_id, "
    "recorded_at, actor) SELECT experiment, ?, variant, model_id, ?, ? "
    "FROM epoch_models WHERE experiment = ? AND epoch = ? ON CONFLICT DO NOTHING"
)


def epoch_model_statements(
    state: ExperimentState,
    new_epoch: bool,
    models: Mapping[str, int] | None,
    actor: str,
    now: float,
) -> list[Statement]:
    """The models recorded for the epoch a change leaves the experiment in:
    ``models`` if given, else (for a new epoch) the previous epoch's."""
    epoch = state.epoch + 1 if new_epoch else state.epoch
    name = state.config.name
    if models:
        return [
            (_INSERT_EPOCH_MODEL, (name, epoch, variant, model_id, now, actor))
            for variant, model_id in sorted(models.items())
        ]
    return [(_CARRY_EPOCH_MODELS, (epoch, now, actor, name, state.epoch))]
