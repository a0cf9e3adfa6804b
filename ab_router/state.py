"""The live state of an experiment: its config, epoch and canary stage."""

from __future__ import annotations

from dataclasses import dataclass

from ab_router.config import ExperimentConfig
from ab_router.records import Mode

NOT_IN_CANARY = -1


@dataclass(frozen=True)
class ExperimentState:
    """What every worker routes by; ``version`` grows with every change."""

    config: ExperimentConfig
    epoch: int
    canary_stage: int
    version: int
    updated_at: float

    @property
    def effective_weights(self) -> dict[str, float]:
        """Traffic shares in force now.

        In canary mode the challenger takes the current stage's share and the
        champion the rest; in shadow mode the champion answers everything.
        """
        config = self.config
        if config.mode is Mode.CANARY:
            share = (
                0.0
                if self.canary_stage == NOT_IN_CANARY
                else config.canary_stages[self.canary_stage]
            )
            return {config.champion: 1.0 - share, config.challenger: share}
        if config.mode is Mode.SHADOW:
            return {config.champion: 1.0, config.challenger: 0.0}
        return dict(config.weights)

    def to_dict(self) -> dict[str, object]:
        return {
            "experiment": self.config.name,
            "epoch": self.epoch,
            "mode": self.config.mode.value,
            "configured_weights": dict(self.config.weights),
            "effective_weights": self.effective_weights,
            "canary_stage": self.canary_stage,
            "canary_stages": list(self.config.canary_stages),
            "champion": self.config.champion,
            "challenger": self.config.challenger,
            "hash_version": self.config.hash_version,
            "version": self.version,
            "updated_at": self.updated_at,
        }
