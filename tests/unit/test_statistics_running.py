"""The one running (sequential) Brier difference, against naive per-step oracles.

The oracles recompute every prefix from scratch with numpy's two-pass
``mean``/``var``, so they share nothing with the cumulative sums under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ab_router.records import Mode
from ab_router.simulate import MonitoringConfig, run_monitoring, synthetic_exposures
from ab_router.statistics import (
    DecisionConfig,
    ExposureArrays,
    MomentSummary,
    confidence_sequence,
    summarize_experiment,
)
from ab_router.statistics.analysis import analysis_for
from ab_router.statistics.design import Design, design_of
from ab_router.statistics.running import (
    RunningMoments,
    independent_difference,
    paired_difference,
    running_independent,
    running_paired,
)

CFG = DecisionConfig()


def _naive_paired(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    est = np.full(d.size, np.nan)
    se = np.full(d.size, np.nan)
    for t in range(1, d.size + 1):
        est[t - 1] = d[:t].mean()
        if t >= 2:
            se[t - 1] = d[:t].std(ddof=1) / math.sqrt(t)
    return est, se


def _naive_independent(
    loss: np.ndarray, arm: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    est = np.full(loss.size, np.nan)
    se = np.full(loss.size, np.nan)
    for t in range(1, loss.size + 1):
        x2, x1 = loss[:t][arm[:t]], loss[:t][~arm[:t]]
        if x1.size and x2.size:
            est[t - 1] = x2.mean() - x1.mean()
        if x1.size >= 2 and x2.size >= 2:
            se[t - 1] = math.sqrt(x1.var(ddof=1) / x1.size + x2.var(ddof=1) / x2.size)
    return est, se


def test_running_paired_equals_a_per_step_loop() -> None:
    rng = np.random.default_rng(1)
    d = rng.normal(0.01, 0.1, 500)
    r = running_paired(d)
    est, se = _naive_paired(d)
    assert r.t.tolist() == list(range(1, 501))
    np.testing.assert_allclose(r.estimate, est, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(r.se, se, rtol=1e-8, atol=1e-15)
    assert math.isnan(r.se[0]) and not math.isnan(r.se[1])


def test_running_independent_equals_a_per_step_loop() -> None:
    rng = np.random.default_rng(2)
    arm = rng.random(500) < 0.3
    loss = np.where(arm, rng.exponential(0.2, 500), rng.exponential(0.25, 500))
    r = running_independent(loss, arm)
    est, se = _naive_independent(loss, arm)
    np.testing.assert_allclose(r.estimate, est, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(r.se, se, rtol=1e-8, atol=1e-15)
    np.testing.assert_array_equal(r.challenger_labels, np.cumsum(arm))
    np.testing.assert_array_equal(r.champion_labels, np.cumsum(~arm))
    np.testing.assert_array_equal(r.t, np.arange(1, 501))


@pytest.mark.parametrize("design", list(Design))
def test_checkpoints_of_many_runs_equal_each_run_alone(design: Design) -> None:
    """The simulation's 2-D form: each row, at each checkpoint, is the 1-D curve."""
    rng = np.random.default_rng(3)
    loss = rng.normal(0.2, 0.05, (4, 300))
    arm = rng.random((4, 300)) < 0.5
    at = np.arange(9, 300, 10)
    if design is Design.PAIRED:
        many = running_paired(loss, at)
        alone = [running_paired(row) for row in loss]
    else:
        many = running_independent(loss, arm, at)
        alone = [running_independent(x, a) for x, a in zip(loss, arm, strict=True)]
    for i, one in enumerate(alone):
        np.testing.assert_array_equal(many.estimate[i], one.estimate[at])
        np.testing.assert_array_equal(many.se[i], one.se[at])
        assert many.ready(50)[i].tolist() == one.ready(50)[at].tolist()


def test_warm_up_needs_min_labels_on_both_sides() -> None:
    arm = np.array([True] * 5 + [False] * 3 + [True, False])
    r = running_independent(np.linspace(0.1, 1.0, 10), arm)
    # Champion reaches 3 labels at row 8 and 4 at row 10.
    assert r.ready(3).tolist() == [False] * 7 + [True] * 3
    assert r.ready(4).tolist() == [False] * 9 + [True]
    assert running_paired(np.arange(5.0)).ready(3).tolist() == [False] * 2 + [True] * 3


@pytest.mark.parametrize(
    "values",
    [[], [0.3], [0.25, 0.25], [0.1, 0.1, 0.1], [1e8, 1e8 + 1e-7], [0.1, 0.4, 0.9]],
)
def test_variance_follows_moment_summary(values: list[float]) -> None:
    """Degenerate rows give the same NaN / 0 as the summary's own variance."""
    m = MomentSummary.from_values(values)
    got = float(RunningMoments.of(m).variance)
    assert got == pytest.approx(m.variance, nan_ok=True, rel=0, abs=0)


def test_one_point_from_summaries_equals_the_curve_end() -> None:
    rng = np.random.default_rng(4)
    arm = rng.random(400) < 0.5
    loss = rng.random(400)
    curve = running_independent(loss, arm)
    point = independent_difference(
        RunningMoments.of(MomentSummary.from_values(loss[~arm])),
        RunningMoments.of(MomentSummary.from_values(loss[arm])),
    )
    assert float(point.t) == curve.t[-1]
    assert float(point.estimate) == pytest.approx(curve.estimate[-1], rel=1e-12)
    assert float(point.se) == pytest.approx(curve.se[-1], rel=1e-9)
    d = paired_difference(RunningMoments.of(MomentSummary.from_values(loss)))
    assert float(d.se) == pytest.approx(running_paired(loss).se[-1], rel=1e-9)


@pytest.mark.parametrize("mode", [Mode.SPLIT, Mode.SHADOW])
def test_summary_sequence_is_the_last_point_of_the_running_one(mode: Mode) -> None:
    rows = synthetic_exposures(2_000, mode=mode, label_fraction=0.6, seed=5)
    s = summarize_experiment(rows, {"v1": 0.5, "v2": 0.5}, CFG)
    running = analysis_for(s.design).running_brier(
        ExposureArrays.from_exposures(rows), "v1", "v2"
    )
    lo, hi = running.sequence(CFG.alpha, CFG.planned_labels)
    seq = s.sequential
    assert (
        running.t[-1]
        == seq.t
        == sum(s.labelled[v] for v in ("v1", "v2")) / (2 if mode == Mode.SHADOW else 1)
    )
    assert (running.estimate[-1], lo[-1], hi[-1]) == pytest.approx(
        (seq.estimate, seq.lower, seq.upper), rel=1e-9
    )
    direct = confidence_sequence(
        running.estimate[-1],
        running.se[-1],
        int(running.t[-1]),
        alpha=CFG.alpha,
        planned_labels=CFG.planned_labels,
    )
    assert direct.p_value == pytest.approx(seq.p_value, rel=1e-9)


@pytest.mark.parametrize(
    ("mode", "has_pairs", "design"),
    [
        (Mode.SPLIT, True, Design.INDEPENDENT),
        (Mode.CANARY, True, Design.INDEPENDENT),
        (Mode.SHADOW, True, Design.PAIRED),
        (Mode.SHADOW, False, Design.INDEPENDENT),
        (None, True, Design.INDEPENDENT),
    ],
)
def test_design_of_mode(mode: Mode | None, has_pairs: bool, design: Design) -> None:
    assert design_of(mode, has_pairs=has_pairs) is design


def test_design_serialises_as_its_value() -> None:
    rows = synthetic_exposures(200, mode=Mode.SHADOW, seed=6)
    s = summarize_experiment(rows, {"v1": 1.0}, CFG)
    assert s.design is Design.PAIRED and s.comparison.design is Design.PAIRED
    assert s.to_dict()["design"] == "paired"


@pytest.mark.parametrize(
    ("design", "seed"), [(Design.INDEPENDENT, 31), (Design.PAIRED, 32)]
)
def test_aa_false_positive_rate_stays_at_most_alpha(design: Design, seed: int) -> None:
    """Continuous monitoring of A/A runs through the shared path: ≤ 5 % winners."""
    result = run_monitoring(
        MonitoringConfig(
            runs=300, horizon=3_000, check_every=10, design=design, seed=seed
        )
    )
    assert result.true_brier_difference == 0.0
    assert result.anytime.rate <= CFG.alpha
    # The same looks with a fixed-horizon test do inflate the rate, so the
    # simulation could have seen an inflated anytime rate too.
    assert result.naive_peeking.rate > 2 * CFG.alpha


def test_unknown_design_is_refused() -> None:
    with pytest.raises(ValueError, match="design"):
        run_monitoring(MonitoringConfig(design="sideways"))  # type: ignore[arg-type]
