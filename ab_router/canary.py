"""Canary guardrails: advance the challenger stage by stage, or roll it back.

Every stage is its own epoch (a stage change starts one), so a stage is judged
only on the traffic it received under its own weights. It reads the same
bounded inputs as the live statistics: an ``EpochTraffic`` for counts, errors
and latency (p95 from the histogram, within 1 ms up to 10 s) and each
variant's labelled sums (its own non-fallback labelled rows, one model) for
the Brier guardrail, both from the ledger's rollups, so a long stage costs no
more than a short one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from ab_router.state import NOT_IN_CANARY, ExperimentState
from ab_router.statistics.labelled_sums import LabelledSums
from ab_router.statistics.srm import srm_test
from ab_router.statistics.traffic_summary import EpochTraffic

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
    state: ExperimentState,
    traffic: EpochTraffic,
    labelled: Mapping[str, LabelledSums],
    policy: CanaryPolicy,
) -> CanaryDecision:
    """Judge the current stage from the current epoch's traffic and labels.

    ``labelled[v]``: the sums of the labelled rows ``v`` answered itself
    (no fallbacks); a variant without labels may be missing. The guardrails
    (errors, latency, Brier) roll back first; then the stage holds until it
    has seen enough requests, rolls back on a sample-ratio mismatch, or
    advances.
    """
    config = state.config
    stage = state.canary_stage
    if stage == NOT_IN_CANARY:
        return CanaryDecision(CanaryAction.HOLD, "canary is rolled back", stage)
    to_challenger = traffic.where(assigned=config.challenger)
    breach = (
        _error_rate_breach(to_challenger, policy)
        or _latency_breach(to_challenger.where(fallback=False), policy)
        or _brier_breach(labelled, config.champion, config.challenger, policy)
    )
    if breach is not None:
        return CanaryDecision(CanaryAction.ROLLBACK, breach, NOT_IN_CANARY)
    return _judge_stage(state, traffic, to_challenger, policy)


def _error_rate_breach(to_challenger: EpochTraffic, policy: CanaryPolicy) -> str | None:
    """The challenger's fallbacks among the requests assigned to it."""
    assigned = to_challenger.requests
    if assigned < MIN_REQUESTS_FOR_ERROR_RATE:
        return None
    error_rate = to_challenger.where(fallback=True).requests / assigned
    if error_rate > policy.max_error_rate:
        return (
            f"challenger error rate {error_rate:.1%} over {assigned} "
            f"requests exceeds {policy.max_error_rate:.1%}"
        )
    return None


def _latency_breach(answered: EpochTraffic, policy: CanaryPolicy) -> str | None:
    """The p95 latency of the requests the challenger answered itself."""
    if answered.requests < MIN_REQUESTS_FOR_ERROR_RATE:
        return None
    (p95,) = answered.latency.percentiles((95,))
    if p95 > policy.max_p95_ms:
        return f"challenger p95 latency {p95:.1f} ms exceeds {policy.max_p95_ms} ms"
    return None


def _judge_stage(
    state: ExperimentState,
    traffic: EpochTraffic,
    to_challenger: EpochTraffic,
    policy: CanaryPolicy,
) -> CanaryDecision:
    """A stage that passed the guardrails: hold, roll back on SRM, or advance."""
    stage = state.canary_stage
    assigned = to_challenger.requests
    srm = srm_test(
        traffic.counts("assigned"),
        state.effective_weights,
        threshold=policy.srm_threshold,
    )
    if assigned < policy.min_requests:
        return CanaryDecision(
            CanaryAction.HOLD,
            f"{assigned} of {policy.min_requests} challenger requests seen",
            stage,
        )
    if srm.alarm:
        # A broken split means the guardrail numbers cannot be trusted either.
        return CanaryDecision(
            CanaryAction.ROLLBACK,
            f"sample-ratio mismatch (p={srm.p_value:.2g}) at stage {stage}",
            NOT_IN_CANARY,
        )
    if stage + 1 >= len(state.config.canary_stages):
        return CanaryDecision(
            CanaryAction.HOLD,
            "final stage healthy: promote the challenger to finish",
            stage,
        )
    failed = to_challenger.where(fallback=True).requests
    return CanaryDecision(
        CanaryAction.ADVANCE,
        f"stage {stage} healthy over {assigned} challenger requests (errors {failed})",
        stage + 1,
    )


def _brier_breach(
    labelled: Mapping[str, LabelledSums],
    champion: str,
    challenger: str,
    policy: CanaryPolicy,
) -> str | None:
    """The challenger's Brier score against the champion's, once both have
    enough labels."""
    scores: dict[str, float] = {}
    for variant in (champion, challenger):
        sums = labelled.get(variant)
        if sums is None or sums.n < MIN_LABELS_FOR_BRIER:
            return None
        scores[variant] = sums.brier.mean
    excess = scores[challenger] - scores[champion]
    if excess > policy.brier_margin:
        return (
            f"challenger Brier {scores[challenger]:.4f} is worse than champion "
            f"{scores[champion]:.4f} by more than {policy.brier_margin}"
        )
    return None
