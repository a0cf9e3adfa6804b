"""EpochTraffic: counts that match the rows, merging, and one statistics path.

The live view summarises ``EpochTraffic`` plus the labelled rows; these tests
prove that gives what the statistics computed from every row, and that
unlabelled rows change nothing but the traffic numbers.
"""

from __future__ import annotations

import numpy as np
import pytest

from ab_router.records import Mode
from ab_router.simulate import synthetic_exposures
from ab_router.state import NOT_IN_CANARY, ExperimentState
from ab_router.statistics import (
    DecisionConfig,
    EpochTraffic,
    ExposureArrays,
    LatencyHistogram,
    summarize,
    summarize_arrays,
)
from ab_router.traffic import labels_by_variant, traffic_stats
from tests.support.ledgers import CONFIG

CFG = DecisionConfig()
W = {"v1": 0.5, "v2": 0.5}


def arrays(mode: Mode = Mode.SPLIT) -> ExposureArrays:
    rows = synthetic_exposures(
        4_000, mode=mode, label_fraction=0.3, fallback_rate=0.05, seed=11
    )
    return ExposureArrays.from_exposures(rows)


def test_counts_and_latency_match_the_rows() -> None:
    a = arrays()
    t = EpochTraffic.from_arrays(a)
    assert t.requests == a.fallback.size
    assert t.counts("assigned") == dict(
        zip(*np.unique(a.assigned, return_counts=True), strict=True)
    )
    for v in ("v1", "v2"):
        mine = a.variant == v
        answered = t.where(variant=v, fallback=False)
        assert answered.requests == int((mine & ~a.fallback).sum())
        assert t.where(variant=v).predicted_churn == int(a.prediction[mine].sum())
        assert answered.latency == LatencyHistogram.from_values(
            a.latency_ms[mine & ~a.fallback]
        )
    assert t.where(fallback=True).requests == int(a.fallback.sum()) > 0
    assert t.experiments == ("churn",) and t.epochs == (1,)


def test_merging_windows_equals_the_whole_epoch() -> None:
    rows = synthetic_exposures(3_000, fallback_rate=0.05, seed=12)
    parts = [rows[:1000], rows[1000:1001], rows[1001:]]
    merged = EpochTraffic()
    for part in parts:
        merged = merged + EpochTraffic.from_arrays(ExposureArrays.from_exposures(part))
    assert merged == EpochTraffic.from_arrays(ExposureArrays.from_exposures(rows))


@pytest.mark.parametrize("mode", [Mode.SPLIT, Mode.SHADOW])
def test_unlabelled_rows_only_move_the_traffic_numbers(mode: Mode) -> None:
    """``summarize`` on (traffic, labelled rows) equals it on (traffic, all
    rows): the live path may drop every unlabelled row."""
    a = arrays(mode=mode)
    traffic = EpochTraffic.from_arrays(a)
    weights = W if mode is Mode.SPLIT else {"v1": 1.0, "v2": 0.0}
    bounded = summarize(traffic, a.take(a.labelled), weights, CFG).to_dict()
    assert bounded == summarize(traffic, a, weights, CFG).to_dict()
    assert bounded == summarize_arrays(a, weights, CFG).to_dict()
    assert bounded["design"] == ("paired" if mode is Mode.SHADOW else "independent")
    assert bounded["total_exposures"] == a.fallback.size


def test_shadow_design_holds_before_the_first_label() -> None:
    rows = synthetic_exposures(500, mode=Mode.SHADOW, label_fraction=0.0, seed=13)
    a = ExposureArrays.from_exposures(rows)
    s = summarize(EpochTraffic.from_arrays(a), a.take(a.labelled), {"v1": 1.0}, CFG)
    assert s.design == "paired" and s.labelled == {"v1": 0, "v2": 0}


def test_traffic_stats_from_the_bounded_inputs() -> None:
    a = arrays()
    state = ExperimentState(CONFIG, 1, NOT_IN_CANARY, 1, 0.0)
    stats = traffic_stats(
        state, EpochTraffic.from_arrays(a), labels_by_variant(a.take(a.labelled))
    )
    assert stats["total_requests"] == a.fallback.size
    for v in ("v1", "v2"):
        mine = a.variant == v
        view = stats["variants"][v]
        assert view["requests"] == int(mine.sum())
        assert view["fallbacks_answered"] == int((mine & a.fallback).sum())
        assert view["labelled"] == int((mine & a.labelled).sum())
        assert view["predicted_churn_rate"] == pytest.approx(a.prediction[mine].mean())
        lat = view["latency_ms"]
        assert lat["p95"] == pytest.approx(
            np.percentile(a.latency_ms[mine], 95), abs=0.1
        )
        assert lat["min"] == a.latency_ms[mine].min()
    assert stats["variants"]["v1"]["traffic_pct"] + stats["variants"]["v2"][
        "traffic_pct"
    ] == pytest.approx(100.0)


def test_empty_epoch() -> None:
    empty = ExposureArrays.from_exposures([])
    t = EpochTraffic.from_arrays(empty)
    assert t == EpochTraffic() and t.requests == 0 and t.counts("mode") == {}
    s = summarize(t, empty, W, CFG)
    assert s.total_exposures == 0 and s.mode is None and s.experiment is None
    assert s.latency["v1"].error == "no_data"
