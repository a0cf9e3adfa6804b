"""Turn the evidence into one of four verdicts, in this order:

1. **SRM alarm** (``srm_alarm``): the traffic split does not match the
   configured weights (p < ``srm_threshold``). Assignment or logging is
   broken, so every comparison is suspect and no conclusion is drawn.
2. **keep collecting** while either variant has fewer than ``min_labels``
   labels (the confidence sequence is asymptotic; below that it is not
   trusted) or the loss variance is undefined.
3. **challenger better / champion better** when the anytime-valid confidence
   sequence of Δ = Brier(challenger) − Brier(champion) excludes 0
   (upper < 0: challenger better; lower > 0: champion better).
4. **no meaningful difference** when the whole sequence lies inside
   ``(−mde, +mde)``: whichever variant is better, it is by less than the
   minimum detectable effect the team cares about.
5. otherwise **keep collecting**, with the number of further labels from
   :func:`ab_router.statistics.power.anytime_labels` at the observed variance:
   first the power calculation for detecting a difference of ``mde`` with
   probability ``power``; once that many labels are in (the true difference
   is then probably smaller than ``mde``), the labels for the sequence to fit
   inside ``±mde`` when the true difference is 0 (``|Δ̂| + c_t se_t < mde``
   with probability ``power``, i.e. ``mde / se_t ≥ c_t + z_{(1+power)/2}``);
   beyond that, a projection at the current estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ab_router.statistics.power import anytime_labels, fixed_horizon_labels
from ab_router.statistics.sequential import SequentialResult
from ab_router.statistics.srm import DEFAULT_SRM_THRESHOLD, SrmResult


@dataclass(frozen=True)
class DecisionConfig:
    """How sure, how big and how much: the knobs of the A/B decision."""

    alpha: float = 0.05
    """Error rate of the confidence sequence and of the fixed-horizon tests."""
    mde: float = 0.01
    """Minimum detectable effect on the Brier difference (Brier is in [0, 1];
    churn models score about 0.13–0.16, so 0.01 is a ~7 % relative change)."""
    power: float = 0.8
    """Power targeted when estimating how many more labels are needed."""
    srm_threshold: float = DEFAULT_SRM_THRESHOLD
    """SRM alarm when the χ² p-value is below this."""
    min_labels: int = 100
    """Labels each variant needs before any verdict (CLT warm-up)."""
    planned_labels: int = 10_000
    """Total labels around which the confidence sequence is tightest (sets ρ).
    Fix it before the experiment; changing it after looking breaks validity."""
    log_loss_eps: float = 1e-15
    """Probabilities are clipped to [eps, 1 - eps] for the log loss."""

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if not 0 < self.power < 1:
            raise ValueError(f"power must be in (0, 1), got {self.power}")
        if not self.mde > 0:
            raise ValueError(f"mde must be > 0, got {self.mde}")
        if not 0 < self.srm_threshold < 1:
            raise ValueError(
                f"srm_threshold must be in (0, 1), got {self.srm_threshold}"
            )
        if self.min_labels < 2:
            raise ValueError(f"min_labels must be >= 2, got {self.min_labels}")
        if self.planned_labels < 1:
            raise ValueError(f"planned_labels must be >= 1, got {self.planned_labels}")
        if not 0 < self.log_loss_eps < 0.5:
            raise ValueError(
                f"log_loss_eps must be in (0, 0.5), got {self.log_loss_eps}"
            )


class Verdict(StrEnum):
    CHALLENGER_BETTER = "challenger_better"
    CHAMPION_BETTER = "champion_better"
    NO_MEANINGFUL_DIFFERENCE = "no_meaningful_difference"
    KEEP_COLLECTING = "keep_collecting"
    SRM_ALARM = "srm_alarm"


@dataclass(frozen=True)
class Decision:
    """The verdict, a one-line human message, and what it rests on."""

    verdict: Verdict
    message: str
    winner: str | None
    labels_needed_total: int | None
    """Total labels the anytime-valid rule needs at the observed variance."""
    more_labels_needed: int | None
    """``labels_needed_total`` minus the labels already in, when collecting."""
    fixed_horizon_labels_total: int | None
    """Same power calculation for a single fixed-horizon look, for reference."""
    unit_variance: float


def _fmt(x: float) -> str:
    return f"{x:+.4f}"


def decide(
    sequential: SequentialResult,
    srm: SrmResult,
    labelled: dict[str, int],
    unit_variance: float,
    config: DecisionConfig,
    *,
    champion: str,
    challenger: str,
) -> Decision:
    """Verdict from the confidence sequence of Δ = Brier(challenger) − Brier(champion).

    ``labelled`` gives labels per variant; ``unit_variance`` is ``t · se²``
    (see :mod:`ab_router.statistics.power`).
    """
    needed = anytime_labels(
        unit_variance,
        config.mde,
        alpha=config.alpha,
        power=config.power,
        planned_labels=config.planned_labels,
    )
    fixed = fixed_horizon_labels(
        unit_variance, config.mde, alpha=config.alpha, power=config.power
    )
    more = _more_labels(sequential, unit_variance, needed, config)
    verdict, message, winner = _blocked(
        sequential, srm, labelled, config, champion, challenger
    ) or _read(sequential, more, config, champion, challenger)
    return Decision(verdict, message, winner, needed, more, fixed, unit_variance)


_Verdict = tuple[Verdict, str, str | None]


def _blocked(
    sequential: SequentialResult,
    srm: SrmResult,
    labelled: dict[str, int],
    config: DecisionConfig,
    champion: str,
    challenger: str,
) -> _Verdict | None:
    """The verdict when the interval must not be read yet, else None."""
    if srm.alarm:
        why = (
            f"traffic to variants with weight 0: {', '.join(srm.unexpected_variants)}"
            if srm.unexpected_variants
            else f"χ² p = {srm.p_value:.2g} < {srm.threshold:g}"
        )
        return (
            Verdict.SRM_ALARM,
            f"sample ratio mismatch ({why}); assignment or logging is broken, so no "
            "winner is declared until it is fixed",
            None,
        )
    short = [
        v for v in (champion, challenger) if labelled.get(v, 0) < config.min_labels
    ]
    if short:
        counts = ", ".join(f"{v}: {labelled.get(v, 0)}" for v in short)
        return (
            Verdict.KEEP_COLLECTING,
            f"keep collecting — at least {config.min_labels} labels per variant are "
            f"needed before a verdict (have {counts})",
            None,
        )
    if sequential.error is not None:
        return (
            Verdict.KEEP_COLLECTING,
            f"keep collecting — the Brier difference cannot be assessed yet "
            f"({sequential.error})",
            None,
        )
    return None


def _read(
    sequential: SequentialResult,
    more: int | None,
    config: DecisionConfig,
    champion: str,
    challenger: str,
) -> _Verdict:
    """The verdict the anytime-valid interval gives."""
    interval = (
        f"Brier difference {challenger} − {champion} = {_fmt(sequential.estimate)}, "
        f"{1 - config.alpha:.0%} anytime-valid interval "
        f"[{_fmt(sequential.lower)}, {_fmt(sequential.upper)}]"
    )
    if sequential.upper < 0:
        return Verdict.CHALLENGER_BETTER, f"{challenger} better: {interval}", challenger
    if sequential.lower > 0:
        return Verdict.CHAMPION_BETTER, f"{champion} better: {interval}", champion
    if -config.mde < sequential.lower and sequential.upper < config.mde:
        return (
            Verdict.NO_MEANINGFUL_DIFFERENCE,
            f"no meaningful difference: {interval} lies within ±{config.mde:g}",
            None,
        )
    if more is None:
        tail = "the effect is not reachable at the observed variance"
    else:
        tail = f"about {more} more labels needed"
    return Verdict.KEEP_COLLECTING, f"keep collecting — {tail}; {interval}", None


def _more_labels(
    sequential: SequentialResult,
    unit_variance: float,
    needed: int | None,
    config: DecisionConfig,
) -> int | None:
    """Further labels until the sequence is expected to resolve (see module)."""
    t = sequential.t
    alpha, planned = config.alpha, config.planned_labels
    equivalence = anytime_labels(
        unit_variance,
        config.mde,
        alpha=alpha,
        power=(1 + config.power) / 2,
        planned_labels=planned,
    )
    est = abs(sequential.estimate)
    margin = max(est, config.mde - est) if est == est else config.mde
    projected = anytime_labels(
        unit_variance, margin, alpha=alpha, power=0.5, planned_labels=planned
    )
    for total in (needed, equivalence, projected):
        if total is None:
            return None
        if total > t:
            return total - t
    # The projection says the sequence should already have resolved; it is
    # a noisy estimate sitting right at a boundary, so one more batch decides.
    return 1
