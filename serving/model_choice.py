"""Which model's sums the live statistics judge each variant on (issue #18).

The rollups keep labelled sums per (variant, model id); two models are never
pooled into one statistic. The model *in force* for a variant is the first
one recorded for the epoch (``Ledger.epoch_models``, written at start-up);
an epoch without recorded models (written before they were) judges the
newest model id it holds, since ids only grow (one rule with the offline
report: :func:`ab_router.statistics.model_split.models_in_force`). A variant
whose epoch holds traffic, labels or records of more than one model is
*mixed*: its other
models' labels are shown as existing but left out of the comparison, and
``churn_ab_mixed_models`` counts such variants. The unknown id (rows written
before model versions existed) counts as a model of its own: whether it is
the same one cannot be known, so it is not silently pooled.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ab_router.ledger.rollups import EpochRollup
from ab_router.records import EpochModel, ModelVersion
from ab_router.statistics.labelled_sums import LabelledSums, PairedSums
from ab_router.statistics.model_split import models_in_force


@dataclass(frozen=True)
class ModelChoice:
    """The model in force per variant, and the variants holding several."""

    in_force: Mapping[str, int]
    """variant -> model id whose sums the statistics use."""
    seen: Mapping[str, tuple[int, ...]]
    """variant -> every model id of the epoch (traffic, labels, records)."""
    tags: Mapping[int, str]

    @property
    def mixed(self) -> dict[str, tuple[int, ...]]:
        return {v: ids for v, ids in self.seen.items() if len(ids) > 1}

    def labelled(self, rollup: EpochRollup) -> dict[str, LabelledSums]:
        """Each variant's labelled sums of its model in force only."""
        # Every labelled variant is in ``in_force`` (its models are ``seen``),
        # so this never pools and never raises MixedModelsError.
        return rollup.labelled_split().for_statistics(self.in_force)

    def paired(
        self, rollup: EpochRollup, champion: str, challenger: str
    ) -> PairedSums | None:
        """The (champion, challenger) pairs of the two models in force."""
        m1, m2 = self.in_force.get(champion), self.in_force.get(challenger)
        if m1 is None or m2 is None:
            return None
        return rollup.paired_split().by_model((champion, challenger)).get((m1, m2))

    def models_view(self) -> dict[str, dict[str, Any]]:
        """``/ab-test/stats`` ``models``: variant -> tag and id in force."""
        return {
            v: {"tag": self.tags.get(m), "model_id": m}
            for v, m in sorted(self.in_force.items())
        }

    def mixed_view(self) -> list[dict[str, Any]]:
        """``/ab-test/stats`` ``mixed_models``: [] when every variant has one."""
        return [
            {
                "variant": v,
                "tags": [self.tags.get(m) for m in ids],
                "model_ids": list(ids),
            }
            for v, ids in sorted(self.mixed.items())
        ]


def choose_models(
    rollup: EpochRollup,
    recorded: Sequence[EpochModel],
    versions: Mapping[int, ModelVersion],
) -> ModelChoice:
    """The models in force of one epoch, from its rollups and its records."""
    seen: dict[str, set[int]] = defaultdict(set)
    for model, traffic in rollup.traffic_by_model.items():
        for variant, requests in traffic.counts("variant").items():
            if requests:
                seen[variant].add(model)
    for variant, model in rollup.labelled:
        seen[variant].add(model)
    for champion, m1, challenger, m2 in rollup.paired:
        seen[champion].add(m1)
        seen[challenger].add(m2)
    for record in recorded:
        seen[record.variant].add(record.model_id)
    in_force = models_in_force(seen, ((r.variant, r.model_id) for r in recorded))
    return ModelChoice(
        dict(sorted(in_force.items())),
        {v: tuple(sorted(ids)) for v, ids in sorted(seen.items())},
        {i: m.tag for i, m in versions.items()},
    )
