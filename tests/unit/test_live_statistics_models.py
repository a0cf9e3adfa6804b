"""The live view judges each variant on its model in force, never pooled (#18)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ab_router.config import ExperimentConfig
from ab_router.ledger.sqlite import SqliteLedger
from ab_router.simulate import synthetic_exposures
from ab_router.statistics.decision import DecisionConfig
from serving.ledger_metrics import ledger_metrics_text
from serving.live_statistics import LiveStatistics
from serving.state_cache import StateCache


def _live(tmp_path: Path) -> tuple[SqliteLedger, LiveStatistics, int]:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3")
    state = ledger.ensure_experiment(
        ExperimentConfig(name="churn", salt="s", weights={"v1": 0.5, "v2": 0.5})
    )
    live = LiveStatistics(
        ledger, StateCache(ledger, state, 0.0), DecisionConfig(min_labels=30)
    )
    return ledger, live, state.epoch


def _gauge(live: LiveStatistics) -> str:
    text = ledger_metrics_text(live, {})
    return next(
        line for line in text.splitlines() if line.startswith("churn_ab_mixed_models{")
    )


def test_one_model_per_variant_is_not_mixed(tmp_path: Path) -> None:
    ledger, live, epoch = _live(tmp_path)
    v1 = ledger.register_model_version("v1", "churn_v1:a")
    v2 = ledger.register_model_version("v2", "churn_v2:a")
    ledger.record_epoch_models("churn", epoch, {"v1": v1, "v2": v2}, actor="test")
    rows = synthetic_exposures(600, epoch=epoch, label_fraction=0.5)
    ledger.record_exposures(
        [replace(e, model_id=v1 if e.variant == "v1" else v2) for e in rows]
    )
    stats = live.snapshot().stats
    assert stats["models"] == {
        "v1": {"tag": "churn_v1:a", "model_id": v1},
        "v2": {"tag": "churn_v2:a", "model_id": v2},
    }
    assert stats["mixed_models"] == []
    assert stats["auc_method"] == "binned_4096"
    assert _gauge(live) == 'churn_ab_mixed_models{experiment="churn"} 0.0'


def test_a_second_model_is_shown_as_mixed_and_left_out(tmp_path: Path) -> None:
    ledger, live, epoch = _live(tmp_path)
    v1 = ledger.register_model_version("v1", "churn_v1:a")
    v2a = ledger.register_model_version("v2", "churn_v2:a")
    v2b = ledger.register_model_version("v2", "churn_v2:b")
    ledger.record_epoch_models("churn", epoch, {"v1": v1, "v2": v2a}, actor="one")
    rows = synthetic_exposures(1_000, epoch=epoch, label_fraction=0.5, seed=3)
    # A second replica serves another v2 model on the same ledger.
    tagged = [
        replace(e, model_id=v1 if e.variant == "v1" else (v2a if i % 3 else v2b))
        for i, e in enumerate(rows)
    ]
    ledger.record_exposures(tagged)
    snapshot = live.snapshot()
    stats = snapshot.stats
    assert stats["models"]["v2"] == {"tag": "churn_v2:a", "model_id": v2a}
    assert stats["mixed_models"] == [
        {"variant": "v2", "tags": ["churn_v2:a", "churn_v2:b"], "model_ids": [v2a, v2b]}
    ]
    assert _gauge(live) == 'churn_ab_mixed_models{experiment="churn"} 1.0'

    # The statistics count only the in-force model's labels; the traffic
    # view counts every labelled v2 row.
    own = [e for e in tagged if e.label is not None and not e.fallback]
    in_force = sum(e.variant == "v2" and e.model_id == v2a for e in own)
    every = sum(e.variant == "v2" for e in own)
    assert 0 < in_force < every
    assert snapshot.summary.quality["v2"].labelled == in_force
    assert stats["variants"]["v2"]["labelled"] == every


def test_without_records_the_newest_model_is_judged(tmp_path: Path) -> None:
    ledger, live, epoch = _live(tmp_path)
    v1 = ledger.register_model_version("v1", "churn_v1:a")
    old = ledger.register_model_version("v2", "churn_v2:old")
    new = ledger.register_model_version("v2", "churn_v2:new")
    rows = synthetic_exposures(400, epoch=epoch, label_fraction=0.5, seed=4)
    ledger.record_exposures(
        [
            replace(e, model_id=v1 if e.variant == "v1" else (old if i < 200 else new))
            for i, e in enumerate(rows)
        ]
    )
    stats = live.snapshot().stats
    assert stats["models"]["v1"]["model_id"] == v1
    assert stats["models"]["v2"]["model_id"] == new
    assert [m["variant"] for m in stats["mixed_models"]] == ["v2"]
