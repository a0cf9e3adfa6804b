"""The live summary from the ledger's rollups equals the exact summary from
its rows (but for the binned ROC AUC): what the serving side will switch to.

Exposures are written without labels, then labelled one by one through the
ledger (shadow scores, where there are any, are recorded first for some
rows and after the label for others), so the sums are the ones the label and
shadow transactions built, not a batch recomputation.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ab_router.config import ExperimentConfig
from ab_router.ledger import SqliteLedger
from ab_router.records import Mode
from ab_router.simulate import SyntheticWorld, synthetic_exposures
from ab_router.statistics import summarize
from ab_router.statistics.experiment import summarize_sums
from tests.unit.test_statistics_summarize_sums import (
    AUC_TOL,
    CFG,
    _assert_same,
    _assert_same_decision,
    _without_auc,
)

WEIGHTS = {"v1": 0.5, "v2": 0.5}


@pytest.mark.parametrize("mode", [Mode.SPLIT, Mode.SHADOW])
def test_the_rollup_summary_equals_the_row_summary(tmp_path: Path, mode: Mode) -> None:
    rows = synthetic_exposures(
        4_000,
        world=SyntheticWorld(brier_difference=-0.01),
        weights=WEIGHTS,
        mode=mode,
        label_fraction=0.4,
        fallback_rate=0.03,
        seed=5,
        experiment="churn",
    )
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3")
    ledger.ensure_experiment(
        ExperimentConfig(name="churn", salt="s", weights=WEIGHTS, mode=mode)
    )
    unlabelled = [replace(e, label=None, labelled_at=None) for e in rows]
    if mode is Mode.SHADOW:
        unlabelled = [
            replace(e, shadow_variant=None, shadow_probability=None,
                    shadow_prediction=None)
            for e in unlabelled
        ]  # fmt: skip
    ledger.record_exposures(unlabelled)
    shadowed = [e for e in rows if e.shadow_probability is not None]
    early, late = shadowed[::2], shadowed[1::2]

    def shadow(batch: list) -> None:
        ledger.record_shadow_scores(
            "v2",
            [(e.request_id, e.shadow_probability, e.shadow_prediction) for e in batch],
        )

    shadow(early)
    for e in rows:
        if e.label is not None:
            ledger.label_request(e.request_id, bool(e.label))
    shadow(late)
    assert (mode is Mode.SHADOW) == bool(shadowed)

    rollup = ledger.epoch_rollup("churn", 1)
    pairs = rollup.paired_split().for_statistics()
    live = summarize_sums(
        rollup.traffic,
        rollup.labelled_split().for_statistics(),
        pairs.get(("v1", "v2")),
        WEIGHTS,
        CFG,
    )
    exact = summarize(
        ledger.epoch_traffic("churn", 1), ledger.labelled_arrays("churn", 1),
        WEIGHTS, CFG,
    )  # fmt: skip
    _assert_same(_without_auc(live.to_dict()), _without_auc(exact.to_dict()))
    _assert_same_decision(exact, live)
    for v, q in exact.quality.items():
        assert live.quality[v].roc_auc == pytest.approx(q.roc_auc, abs=AUC_TOL)
    assert exact.design == ("paired" if mode is Mode.SHADOW else "independent")
