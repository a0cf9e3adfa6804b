"""Canary guardrails: advance the challenger stage by stage, or roll it back.

Every stage is its own epoch (a stage change starts one), so a stage is judged
only on the traffic it received under its own weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from ab_router.records import Exposure
from ab_router.state import NOT_IN_CANARY, ExperimentState
from ab_router.statistics.quality import brier_losses
from ab_router.statistics.srm import srm_test

# Below this many challenger requests an error rate is too noisy to act on.
MIN_REQUESTS_FOR_ERROR_RATE = 20
# Labels per variant before the Brier guardrail is trusted.
MIN_LABELS_FOR_BRIER = 30


class CanaryAction(StrEnum):
    HOLD = "hold"
    ADVANCE = "advance"
    ROLLBACK = "rollback"


@dataclass(frozen=True)
class CanaryPolicy:
    min_requests: int = 200
    max_error_rate: float = 0.02
    max_p95_ms: float = 250.0
    brier_margin: float = 0.02
    srm_threshold: float = 0.001


@dataclass(frozen=True)
class CanaryDecision:
    action: CanaryAction
    reason: str
    next_stage: int


def evaluate_canary(
    state: ExperimentState, exposures: Sequence[Exposure], policy: CanaryPolicy
) -> CanaryDecision:
    """Judge the current stage from the exposures of the current epoch."""
    config = state.config
    stage = state.canary_stage
    if stage == NOT_IN_CANARY:
        return CanaryDecision(CanaryAction.HOLD, "canary is rolled back", stage)
    challenger, champion = config.challenger, config.champion
    assigned = [e for e in exposures if e.assigned_variant == challenger]
    failed = sum(e.fallback for e in assigned)
    answered = [e for e in assigned if not e.fallback]

    if len(assigned) >= MIN_REQUESTS_FOR_ERROR_RATE:
        error_rate = failed / len(assigned)
        if error_rate > policy.max_error_rate:
            return CanaryDecision(
                CanaryAction.ROLLBACK,
                f"challenger error rate {error_rate:.1%} over {len(assigned)} "
                f"requests exceeds {policy.max_error_rate:.1%}",
                NOT_IN_CANARY,
            )
    if len(answered) >= MIN_REQUESTS_FOR_ERROR_RATE:
        p95 = float(np.percentile([e.latency_ms for e in answered], 95))
        if p95 > policy.max_p95_ms:
            return CanaryDecision(
                CanaryAction.ROLLBACK,
                f"challenger p95 latency {p95:.1f} ms exceeds {policy.max_p95_ms} ms",
                NOT_IN_CANARY,
            )
    brier_reason = _brier_breach(exposures, champion, challenger, policy)
    if brier_reason is not None:
        return CanaryDecision(CanaryAction.ROLLBACK, brier_reason, NOT_IN_CANARY)

    counts: dict[str, int] = {}
    for e in exposures:
        counts[e.assigned_variant] = counts.get(e.assigned_variant, 0) + 1
    srm = srm_test(counts, state.effective_weights, threshold=policy.srm_threshold)
    if len(assigned) < policy.min_requests:
        return CanaryDecision(
            CanaryAction.HOLD,
            f"{len(assigned)} of {policy.min_requests} challenger requests seen",
            stage,
        )
    if srm.alarm:
        # A broken split means the guardrail numbers cannot be trusted either.
        return CanaryDecision(
            CanaryAction.ROLLBACK,
            f"sample-ratio mismatch (p={srm.p_value:.2g}) at stage {stage}",
            NOT_IN_CANARY,
        )
    if stage + 1 >= len(config.canary_stages):
        return CanaryDecision(
            CanaryAction.HOLD,
            "final stage healthy: promote the challenger to finish",
            stage,
        )
    return CanaryDecision(
        CanaryAction.ADVANCE,
        f"stage {stage} healthy over {len(assigned)} challenger requests "
        f"(errors {failed})",
        stage + 1,
    )


def _brier_breach(
    exposures: Sequence[Exposure],
    champion: str,
    challenger: str,
    policy: CanaryPolicy,
) -> str | None:
    scores: dict[str, float] = {}
    for variant in (champion, challenger):
        labelled = [
            e
            for e in exposures
            if e.variant == variant and not e.fallback and e.label is not None
        ]
        if len(labelled) < MIN_LABELS_FOR_BRIER:
            return None
        scores[variant] = float(
            brier_losses(
                [e.churn_probability for e in labelled],
                [int(e.label or 0) for e in labelled],
            ).mean()
        )
    excess = scores[challenger] - scores[champion]
    if excess > policy.brier_margin:
        return (
            f"challenger Brier {scores[challenger]:.4f} is worse than champion "
            f"{scores[champion]:.4f} by more than {policy.brier_margin}"
        )
    return None
