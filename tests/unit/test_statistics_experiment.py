"""summarize_experiment and per-variant quality against independent oracles."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)
from statsmodels.stats.contingency_tables import mcnemar

from ab_router.records import Exposure, Mode
from ab_router.simulate import SyntheticWorld, synthetic_exposures
from ab_router.statistics import (
    NO_DATA,
    SINGLE_CLASS,
    DecisionConfig,
    Verdict,
    latency_summary,
    summarize_experiment,
    variant_quality,
)

CFG = DecisionConfig()
W = {"v1": 0.5, "v2": 0.5}


def test_variant_quality_matches_sklearn() -> None:
    rng = np.random.default_rng(4)
    y = (rng.random(800) < 0.27).astype(int)
    p = np.clip(0.2 + 0.4 * y + rng.normal(0, 0.2, 800), 0.01, 0.99)
    pred = (p >= 0.4).astype(int)
    q = variant_quality("v1", p, y, pred)
    assert q.error is None and q.labelled == 800
    assert q.accuracy == pytest.approx(accuracy_score(y, pred))
    assert q.precision == pytest.approx(precision_score(y, pred))
    assert q.recall == pytest.approx(recall_score(y, pred))
    assert q.roc_auc == pytest.approx(roc_auc_score(y, p))
    assert q.brier == pytest.approx(brier_score_loss(y, p))
    assert q.log_loss == pytest.approx(log_loss(y, p))
    assert q.observed_churn_rate == pytest.approx(y.mean())
    assert q.predicted_churn_rate == pytest.approx(pred.mean())


def test_log_loss_clips_certain_mistakes() -> None:
    q = variant_quality("v1", [0.0, 1.0], [1, 0], [0, 1])
    assert math.isfinite(q.log_loss) and q.log_loss == pytest.approx(
        -math.log(1e-15), rel=1e-3
    )


def test_variant_quality_degenerate() -> None:
    assert variant_quality("v1", [], [], []).error == NO_DATA
    one_class = variant_quality("v1", [0.2, 0.7], [0, 0], [0, 1])
    assert one_class.error == SINGLE_CLASS and math.isnan(one_class.roc_auc)
    assert one_class.accuracy == 0.5


def test_latency_summary_matches_numpy() -> None:
    x = np.random.default_rng(1).lognormal(2.0, 0.5, 1_001)
    s = latency_summary(x)
    # Quantiles come from the 0.1 ms buckets below 100 ms (statistics.latency):
    # within one bucket of numpy's; the mean from whole microseconds.
    assert (s.p50_ms, s.p95_ms, s.p99_ms) == pytest.approx(
        tuple(np.percentile(x, [50, 95, 99])), abs=0.1
    )
    assert s.mean_ms == pytest.approx(x.mean(), abs=0.0005)
    assert (s.min_ms, s.max_ms, s.n) == (x.min(), x.max(), 1_001)
    assert latency_summary([]).error == NO_DATA


def _arrays(rows: list[Exposure], variant: str) -> tuple[np.ndarray, np.ndarray]:
    keep = [
        e
        for e in rows
        if e.variant == variant and not e.fallback and e.label is not None
    ]
    return (
        np.array([e.churn_probability for e in keep]),
        np.array([e.label for e in keep], dtype=float),
    )


def test_split_summary_against_oracles() -> None:
    rows = synthetic_exposures(
        8_000,
        world=SyntheticWorld(brier_difference=-0.02),
        label_fraction=0.6,
        fallback_rate=0.02,
        seed=9,
    )
    s = summarize_experiment(rows, W, CFG)
    assert s.design == "independent" and s.mode == "split"

    fallbacks = [e for e in rows if e.fallback]
    assert sum(s.fallbacks.values()) == len(fallbacks) > 0
    assert sum(s.exposures.values()) == len(rows) - len(fallbacks)
    assigned = [sum(e.assigned_variant == v for e in rows) for v in W]
    ref = stats.chisquare(assigned, [len(rows) / 2] * 2)
    assert s.srm.p_value == pytest.approx(ref.pvalue)

    p1, y1 = _arrays(rows, "v1")
    p2, y2 = _arrays(rows, "v2")
    assert s.labelled["v1"] == y1.size and s.labelled["v2"] == y2.size
    assert s.quality["v2"].roc_auc == pytest.approx(roc_auc_score(y2, p2))
    assert s.quality["v1"].brier == pytest.approx(brier_score_loss(y1, p1))

    ref_t = stats.ttest_ind((p2 - y2) ** 2, (p1 - y1) ** 2, equal_var=False)
    assert s.comparison.brier.estimate == pytest.approx(
        brier_score_loss(y2, p2) - brier_score_loss(y1, p1)
    )
    assert s.comparison.brier.p_value == pytest.approx(ref_t.pvalue, rel=1e-6)
    l1 = -(y1 * np.log(p1) + (1 - y1) * np.log(1 - p1))
    l2 = -(y2 * np.log(p2) + (1 - y2) * np.log(1 - p2))
    ref_l = stats.ttest_ind(l2, l1, equal_var=False)
    assert s.comparison.log_loss.statistic == pytest.approx(ref_l.statistic, rel=1e-6)
    assert s.comparison.roc_auc.estimate == pytest.approx(
        roc_auc_score(y2, p2) - roc_auc_score(y1, p1)
    )

    seq = s.sequential
    se = math.sqrt(
        np.var((p2 - y2) ** 2, ddof=1) / y2.size
        + np.var((p1 - y1) ** 2, ddof=1) / y1.size
    )
    assert seq.t == y1.size + y2.size and seq.se == pytest.approx(se)
    assert seq.lower < s.comparison.brier.ci_low  # wider than one fixed look
    assert s.decision.verdict == Verdict.CHALLENGER_BETTER
    assert "v2 better" in s.decision.message


def test_shadow_summary_is_paired() -> None:
    rows = synthetic_exposures(
        3_000,
        world=SyntheticWorld(brier_difference=0.005),
        mode=Mode.SHADOW,
        label_fraction=0.8,
        seed=10,
    )
    s = summarize_experiment(rows, {"v1": 1.0, "v2": 0.0}, CFG)
    assert s.design == "paired"
    assert s.srm.error == "not_applicable" and not s.srm.alarm
    lab = [e for e in rows if e.label is not None]
    y = np.array([e.label for e in lab], dtype=float)
    p1 = np.array([e.churn_probability for e in lab])
    p2 = np.array([e.shadow_probability for e in lab], dtype=float)
    ref = stats.ttest_rel((p2 - y) ** 2, (p1 - y) ** 2)
    assert s.comparison.brier.statistic == pytest.approx(ref.statistic, rel=1e-7)
    c1 = np.array([e.prediction for e in lab]) == y
    c2 = np.array([e.shadow_prediction for e in lab]) == y
    table = [[np.sum(c2 & c1), np.sum(c2 & ~c1)], [np.sum(~c2 & c1), np.sum(~c2 & ~c1)]]
    assert s.comparison.accuracy.p_value == pytest.approx(
        mcnemar(table, exact=False, correction=True).pvalue
    )
    assert s.quality["v2"].brier == pytest.approx(brier_score_loss(y, p2))
    assert s.quality["v2"].labelled == s.quality["v1"].labelled == y.size
    assert s.sequential.t == y.size


def test_srm_alarm_blocks_the_winner() -> None:
    rows = synthetic_exposures(
        4_000,
        world=SyntheticWorld(brier_difference=-0.02),
        weights={"v1": 0.7, "v2": 0.3},
        seed=3,
    )
    ok = summarize_experiment(rows, {"v1": 0.7, "v2": 0.3}, CFG)
    assert ok.decision.verdict == Verdict.CHALLENGER_BETTER
    wrong = summarize_experiment(rows, W, CFG)
    assert wrong.srm.alarm and wrong.decision.verdict == Verdict.SRM_ALARM
    assert wrong.decision.winner is None


def test_zero_weight_variant_with_traffic_raises_srm() -> None:
    rows = synthetic_exposures(500, seed=4)
    s = summarize_experiment(rows, {"v1": 1.0, "v2": 0.0}, CFG)
    assert s.srm.alarm and s.srm.unexpected_variants == ("v2",)


@pytest.mark.parametrize("case", ["empty", "unlabelled", "one_class", "one_variant"])
def test_degenerate_inputs_do_not_raise_and_serialise(case: str) -> None:
    rows = synthetic_exposures(400, seed=5)
    if case == "empty":
        rows = []
    elif case == "unlabelled":
        rows = [replace(e, label=None, labelled_at=None) for e in rows]
    elif case == "one_class":
        rows = [replace(e, label=0) for e in rows]
    elif case == "one_variant":
        rows = [e for e in rows if e.variant == "v1"]
    s = summarize_experiment(rows, W, CFG)
    d = s.to_dict()
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text)["decision"]["verdict"] == s.decision.verdict.value
    assert s.decision.winner is None


def test_to_dict_shape() -> None:
    s = summarize_experiment(synthetic_exposures(1_000, seed=6), W, CFG)
    d = s.to_dict()
    assert d["decision"]["verdict"] in {v.value for v in Verdict}
    assert d["quality"]["v1"]["brier_summary"]["n"] == s.labelled["v1"]
    assert d["comparison"]["brier"]["metric"] == "brier"
    assert d["sequential"]["method"].startswith("asymptotic_confidence_sequence")
    assert d["config"]["mde"] == CFG.mde
    json.dumps(d, allow_nan=False)
