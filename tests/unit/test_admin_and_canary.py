"""Admin changes and canary guardrails as pure functions of the state."""

from __future__ import annotations

import time
import uuid

import pytest

from ab_router import admin
from ab_router.canary import CanaryAction, CanaryDecision, CanaryPolicy
from ab_router.canary import evaluate_canary as evaluate_bounded
from ab_router.config import ExperimentConfig
from ab_router.errors import ConfigError
from ab_router.records import Exposure, Mode, UnitKind
from ab_router.state import NOT_IN_CANARY, ExperimentState
from ab_router.statistics import EpochTraffic, ExposureArrays, LabelledSums

CANARY = ExperimentConfig(
    name="exp",
    salt="s",
    weights={"v1": 0.5, "v2": 0.5},
    mode=Mode.CANARY,
    canary_stages=(0.1, 0.5, 1.0),
)
POLICY = CanaryPolicy(min_requests=50, max_error_rate=0.05, max_p95_ms=100.0)


def state(config: ExperimentConfig = CANARY, stage: int = 0) -> ExperimentState:
    return ExperimentState(config, epoch=3, canary_stage=stage, version=7, updated_at=0)


def exposure(
    assigned: str,
    *,
    fallback: bool = False,
    latency_ms: float = 5.0,
    probability: float = 0.3,
    label: int | None = None,
) -> Exposure:
    answered = ("v1" if assigned == "v2" else "v2") if fallback else assigned
    return Exposure(
        request_id=str(uuid.uuid4()),
        experiment="exp",
        epoch=3,
        assigned_variant=assigned,
        variant=answered,
        unit_kind=UnitKind.REQUEST,
        unit_id=None,
        mode=Mode.CANARY,
        churn_probability=probability,
        prediction=int(probability >= 0.5),
        latency_ms=latency_ms,
        created_at=time.time(),
        fallback=fallback,
        label=label,
    )


def evaluate_canary(
    state: ExperimentState, exposures: list[Exposure], policy: CanaryPolicy
) -> CanaryDecision:
    """The guardrails on the bounded inputs the service gives them."""
    arrays = ExposureArrays.from_exposures(exposures)
    traffic = EpochTraffic.from_arrays(arrays)
    labelled = {}
    for variant in ("v1", "v2"):
        own = (arrays.variant == variant) & ~arrays.fallback & arrays.labelled
        labelled[variant] = LabelledSums.from_arrays(
            arrays.probability[own], arrays.label[own], arrays.prediction[own]
        )
    return evaluate_bounded(state, traffic, labelled, policy)


def traffic(challenger: int, champion: int, **kwargs: object) -> list[Exposure]:
    return [exposure("v2", **kwargs) for _ in range(challenger)] + [  # type: ignore[arg-type]
        exposure("v1") for _ in range(champion)
    ]


def test_effective_weights_follow_the_stage() -> None:
    assert state(stage=0).effective_weights == {"v1": 0.9, "v2": 0.1}
    assert state(stage=2).effective_weights == {"v1": 0.0, "v2": 1.0}
    assert state(stage=NOT_IN_CANARY).effective_weights == {"v1": 1.0, "v2": 0.0}
    shadow = state(CANARY.with_mode(Mode.SHADOW), NOT_IN_CANARY)
    assert shadow.effective_weights == {"v1": 1.0, "v2": 0.0}


def test_holds_until_enough_challenger_requests() -> None:
    decision = evaluate_canary(state(), traffic(20, 180), POLICY)
    assert decision.action is CanaryAction.HOLD and "20 of 50" in decision.reason


def test_advances_a_healthy_stage_and_holds_at_the_last() -> None:
    assert evaluate_canary(state(), traffic(60, 540), POLICY).next_stage == 1
    last = evaluate_canary(state(stage=2), traffic(600, 0), POLICY)
    assert last.action is CanaryAction.HOLD and "promote" in last.reason


def test_rolls_back_on_errors_latency_srm_and_brier() -> None:
    errors = traffic(50, 450) + traffic(10, 0, fallback=True)
    assert evaluate_canary(state(), errors, POLICY).action is CanaryAction.ROLLBACK

    slow = traffic(60, 540, latency_ms=500.0)
    decision = evaluate_canary(state(), slow, POLICY)
    assert decision.action is CanaryAction.ROLLBACK and "p95" in decision.reason

    skewed = traffic(200, 400)  # 33 % on a 10 % stage
    decision = evaluate_canary(state(), skewed, POLICY)
    assert decision.action is CanaryAction.ROLLBACK and "mismatch" in decision.reason

    worse = [exposure("v2", probability=0.9, label=0) for _ in range(60)] + [
        exposure("v1", probability=0.1, label=0) for _ in range(540)
    ]
    decision = evaluate_canary(state(), worse, POLICY)
    assert decision.action is CanaryAction.ROLLBACK and "Brier" in decision.reason
    assert decision.next_stage == NOT_IN_CANARY


def test_admin_changes() -> None:
    split = state(CANARY.with_mode(Mode.SPLIT), NOT_IN_CANARY)
    change = admin.set_weights(split, {"v1": 0.8, "v2": 0.2})
    assert change.config.mode is Mode.SPLIT and change.new_epoch
    with pytest.raises(ConfigError):
        admin.set_weights(split, {"v1": 0.8, "v9": 0.2})
    assert admin.set_mode(split, Mode.CANARY).canary_stage == 0
    promoted = admin.promote(split).config
    assert (promoted.champion, promoted.challenger) == ("v2", "v1")
    assert dict(promoted.weights) == {"v2": 1.0, "v1": 0.0}
    assert dict(admin.rollback(split).config.weights) == {"v1": 1.0, "v2": 0.0}
    assert admin.reset(split).config == split.config
