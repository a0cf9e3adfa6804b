"""``summarize_sums`` (live view, from rollups) against ``summarize`` (exact, rows).

The oracle is the exact summary of the same rows. Everything that does not
involve the ROC AUC must agree to float summation order (rel 1e-9), the
verdict and every count exactly. The AUC ones may differ by binning:

- each variant's AUC by at most 0.001 (the bound of :mod:`.labelled_sums`);
- an AUC difference, then, by at most 2 × 0.001;
- its standard error by 2 % for independent samples (the binned DeLong
  variance is within 1–2 % of the raw one, test_statistics_labelled_sums)
  and by 5 % when paired (the covariance term comes from the 64 × 64 joint
  histogram; about 0.2 % is seen), so each interval end moves by at most
  2 × 0.001 + 1.96 × that share of the SE.

The sums are built the way the ledger builds them: one contribution per
label, in random batches, with some labels first recorded wrong and then
corrected by subtracting the old contribution.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from ab_router.records import Exposure, Mode
from ab_router.simulate import SyntheticWorld, synthetic_exposures
from ab_router.statistics import (
    NO_DATA,
    SINGLE_CLASS,
    ZERO_VARIANCE,
    DecisionConfig,
    EpochTraffic,
    ExperimentSummary,
    ExposureArrays,
    summarize,
)
from ab_router.statistics.experiment import summarize_sums
from ab_router.statistics.labelled_sums import SCORE_BINS, LabelledSums, PairedSums
from ab_router.statistics.sums_analysis import QualitySums

CFG = DecisionConfig()
SPLIT_W = {"v1": 0.5, "v2": 0.5}
SHADOW_W = {"v1": 1.0, "v2": 0.0}
AUC_TOL = 0.001


def _rows(mode: Mode, seed: int, n: int = 6_000, diff: float = -0.01) -> list[Exposure]:
    return synthetic_exposures(
        n,
        world=SyntheticWorld(brier_difference=diff),
        mode=mode,
        label_fraction=0.5,
        fallback_rate=0.02,
        seed=seed,
    )


def _one(p: float, y: float, pred: int) -> LabelledSums:
    return LabelledSums.from_arrays([p], [y], [pred])


def _ledger_sums(a: ExposureArrays, rng: np.random.Generator) -> QualitySums:
    """Per-label contributions as the ledger adds them, relabels included."""
    own = np.flatnonzero(~a.fallback & a.labelled)
    labelled: dict[str, LabelledSums] = {}
    for i in rng.permutation(own):
        v, p, y, pred = str(a.variant[i]), a.probability[i], a.label[i], a.prediction[i]
        rollup = labelled.get(v, LabelledSums.empty())
        if rng.random() < 0.1:  # first recorded wrong, corrected later
            rollup = rollup + _one(p, 1 - y, pred) - _one(p, 1 - y, pred)
        labelled[v] = rollup + _one(p, y, pred)
    pairs = np.flatnonzero(a.paired_rows("v1", "v2") & a.labelled)
    paired = None
    for batch in np.array_split(rng.permutation(pairs), 7) if pairs.size else []:
        x = a.take(batch)
        part = PairedSums.from_arrays(
            x.probability,
            x.shadow_probability,
            x.label,
            x.prediction,
            x.shadow_prediction,
        )
        wrong = PairedSums.from_arrays(
            x.probability,
            x.shadow_probability,
            1 - x.label,
            x.prediction,
            x.shadow_prediction,
        )
        paired = (part if paired is None else paired + part) + wrong - wrong
    return QualitySums(labelled, paired)


def _live(
    a: ExposureArrays, weights: dict[str, float], sums: QualitySums
) -> ExperimentSummary:
    return summarize_sums(
        EpochTraffic.from_arrays(a), sums.labelled, sums.paired, weights, CFG
    )


def _exact(a: ExposureArrays, weights: dict[str, float]) -> ExperimentSummary:
    return summarize(EpochTraffic.from_arrays(a), a.take(a.labelled), weights, CFG)


def _without_auc(d: dict[str, Any]) -> dict[str, Any]:
    d = json.loads(json.dumps(d))
    for q in d["quality"].values():
        del q["roc_auc"]
    del d["comparison"]["roc_auc"], d["auc_method"]
    return d


def _assert_same(x: Any, y: Any, where: str = "") -> None:
    """Equal, floats to rel 1e-9 (summation order), all else exactly."""
    if isinstance(x, dict):
        assert isinstance(y, dict) and x.keys() == y.keys(), where
        for k in x:
            _assert_same(x[k], y[k], f"{where}.{k}")
    elif isinstance(x, list):
        assert isinstance(y, list) and len(x) == len(y), where
        for i, (u, v) in enumerate(zip(x, y, strict=True)):
            _assert_same(u, v, f"{where}[{i}]")
    elif isinstance(x, float) and isinstance(y, float):
        assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12), (where, x, y)
    else:
        assert x == y, (where, x, y)


def _assert_same_decision(exact: ExperimentSummary, live: ExperimentSummary) -> None:
    """The verdict, winner, message and label counts exactly (only the unit
    variance may differ in the last bits; _assert_same checks it)."""
    e, g = exact.decision, live.decision
    assert (g.verdict, g.winner, g.message) == (e.verdict, e.winner, e.message)
    assert (g.labels_needed_total, g.more_labels_needed) == (
        e.labels_needed_total,
        e.more_labels_needed,
    )


def _se(r: Any) -> float:
    return (r.ci_high - r.ci_low) / (2 * 1.959963984540054)


def _assert_auc_close(
    exact: ExperimentSummary, live: ExperimentSummary, se_share: float
) -> None:
    for v, q in exact.quality.items():
        assert live.quality[v].roc_auc == pytest.approx(q.roc_auc, abs=AUC_TOL)
    e, g = exact.comparison.roc_auc, live.comparison.roc_auc
    assert (g.metric, g.method, g.error) == (e.metric, e.method, e.error)
    assert g.estimate == pytest.approx(e.estimate, abs=2 * AUC_TOL)
    assert _se(g) == pytest.approx(_se(e), rel=se_share)
    shift = 2 * AUC_TOL + 1.96 * se_share * _se(e)
    assert g.ci_low == pytest.approx(e.ci_low, abs=shift)
    assert g.ci_high == pytest.approx(e.ci_high, abs=shift)


@pytest.mark.parametrize(
    ("mode", "weights", "design", "se_share"),
    [
        (Mode.SPLIT, SPLIT_W, "independent", 0.02),
        (Mode.SHADOW, SHADOW_W, "paired", 0.05),
    ],
)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_live_summary_equals_the_exact_one(
    mode: Mode, weights: dict[str, float], design: str, se_share: float, seed: int
) -> None:
    a = ExposureArrays.from_exposures(_rows(mode, seed, diff=-0.01 * (seed - 2)))
    exact = _exact(a, weights)
    live = _live(a, weights, _ledger_sums(a, np.random.default_rng(seed)))
    assert exact.design == live.design == design
    assert (exact.auc_method, live.auc_method) == ("exact", f"binned_{SCORE_BINS}")
    assert live.to_dict()["auc_method"] == f"binned_{SCORE_BINS}"
    _assert_same(_without_auc(exact.to_dict()), _without_auc(live.to_dict()))
    _assert_same_decision(exact, live)
    _assert_auc_close(exact, live, se_share)


def test_the_verdicts_are_reached_alike() -> None:
    """A clear winner either way (not only keep_collecting) from both paths."""
    seen = set()
    for diff in (-0.03, 0.03):
        for mode, weights in ((Mode.SPLIT, SPLIT_W), (Mode.SHADOW, SHADOW_W)):
            a = ExposureArrays.from_exposures(_rows(mode, 7, n=8_000, diff=diff))
            exact = _exact(a, weights)
            live = _live(
                a, weights, QualitySums.from_arrays(a, champion="v1", challenger="v2")
            )
            _assert_same_decision(exact, live)
            seen.add(exact.decision.verdict.value)
    assert seen == {"challenger_better", "champion_better"}


def test_sums_from_rows_equal_the_ledger_accumulation() -> None:
    a = ExposureArrays.from_exposures(_rows(Mode.SHADOW, 4, n=2_000))
    rebuilt = QualitySums.from_arrays(a, champion="v1", challenger="v2")
    accumulated = _ledger_sums(a, np.random.default_rng(4))
    assert rebuilt.labelled.keys() == accumulated.labelled.keys()
    for v, s in rebuilt.labelled.items():
        assert s.scores == accumulated.labelled[v].scores
        assert s.columns() == pytest.approx(accumulated.labelled[v].columns(), rel=1e-9)
    assert rebuilt.paired is not None and accumulated.paired is not None
    assert rebuilt.paired.columns() == pytest.approx(
        accumulated.paired.columns(), rel=1e-9
    )


def _degenerate(case: str) -> tuple[list[Exposure], dict[str, float]]:
    mode = Mode.SHADOW if case.startswith("shadow") else Mode.SPLIT
    rows = _rows(mode, 5, n=600)
    weights = SHADOW_W if mode == Mode.SHADOW else SPLIT_W
    if case == "empty":
        rows = []
    elif case in ("unlabelled", "shadow_unlabelled"):
        rows = [replace(e, label=None, labelled_at=None) for e in rows]
    elif case == "one_class":
        rows = [replace(e, label=0) for e in rows]
    elif case == "one_variant":
        rows = [e for e in rows if e.variant == "v1"]
    elif case == "constant_scores":
        rows = [replace(e, churn_probability=0.3, prediction=0) for e in rows]
    elif case == "shadow_identical_models":
        rows = [
            replace(
                e,
                shadow_probability=e.churn_probability,
                shadow_prediction=e.prediction,
            )
            for e in rows
        ]
    return rows, weights


@pytest.mark.parametrize(
    ("case", "auc_error"),
    [
        ("empty", NO_DATA),
        ("unlabelled", NO_DATA),
        ("shadow_unlabelled", NO_DATA),
        ("one_class", SINGLE_CLASS),
        ("one_variant", NO_DATA),
        ("constant_scores", ZERO_VARIANCE),
        ("shadow_identical_models", ZERO_VARIANCE),
    ],
)
def test_degenerate_data_gives_the_same_error_codes(case: str, auc_error: str) -> None:
    rows, weights = _degenerate(case)
    a = ExposureArrays.from_exposures(rows)
    exact = _exact(a, weights)
    live = _live(a, weights, _ledger_sums(a, np.random.default_rng(5)))
    _assert_same(_without_auc(exact.to_dict()), _without_auc(live.to_dict()))
    assert live.comparison.roc_auc.error == exact.comparison.roc_auc.error == auc_error
    for v, q in exact.quality.items():
        assert live.quality[v].error == q.error
        assert math.isnan(q.roc_auc) == math.isnan(live.quality[v].roc_auc)
    json.dumps(live.to_dict(), allow_nan=False)
    assert live.decision.winner is None


def test_missing_variants_and_pairs_read_as_no_labels() -> None:
    a = ExposureArrays.from_exposures(_rows(Mode.SHADOW, 6, n=300))
    live = summarize_sums(EpochTraffic.from_arrays(a), {}, None, SHADOW_W, CFG)
    assert live.quality["v1"].error == live.quality["v2"].error == NO_DATA
    assert live.comparison.brier.error == NO_DATA
    assert live.labelled == {"v1": 0, "v2": 0}
    assert live.auc_method == f"binned_{SCORE_BINS}"
