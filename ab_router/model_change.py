"""A change of the models behind the variants is a change of the experiment.

An epoch's statistics rest on one constant setup, and which model answered
is part of it (issue #18). At start-up an instance compares the models it
serves with those recorded for the current epoch:

- the same models: nothing to do;
- none recorded yet and no traffic from other models (a fresh ledger, or an
  epoch nobody has served): the instance records its models for the epoch;
- different models, or none recorded but traffic from other models (a
  ledger upgraded in place: its exposures carry the "unknown before upgrade"
  model): a new epoch with a ``model_changed`` transition naming the old
  and new tags, and the new models recorded in the same transaction. Pooling
  the old epoch's unknown models with the known ones would be exactly the
  mixing this guards against, so an upgraded ledger starts a new epoch too;
  its old epoch's statistics stay as they were.

The change uses the ledger's optimistic versioning: of two instances
starting at once with the same new models, one starts the new epoch and the
other then finds its models recorded there. The policy ``refuse`` stops the
start instead of starting a new epoch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from ab_router.admin import Change
from ab_router.errors import AbRouterError
from ab_router.ledger import Ledger
from ab_router.records import EpochModel, ModelVersion

MODEL_CHANGED = "model_changed"

# Each lost race means another instance changed the experiment meanwhile;
# re-reading settles it unless changes keep coming faster than we read.
_ATTEMPTS = 5


class OnModelChange(StrEnum):
    """What a start with models other than the current epoch's does."""

    NEW_EPOCH = "new_epoch"
    REFUSE = "refuse"


class Action(StrEnum):
    KEEP = "keep"  # the epoch's recorded models are ours
    RECORD = "record"  # nothing recorded and nobody else served: record ours
    NEW_EPOCH = "new_epoch"


@dataclass(frozen=True)
class ModelDecision:
    action: Action
    before: Mapping[str, tuple[str, ...]]
    """Tags per variant the epoch had (recorded, or seen in its traffic)."""
    after: Mapping[str, str]
    """Our tag per variant."""

    def describe(self) -> str:
        """``v2 churn_v2:a -> churn_v2:b`` for every variant that changed."""
        changes = [
            f"{variant} {' + '.join(self.before.get(variant, ())) or '(none)'} -> {tag}"
            for variant, tag in sorted(self.after.items())
            if self.before.get(variant, ()) != (tag,)
        ]
        return ", ".join(changes) or "models unchanged"


@dataclass(frozen=True)
class ModelOutcome:
    """What the start did, for its log line."""

    decision: ModelDecision
    epoch: int
    """The epoch the models are recorded for."""


class ModelChangeRefused(AbRouterError):
    """The models changed and the policy is to refuse the start."""

    status = 409
    code = "model_changed"

    def __init__(self, decision: ModelDecision, epoch: int) -> None:
        self.decision = decision
        self.epoch = epoch
        super().__init__(
            f"the models differ from those of epoch {epoch} ({decision.describe()})",
            field="on_model_change",
        )


def decide(
    recorded: Sequence[EpochModel],
    ours: Mapping[str, ModelVersion],
    traffic_models: Mapping[int, str],
) -> ModelDecision:
    """Compare our models with the epoch's.

    ``recorded``: the epoch's recorded models; ``traffic_models``: the ids
    (and tags) of the models the epoch's traffic came from, consulted only
    when nothing is recorded.
    """
    after = {variant: version.tag for variant, version in ours.items()}
    before: dict[str, tuple[str, ...]] = {}
    for model in recorded:
        tags = before.get(model.variant, ())
        if model.tag not in tags:
            before[model.variant] = (*tags, model.tag)
    if recorded:
        same = all(before.get(v, ()) == (tag,) for v, tag in after.items())
        return ModelDecision(Action.KEEP if same else Action.NEW_EPOCH, before, after)
    ours_ids = {version.id for version in ours.values()}
    others = {i: tag for i, tag in traffic_models.items() if i not in ours_ids}
    if not others:
        return ModelDecision(Action.RECORD, before, after)
    # Traffic rollups know the model, not the variant: every variant had them.
    seen = tuple(tag for _, tag in sorted(others.items()))
    return ModelDecision(Action.NEW_EPOCH, {v: seen for v in after}, after)


def traffic_models(ledger: Ledger, experiment: str, epoch: int) -> dict[int, str]:
    """Ids and tags of the models an epoch's traffic came from (rollups)."""
    rollup = ledger.epoch_rollup(experiment, epoch)
    ids = [i for i, traffic in rollup.traffic_by_model.items() if traffic.requests]
    if not ids:
        return {}
    versions = ledger.model_versions()
    return {i: versions[i].tag if i in versions else f"model {i}" for i in ids}


def reconcile_models(
    ledger: Ledger,
    experiment: str,
    known_variants: frozenset[str],
    ours: Mapping[str, ModelVersion],
    *,
    policy: OnModelChange,
    actor: str,
) -> ModelOutcome:
    """Record ``ours`` for the current epoch, or start a new epoch for them.

    Raises :class:`ModelChangeRefused` when a new epoch is needed and the
    policy is ``refuse``.
    """
    ids = {variant: version.id for variant, version in ours.items()}
    for _ in range(_ATTEMPTS):
        state = ledger.state(experiment, known_variants)
        recorded = ledger.epoch_models(experiment, state.epoch)
        seen = {} if recorded else traffic_models(ledger, experiment, state.epoch)
        decision = decide(recorded, ours, seen)
        if decision.action is Action.KEEP:
            return ModelOutcome(decision, state.epoch)
        if decision.action is Action.RECORD:
            ledger.record_epoch_models(experiment, state.epoch, ids, actor=actor)
            return ModelOutcome(decision, state.epoch)
        if policy is OnModelChange.REFUSE:
            raise ModelChangeRefused(decision, state.epoch)
        if ledger.change_state(
            state,
            Change(state.config, state.canary_stage, MODEL_CHANGED),
            reason=f"models changed: {decision.describe()}",
            actor=actor,
            models=ids,
        ):
            return ModelOutcome(decision, state.epoch + 1)
    raise AbRouterError(
        f"experiment {experiment!r} kept changing while the start-up recorded "
        f"its models ({_ATTEMPTS} attempts); start again",
        field="experiment",
    )
