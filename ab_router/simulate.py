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
from ab_router.statistics.sequential import bounds, mixture_rho

if TYPE_CHECKING:
    from numpy.typing import NDArray

SPLIT = "split"
SHADOW = "shadow"


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
    names = list(weights)
    share = np.array([weights[v] for v in names], dtype=float)
    if mode == Mode.SHADOW:
        chosen = np.array([champion] * n)
    else:
        chosen = np.asarray(names)[
            rng.choice(len(names), size=n, p=share / share.sum())
        ]
    created = start + np.cumsum(rng.exponential(1.0 / rate_per_second, n))
    labelled = rng.random(n) < label_fraction
    label_delay = rng.exponential(3600.0, n)
    fallback = rng.random(n) < fallback_rate
    latency = {
        champion: rng.lognormal(math.log(8.0), 0.35, n),
        challenger: rng.lognormal(math.log(11.0), 0.45, n),
    }
    out: list[Exposure] = []
    for i in range(n):
        assigned = str(chosen[i])
        answered = champion if fallback[i] and assigned != champion else assigned
        if fallback[i] and assigned == champion:
            answered = challenger
        prob = float(p2[i]) if answered == challenger else float(p1[i])
        shadow = mode == Mode.SHADOW
        out.append(
            Exposure(
                request_id=f"req-{seed}-{i}",
                experiment=experiment,
                epoch=epoch,
                assigned_variant=assigned,
                variant=answered,
                unit_kind=UnitKind.CUSTOMER,
                unit_id=f"cust-{i}",
                mode=mode,
                churn_probability=prob,
                prediction=int(prob >= world.threshold),
                latency_ms=float(latency.get(answered, latency[champion])[i]),
                created_at=float(created[i]),
                fallback=bool(fallback[i]),
                shadow_variant=challenger if shadow else None,
                shadow_probability=float(p2[i]) if shadow else None,
                shadow_prediction=int(p2[i] >= world.threshold) if shadow else None,
                label=int(y[i]) if labelled[i] else None,
                labelled_at=float(created[i] + label_delay[i]) if labelled[i] else None,
            )
        )
    return out


@dataclass(frozen=True)
class MonitoringConfig:
    """One batch of simulated experiments under continuous monitoring."""

    runs: int = 400
    horizon: int = 5_000
    """Labels per experiment if no winner is declared earlier."""
    check_every: int = 10
    """Look at the decision after every this many new labels."""
    design: str = SPLIT
    """``split`` (independent samples) or ``shadow`` (paired rows)."""
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


def _chunk_statistics(
    cfg: MonitoringConfig,
    rng: np.random.Generator,
    runs: int,
    checks: NDArray[np.int64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Estimate, standard error and warm-up flag at every checkpoint."""
    y, p1, p2 = cfg.world.draw(rng, (runs, cfg.horizon))
    l1, l2 = (p1 - y) ** 2, (p2 - y) ** 2
    idx = checks - 1
    min_labels = cfg.decision.min_labels
    if cfg.design == SHADOW:
        d = l2 - l1
        n = checks.astype(float)
        s = np.cumsum(d, axis=1)[:, idx]
        q = np.cumsum(d * d, axis=1)[:, idx]
        var = np.maximum(q - s * s / n, 0.0) / (n - 1)
        return s / n, np.sqrt(var / n), np.broadcast_to(checks >= min_labels, s.shape)
    arm = rng.random((runs, cfg.horizon)) < cfg.challenger_share
    loss = np.where(arm, l2, l1)
    n2 = np.cumsum(arm, axis=1)[:, idx].astype(float)
    n1 = checks - n2
    s2 = np.cumsum(np.where(arm, loss, 0.0), axis=1)[:, idx]
    q2 = np.cumsum(np.where(arm, loss * loss, 0.0), axis=1)[:, idx]
    s1 = np.cumsum(loss, axis=1)[:, idx] - s2
    q1 = np.cumsum(loss * loss, axis=1)[:, idx] - q2
    ready = (n1 >= min_labels) & (n2 >= min_labels)
    with np.errstate(divide="ignore", invalid="ignore"):
        v1 = np.maximum(q1 - s1 * s1 / n1, 0.0) / (n1 - 1)
        v2 = np.maximum(q2 - s2 * s2 / n2, 0.0) / (n2 - 1)
        est = s2 / n2 - s1 / n1
        se = np.sqrt(v1 / n1 + v2 / n2)
    return est, se, ready


def run_monitoring(cfg: MonitoringConfig) -> MonitoringResult:
    """Simulate ``cfg.runs`` experiments, each monitored after every few labels."""
    if cfg.design not in (SPLIT, SHADOW):
        raise ValueError(f"design must be {SPLIT!r} or {SHADOW!r}, got {cfg.design!r}")
    if cfg.check_every < 1 or cfg.horizon < cfg.check_every:
        raise ValueError("need 1 <= check_every <= horizon")
    dc = cfg.decision
    rho = mixture_rho(dc.planned_labels, dc.alpha)
    z = float(stats.norm.ppf(1 - dc.alpha / 2))
    checks = np.arange(cfg.check_every, cfg.horizon + 1, cfg.check_every)
    rng = np.random.default_rng(cfg.seed)
    wins_any: list[NDArray[np.bool_]] = []
    wins_naive: list[NDArray[np.bool_]] = []
    signs: list[NDArray[np.float64]] = []
    done = 0
    while done < cfg.runs:
        runs = min(cfg.chunk, cfg.runs - done)
        est, se, ready = _chunk_statistics(cfg, rng, runs, checks)
        lo, hi = bounds(est, se, checks, rho, dc.alpha)
        with np.errstate(invalid="ignore"):
            ok = ready & (se > 0)
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
