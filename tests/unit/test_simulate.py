"""The simulator's synthetic world and the anytime-valid rule under peeking."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ab_router.records import Mode
from ab_router.simulate import (
    SHADOW,
    SPLIT,
    MonitoringConfig,
    SyntheticWorld,
    run_monitoring,
    synthetic_exposures,
)
from ab_router.statistics import DecisionConfig, anytime_labels


def _binomial_upper(p: float, n: int) -> float:
    """One-sided 99 % normal upper bound for an observed rate of a true ``p``."""
    return p + 2.33 * math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("delta", [0.0, -0.015, 0.01])
def test_synthetic_world_has_the_chosen_brier_difference(delta: float) -> None:
    world = SyntheticWorld(brier_difference=delta)
    y, p1, p2 = world.draw(np.random.default_rng(0), 400_000)
    b1, b2 = world.expected_brier()
    assert b2 - b1 == pytest.approx(delta, abs=1e-12)
    d = (p2 - y) ** 2 - (p1 - y) ** 2
    se = d.std(ddof=1) / math.sqrt(d.size)
    assert abs(d.mean() - delta) < 4 * se
    assert abs(((p1 - y) ** 2).mean() - b1) < 4 * (p1 - y).var() ** 0.5 / 600
    assert min(p1.min(), p2.min()) >= 0.0 and max(p1.max(), p2.max()) <= 1.0


def test_unreachable_difference_is_refused() -> None:
    with pytest.raises(ValueError, match="not reachable"):
        SyntheticWorld(brier_difference=-0.5)


@pytest.mark.parametrize("design", [SPLIT, SHADOW])
def test_aa_false_positive_rate_under_continuous_monitoring(design: str) -> None:
    """Looking after every 10 labels, the anytime rule keeps its 5 % promise.

    The naive fixed-horizon test, peeked at on the same data, does not: this
    shows the simulation is able to detect an inflated error rate.
    """
    runs = 400
    result = run_monitoring(
        MonitoringConfig(
            runs=runs,
            horizon=4_000,
            check_every=10,
            design=design,
            seed=11 if design == SPLIT else 12,
        )
    )
    assert result.true_brier_difference == 0.0
    assert result.anytime.runs == runs
    assert result.anytime.rate <= _binomial_upper(0.05, runs)
    assert result.naive_peeking.rate > _binomial_upper(0.05, runs)
    # One look at the horizon is a valid fixed-horizon test.
    assert result.naive_single_look.rate <= _binomial_upper(0.05, runs)


def test_power_reaches_the_planned_level_at_the_calculated_sample_size() -> None:
    """At the size the power calculation asks for, ≥ 80 % of A/B runs find v2."""
    delta, cfg = -0.01, DecisionConfig(mde=0.01)
    world = SyntheticWorld(brier_difference=delta)
    y, p1, p2 = world.draw(np.random.default_rng(1), 200_000)
    d = (p2 - y) ** 2 - (p1 - y) ** 2
    horizon = anytime_labels(
        float(d.var()),
        cfg.mde,
        alpha=cfg.alpha,
        power=cfg.power,
        planned_labels=cfg.planned_labels,
    )
    assert horizon is not None
    runs = 200
    result = run_monitoring(
        MonitoringConfig(
            runs=runs,
            horizon=horizon,
            check_every=25,
            design=SHADOW,
            world=world,
            decision=cfg,
            seed=13,
        )
    )
    lower = cfg.power - 2.33 * math.sqrt(cfg.power * (1 - cfg.power) / runs)
    assert result.anytime.rate >= lower
    assert result.anytime.champion_wins == 0
    assert result.anytime.mean_labels_to_decision < horizon


def test_synthetic_exposures_shapes() -> None:
    rows = synthetic_exposures(
        2_000,
        weights={"v1": 0.8, "v2": 0.2},
        label_fraction=0.5,
        fallback_rate=0.05,
        seed=2,
    )
    share = np.mean([e.assigned_variant == "v2" for e in rows])
    assert abs(share - 0.2) < 4 * math.sqrt(0.2 * 0.8 / 2_000)
    assert all(e.variant != e.assigned_variant for e in rows if e.fallback)
    assert all(e.variant == e.assigned_variant for e in rows if not e.fallback)
    labelled = [e for e in rows if e.label is not None]
    assert all(
        e.labelled_at is not None and e.labelled_at > e.created_at for e in labelled
    )
    shadow = synthetic_exposures(50, mode=Mode.SHADOW, seed=3)
    assert all(e.variant == "v1" and e.shadow_probability is not None for e in shadow)
