"""Runtime changes an operator can make, as pure functions of the state.

Each returns the new config, canary stage and a transition kind. Every change
of who gets traffic starts a new epoch, so each epoch has constant weights and
its statistics (SRM above all) stay meaningful; nothing is ever deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from ab_router.config import ExperimentConfig
from ab_router.records import Mode
from ab_router.state import NOT_IN_CANARY, ExperimentState


@dataclass(frozen=True)
class Change:
    """A change of the experiment's state, as ``Ledger.change_state`` writes it
    (admin routes, the canary scheduler and a start-up's model change)."""

    config: ExperimentConfig
    canary_stage: int
    kind: str
    new_epoch: bool = True


def set_weights(state: ExperimentState, weights: Mapping[str, float]) -> Change:
    """Split traffic by new weights (leaves shadow/canary mode).

    The new config validates the weights when it is built, the one check.
    """
    config = replace(state.config, weights=dict(weights), mode=Mode.SPLIT)
    return Change(config, NOT_IN_CANARY, "weights")


def set_mode(state: ExperimentState, mode: Mode) -> Change:
    """Switch mode; a canary starts at its first stage."""
    stage = 0 if mode is Mode.CANARY else NOT_IN_CANARY
    return Change(replace(state.config, mode=mode), stage, f"mode:{mode.value}")


def promote(state: ExperimentState) -> Change:
    """The challenger becomes the champion and takes all traffic."""
    old = state.config
    config = replace(
        old,
        champion=old.challenger,
        challenger=old.champion,
        mode=Mode.SPLIT,
        weights={old.challenger: 1.0, old.champion: 0.0},
    )
    return Change(config, NOT_IN_CANARY, "promote")


def rollback(state: ExperimentState) -> Change:
    """The champion takes all traffic; the challenger gets none."""
    old = state.config
    config = replace(
        old, mode=Mode.SPLIT, weights={old.champion: 1.0, old.challenger: 0.0}
    )
    return Change(config, NOT_IN_CANARY, "rollback")


def reset(state: ExperimentState) -> Change:
    """Same configuration, fresh epoch."""
    return Change(state.config, state.canary_stage, "reset")
