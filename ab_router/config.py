"""Experiment configuration: what is split, how, and between which variants.

Validated when built, at start-up and on every runtime change, so a bad value
is refused with a message naming the setting instead of misrouting traffic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from ab_router.errors import ConfigError
from ab_router.records import Mode

# Assignment hashes are versioned so a change of algorithm is explicit: an
# experiment keeps the version it started with, and old ledgers stay readable.
SUPPORTED_HASH_VERSIONS = frozenset({1})
WEIGHT_TOLERANCE = 1e-6
# The two served variants, named only here: settings, the service, the admin
# and the CLI take their names from these.
CHAMPION = "v1"
CHALLENGER = "v2"
VARIANTS = (CHAMPION, CHALLENGER)


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment between known variants.

    ``weights`` are traffic shares that sum to 1. ``champion`` answers in
    shadow mode and keeps the traffic a canary does not take.
    ``canary_stages`` are the challenger's successive traffic shares.
    """

    name: str
    salt: str
    weights: Mapping[str, float]
    mode: Mode = Mode.SPLIT
    champion: str = CHAMPION
    challenger: str = CHALLENGER
    hash_version: int = 1
    canary_stages: tuple[float, ...] = (0.05, 0.25, 0.5, 1.0)
    known_variants: frozenset[str] = field(default=frozenset(VARIANTS))

    def __post_init__(self) -> None:
        validate(self)

    def with_weights(self, weights: Mapping[str, float]) -> ExperimentConfig:
        return replace(self, weights=dict(weights))

    def with_mode(self, mode: Mode) -> ExperimentConfig:
        return replace(self, mode=mode)

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "salt": self.salt,
            "weights": dict(self.weights),
            "mode": self.mode.value,
            "champion": self.champion,
            "challenger": self.challenger,
            "hash_version": self.hash_version,
            "canary_stages": list(self.canary_stages),
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, object], known_variants: frozenset[str]
    ) -> ExperimentConfig:
        stages = data.get("canary_stages", (0.05, 0.25, 0.5, 1.0))
        weights = data.get("weights", {})
        if not isinstance(weights, Mapping):
            raise ConfigError("weights must be an object", field="weights")
        return cls(
            name=str(data["name"]),
            salt=str(data["salt"]),
            weights={str(k): float(v) for k, v in weights.items()},
            mode=parse_mode(str(data.get("mode", Mode.SPLIT.value))),
            champion=str(data.get("champion", CHAMPION)),
            challenger=str(data.get("challenger", CHALLENGER)),
            hash_version=int(str(data.get("hash_version", 1))),
            canary_stages=tuple(float(s) for s in stages),  # type: ignore[attr-defined]
            known_variants=known_variants,
        )


def parse_mode(value: str) -> Mode:
    try:
        return Mode(value)
    except ValueError:
        allowed = ", ".join(m.value for m in Mode)
        raise ConfigError(
            f"mode {value!r} is not one of: {allowed}", field="mode"
        ) from None


def validate_weights(
    weights: Mapping[str, float], known_variants: frozenset[str]
) -> None:
    """Weights name only known variants, are finite, ≥ 0 and sum to 1."""
    if not weights:
        raise ConfigError("weights must name at least one variant", field="weights")
    for variant, weight in weights.items():
        if variant not in known_variants:
            known = ", ".join(sorted(known_variants))
            raise ConfigError(
                f"weights name unknown variant {variant!r}; known variants: {known}",
                field=f"weights.{variant}",
            )
        if not math.isfinite(weight) or weight < 0 or weight > 1:
            raise ConfigError(
                f"weight of {variant!r} must be between 0 and 1, got {weight}",
                field=f"weights.{variant}",
            )
    total = math.fsum(weights.values())
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise ConfigError(
            f"weights must sum to 1, they sum to {total:.6g}", field="weights"
        )


def validate(config: ExperimentConfig) -> None:
    if not config.name.strip():
        raise ConfigError("experiment name must not be empty", field="name")
    if not config.salt:
        raise ConfigError("salt must not be empty", field="salt")
    if config.hash_version not in SUPPORTED_HASH_VERSIONS:
        raise ConfigError(
            f"hash_version {config.hash_version} is not supported "
            f"(supported: {sorted(SUPPORTED_HASH_VERSIONS)})",
            field="hash_version",
        )
    validate_weights(config.weights, config.known_variants)
    for role, variant in (
        ("champion", config.champion),
        ("challenger", config.challenger),
    ):
        if variant not in config.known_variants:
            raise ConfigError(f"{role} {variant!r} is not a known variant", field=role)
    if config.champion == config.challenger:
        raise ConfigError("champion and challenger must differ", field="challenger")
    stages = config.canary_stages
    if (
        not stages
        or any(not 0 < s <= 1 for s in stages)
        or list(stages) != sorted(set(stages))
    ):
        raise ConfigError(
            "canary_stages must be increasing shares in (0, 1]",
            field="canary_stages",
        )
