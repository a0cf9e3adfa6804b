"""Synthetic churn outcomes and continuous-monitoring simulations.

The synthetic world: each customer has a true churn probability
``p ~ Beta(a, b)`` and churns with that probability, ``y ~ Bernoulli(p)``.
Model ``v`` reports ``p_v = (1 − λ_v) p + λ_v u_v`` with ``u_v ~ U(0, 1)``
independent noise, which stays inside [0, 1] without clipping. Its expected
Brier score is exactly

    E[(p_v − y)²] = λ_v² K + E[p(1 − p)],   K = 1/12 + Var p + (1/2 − E p)²,

(the cross term vanishes because ``E[y − p | p, u] = 0``), so a chosen true
Brier difference ``δ = Brier(v2) − Brier(v1)`` is obtained with
``λ₂ = sqrt(λ₁² + δ / K)``; ``δ = 0`` gives an A/A test.

:func:`run_monitoring` replays many experiments: after every ``check_every``
labels it applies the anytime-valid rule of
:mod:`ab_router.statistics.sequential` (winner as soon as the confidence
sequence excludes 0, once each variant has ``min_labels`` labels) and, for
contrast, the naive rule that peeks at a fixed-horizon z-test just as often.
The fraction of runs that declare a winner is the false-positive rate in an
A/A world and the power in an A/B world.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

from ab_router.records import Exposure, Mode, UnitKind
from ab_router.statistics.decision import DecisionConfig
from ab_router.statistics.design import Design
from ab_router.statistics.running import (
    RunningDifference,
    running_independent,
    running_paired,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

# The designs split and shadow traffic give, under the names the simulation
# has always used; the simulation itself only speaks of the Design.
SPLIT = Design.INDEPENDENT
SHADOW = Design.PAIRED


@dataclass(frozen=True)
class SyntheticWorld:
    """Ground truth for simulated outcomes; see the module docstring."""

    brier_difference: float = 0.0
    """True Brier(v2) − Brier(v1); negative means v2 is better."""
    churn_a: float = 1.0
    churn_b: float = 2.8
    """Beta(a, b) of the true churn probability (mean a / (a + b) ≈ 26 %)."""
    champion_noise: float = 0.5
    """λ₁, the champion's share of pure noise."""
    threshold: float = 0.5
    """Decision threshold turning probabilities into 0/1 predictions."""

    def __post_init__(self) -> None:
        self.noise_levels  # noqa: B018 -- validates that the world is reachable

    @property
    def noise_constant(self) -> float:
        a, b = self.churn_a, self.churn_b
        mean = a / (a + b)
        var = a * b / ((a + b) ** 2 * (a + b + 1))
        return 1.0 / 12.0 + var + (0.5 - mean) ** 2

    @property
    def noise_levels(self) -> tuple[float, float]:
        """(λ₁, λ₂) realising ``brier_difference``."""
        lam2_sq = self.champion_noise**2 + self.brier_difference / self.noise_constant
        if not 0.0 <= lam2_sq <= 1.0:
            raise ValueError(
                f"brier_difference {self.brier_difference} is not reachable with "
                f"champion_noise {self.champion_noise}"
            )
        return self.champion_noise, math.sqrt(lam2_sq)

    def expected_brier(self) -> tuple[float, float]:
        """Exact expected Brier scores of (v1, v2)."""
        a, b = self.churn_a, self.churn_b
        mean = a / (a + b)
        var = a * b / ((a + b) ** 2 * (a + b + 1))
        irreducible = mean - (var + mean * mean)
        k = self.noise_constant
        l1, l2 = self.noise_levels
        return l1 * l1 * k + irreducible, l2 * l2 * k + irreducible

    def draw(
        self, rng: np.random.Generator, size: int | tuple[int, ...]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Labels and both models' probabilities for the same customers."""
        l1, l2 = self.noise_levels
        p = rng.beta(self.churn_a, self.churn_b, size)
        y = (rng.random(size) < p).astype(float)
        p1 = (1 - l1) * p + l1 * rng.random(size)
        p2 = (1 - l2) * p + l2 * rng.random(size)
        return y, p1, p2


def synthetic_exposures(
    n: int,
    *,
    world: SyntheticWorld | None = None,
    weights: Mapping[str, float] | None = None,
    mode: Mode = Mode.SPLIT,
    label_fraction: float = 1.0,
    fallback_rate: float = 0.0,
    seed: int = 0,
    experiment: str = "churn",
    epoch: int = 1,
    start: float = 1_700_000_000.0,
    rate_per_second: float = 5.0,
    champion: str = "v1",
    challenger: str = "v2",
) -> list[Exposure]:
    """Ledger-like exposures from a synthetic world (for tests, demos, reports).

    Split/canary: each request goes to a variant drawn with ``weights``.
    Shadow: the champion answers and the challenger's score is attached.
    """
    world = world or SyntheticWorld()
    weights = dict(weights or {champion: 0.5, challenger: 0.5})
    rng = np.random.default_rng(seed)
    y, p1, p2 = world.draw(rng, n)
    chosen = _assign(rng, n, weights, champion if mode == Mode.SHADOW else None)
    created = start + np.cumsum(rng.exponential(1.0 / rate_per_second, n))
    labelled = rng.random(n) < label_fraction
    label_delay = rng.exponential(3600.0, n)
    fallback = rng.random(n) < fallback_rate
    latency = {
        champion: rng.lognormal(math.log(8.0), 0.35, n),
        challenger: rng.lognormal(math.log(11.0), 0.45, n),
    }
    row = _SyntheticRow(
        world, mode, seed, experiment, epoch, champion, challenger, latency
    )
    return [
        row.exposure(
            i,
            assigned=str(chosen[i]),
            fallback=bool(fallback[i]),
            scores=(float(p1[i]), float(p2[i])),
            created_at=float(created[i]),
            label=(int(y[i]), float(created[i] + label_delay[i]))
            if labelled[i]
            else None,
        )
        for i in range(n)
    ]


def _assign(
    rng: np.random.Generator, n: int, weights: Mapping[str, float], only: str | None
) -> NDArray[np.str_]:
    """Assigned variants: drawn by weight, or all ``only`` (shadow: no draw)."""
    if only is not None:
        return np.array([only] * n)
    names = list(weights)
    share = np.array([weights[v] for v in names], dtype=float)
    return np.asarray(names)[rng.choice(len(names), size=n, p=share / share.sum())]


@dataclass(frozen=True)
class _SyntheticRow:
    """What every synthetic exposure of one call shares."""

    world: SyntheticWorld
    mode: Mode
    seed: int
    experiment: str
    epoch: int
    champion: str
    challenger: str
    latency: dict[str, NDArray[np.float64]]

    def exposure(
        self,
        i: int,
        *,
        assigned: str,
        fallback: bool,
        scores: tuple[float, float],
        created_at: float,
        label: tuple[int, float] | None,
    ) -> Exposure:
        """Exposure ``i``; a fallback is answered by the other variant."""
        champion, challenger = self.champion, self.challenger
        answered = champion if fallback and assigned != champion else assigned
        if fallback and assigned == champion:
            answered = challenger
        prob = scores[1] if answered == challenger else scores[0]
        shadow = self.mode == Mode.SHADOW
        threshold = self.world.threshold
        return Exposure(
            request_id=f"req-{self.seed}-{i}",
            experiment=self.experiment,
            epoch=self.epoch,
            assigned_variant=assigned,
            variant=answered,
            unit_kind=UnitKind.CUSTOMER,
            unit_id=f"cust-{i}",
            mode=self.mode,
            churn_probability=prob,
            prediction=int(prob >= threshold),
            latency_ms=float(self.latency.get(answered, self.latency[champion])[i]),
            created_at=created_at,
            fallback=fallback,
            shadow_variant=challenger if shadow else None,
            shadow_probability=scores[1] if shadow else None,
            shadow_prediction=int(scores[1] >= threshold) if shadow else None,
            label=label[0] if label else None,
            labelled_at=label[1] if label else None,
        )


@dataclass(frozen=True)
class MonitoringConfig:
    """One batch of simulated experiments under continuous monitoring."""

    runs: int = 400
    horizon: int = 5_000
    """Labels per experiment if no winner is declared earlier."""
    check_every: int = 10
    """Look at the decision after every this many new labels."""
    design: Design = Design.INDEPENDENT
    """Independent samples (split traffic) or paired rows (shadow traffic)."""
    challenger_share: float = 0.5
    world: SyntheticWorld = field(default_factory=SyntheticWorld)
    decision: DecisionConfig = field(default_factory=DecisionConfig)
    seed: int = 2024
    chunk: int = 100
    """Runs simulated together (bounds memory at chunk × horizon floats)."""


@dataclass(frozen=True)
class RuleOutcome:
    """How often one stopping rule declared a winner, and when."""

    rule: str
    runs: int
    winners: int
    challenger_wins: int
    champion_wins: int
    rate: float
    rate_ci_low: float
    rate_ci_high: float
    """Clopper–Pearson 95 % interval of ``rate``."""
    mean_labels_to_decision: float
    """Mean labels at the first winner verdict, over runs that reached one."""


@dataclass(frozen=True)
class MonitoringResult:
    config: MonitoringConfig
    true_brier_difference: float
    anytime: RuleOutcome
    naive_peeking: RuleOutcome
    naive_single_look: RuleOutcome
    """The fixed-horizon test looked at once, at the horizon (valid)."""


def _outcome(
    rule: str, win: NDArray[np.bool_], sign: NDArray[np.float64], t: NDArray[np.int64]
) -> RuleOutcome:
    decided = win.any(axis=1)
    first = win.argmax(axis=1)
    rows = np.flatnonzero(decided)
    first_sign = sign[rows, first[rows]]
    winners = int(decided.sum())
    runs = int(win.shape[0])
    ci = stats.binomtest(winners, runs).proportion_ci(0.95, method="exact")
    return RuleOutcome(
        rule=rule,
        runs=runs,
        winners=winners,
        challenger_wins=int(np.sum(first_sign < 0)),
        champion_wins=int(np.sum(first_sign > 0)),
        rate=winners / runs,
        rate_ci_low=float(ci.low),
        rate_ci_high=float(ci.high),
        mean_labels_to_decision=float(t[first[rows]].mean()) if winners else math.nan,
    )


def _paired_chunk(
    cfg: MonitoringConfig,
    rng: np.random.Generator,
    losses: tuple[NDArray[np.float64], NDArray[np.float64]],
    at: NDArray[np.intp],
) -> RunningDifference:
    """Shadow traffic: both models score every customer."""
    l1, l2 = losses
    return running_paired(l2 - l1, at)


def _independent_chunk(
    cfg: MonitoringConfig,
    rng: np.random.Generator,
    losses: tuple[NDArray[np.float64], NDArray[np.float64]],
    at: NDArray[np.intp],
) -> RunningDifference:
    """Split traffic: each customer is answered by one model, drawn by weight."""
    l1, l2 = losses
    arm = rng.random(l1.shape) < cfg.challenger_share
    return running_independent(np.where(arm, l2, l1), arm, at)


_CHUNKS = {Design.PAIRED: _paired_chunk, Design.INDEPENDENT: _independent_chunk}


def _chunk_difference(
    cfg: MonitoringConfig, rng: np.random.Generator, runs: int, at: NDArray[np.intp]
) -> RunningDifference:
    """Brier difference of ``runs`` simulated experiments at every checkpoint."""
    y, p1, p2 = cfg.world.draw(rng, (runs, cfg.horizon))
    return _CHUNKS[cfg.design](cfg, rng, ((p1 - y) ** 2, (p2 - y) ** 2), at)


def run_monitoring(cfg: MonitoringConfig) -> MonitoringResult:
    """Simulate ``cfg.runs`` experiments, each monitored after every few labels."""
    if cfg.design not in _CHUNKS:
        raise ValueError(f"design must be one of {list(Design)}, got {cfg.design!r}")
    if cfg.check_every < 1 or cfg.horizon < cfg.check_every:
        raise ValueError("need 1 <= check_every <= horizon")
    dc = cfg.decision
    z = float(stats.norm.ppf(1 - dc.alpha / 2))
    checks = np.arange(cfg.check_every, cfg.horizon + 1, cfg.check_every)
    rng = np.random.default_rng(cfg.seed)
    wins_any: list[NDArray[np.bool_]] = []
    wins_naive: list[NDArray[np.bool_]] = []
    signs: list[NDArray[np.float64]] = []
    done = 0
    while done < cfg.runs:
        runs = min(cfg.chunk, cfg.runs - done)
        diff = _chunk_difference(cfg, rng, runs, checks - 1)
        est, se = diff.estimate, diff.se
        lo, hi = diff.sequence(dc.alpha, dc.planned_labels)
        with np.errstate(invalid="ignore"):
            ok = diff.ready(dc.min_labels) & (se > 0)
            wins_any.append(ok & ((lo > 0) | (hi < 0)))
            wins_naive.append(ok & (np.abs(est) > z * se))
        signs.append(np.sign(est))
        done += runs
    win_a, win_n = np.vstack(wins_any), np.vstack(wins_naive)
    sign: NDArray[np.float64] = np.vstack(signs)
    v1, v2 = cfg.world.expected_brier()
    return MonitoringResult(
        config=cfg,
        true_brier_difference=v2 - v1,
        anytime=_outcome("anytime_valid_confidence_sequence", win_a, sign, checks),
        naive_peeking=_outcome("fixed_horizon_z_peeking", win_n, sign, checks),
        naive_single_look=_outcome(
            "fixed_horizon_z_single_look", win_n[:, -1:], sign[:, -1:], checks[-1:]
        ),
    )
