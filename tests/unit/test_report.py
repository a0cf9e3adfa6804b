"""render_report writes a Markdown report whose numbers match the summary."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ab_router.records import EpochModel, Exposure, Mode
from ab_router.report import (
    REPORT_NAME,
    SUMMARY_NAME,
    cumulative_brier_difference,
    fmt,
    render_report,
)
from ab_router.simulate import SyntheticWorld, synthetic_exposures
from ab_router.statistics import DecisionConfig, ExposureArrays, summarize_experiment

CFG = DecisionConfig()
PNGS = ("brier_difference.png", "latency.png", "traffic_share.png")


def _assert_images(out: Path) -> None:
    for name in PNGS:
        path = out / name
        assert path.stat().st_size > 5_000, name
        with Image.open(path) as img:
            assert img.format == "PNG" and img.size[0] >= 400 and img.size[1] >= 300
            img.verify()


@pytest.mark.parametrize("mode", [Mode.SPLIT, Mode.SHADOW])
def test_report_files_and_numbers(tmp_path: Path, mode: Mode) -> None:
    weights = {"v1": 0.5, "v2": 0.5} if mode == Mode.SPLIT else {"v1": 1.0}
    rows = synthetic_exposures(
        6_000,
        world=SyntheticWorld(brier_difference=-0.01),
        mode=mode,
        label_fraction=0.7,
        fallback_rate=0.01,
        seed=21,
    )
    path = render_report(rows, weights, CFG, tmp_path / "out", title="Churn A/B")
    assert path == tmp_path / "out" / REPORT_NAME
    _assert_images(path.parent)
    text = path.read_text(encoding="utf-8")
    s = summarize_experiment(rows, weights, CFG)
    assert text.startswith("# Churn A/B")
    assert f"**Verdict: {s.decision.verdict.value}**" in text
    assert s.decision.message in text
    seq = s.sequential
    assert f"**{fmt(seq.estimate)}**" in text
    assert f"**[{fmt(seq.lower)}, {fmt(seq.upper)}]**" in text
    for v in ("v1", "v2"):
        q = s.quality[v]
        assert f"| {v} | {q.labelled} | {fmt(q.accuracy)} |" in text
        assert fmt(q.brier) in text and fmt(q.roc_auc) in text
    assert f"{fmt(s.comparison.brier.ci_low)}, {fmt(s.comparison.brier.ci_high)}" in (
        text
    )
    for name in PNGS:
        assert f"]({name})" in text
    # It says its values are exact, and writes them machine-readable too.
    assert "- Values: exact, recomputed from every row" in text
    assert "(ROC AUC `exact`)" in text
    written = json.loads((path.parent / SUMMARY_NAME).read_text(encoding="utf-8"))
    assert written == json.loads(json.dumps(s.to_dict()))
    assert written["auc_method"] == "exact"


@pytest.mark.parametrize("mode", [Mode.SPLIT, Mode.SHADOW])
def test_cumulative_curve_ends_at_the_summary(mode: Mode) -> None:
    rows = synthetic_exposures(3_000, mode=mode, label_fraction=0.5, seed=22)
    s = summarize_experiment(rows, {"v1": 0.5, "v2": 0.5}, CFG)
    curve = cumulative_brier_difference(
        ExposureArrays.from_exposures(rows),
        CFG,
        design=s.design,
        champion="v1",
        challenger="v2",
    )
    assert curve.t[-1] == s.sequential.t
    assert (curve.estimate[-1], curve.lower[-1], curve.upper[-1]) == pytest.approx(
        (s.sequential.estimate, s.sequential.lower, s.sequential.upper), rel=1e-9
    )
    # The interval narrows as labels arrive.
    width = curve.upper - curve.lower
    assert np.nanmean(width[-100:]) < np.nanmean(width[200:300])


def test_report_on_degenerate_input(tmp_path: Path) -> None:
    path = render_report([], {"v1": 0.5, "v2": 0.5}, CFG, tmp_path, title="Empty")
    text = path.read_text(encoding="utf-8")
    assert "keep_collecting" in text and "—" in text
    for name in PNGS:
        with Image.open(tmp_path / name) as img:
            img.verify()


_TAGS = {1: "churn_v1:a", 2: "churn_v2:old", 3: "churn_v2:new"}
_WEIGHTS = {"v1": 0.5, "v2": 0.5}


def _two_v2_models_report(
    tmp_path: Path, recorded: list[EpochModel]
) -> tuple[str, list[Exposure], int, int]:
    """A report where half of v2's exposures came from model 2 ("old"), the
    rest from model 3 ("new"; v1: model 1). Returns the report's text, the
    rows and v2's exposures per model (2, 3)."""
    rows = synthetic_exposures(2_000, label_fraction=0.7, seed=23)
    v2 = [i for i, e in enumerate(rows) if e.variant == "v2"]
    old = set(v2[: len(v2) // 2])
    rows = [
        replace(e, model_id=2 if i in old else (1 if e.variant == "v1" else 3))
        for i, e in enumerate(rows)
    ]
    path = render_report(
        rows, _WEIGHTS, CFG, tmp_path, title="t", models=recorded, model_tags=_TAGS
    )
    return path.read_text(encoding="utf-8"), rows, len(old), len(v2) - len(old)


def _assert_v2_judged_without(text: str, rows: list[Exposure], model: int) -> None:
    judged = [e for e in rows if e.model_id != model]
    q = summarize_experiment(judged, _WEIGHTS, CFG).quality["v2"]
    assert f"| v2 | {q.labelled} | {fmt(q.accuracy)} |" in text


def _recorded(variant: str, model: int, at: float = 0.0) -> EpochModel:
    return EpochModel("churn", 1, variant, model, _TAGS[model], at, "host:1")


def test_report_names_the_models_and_never_pools_two(tmp_path: Path) -> None:
    # The first half of v2's exposures came from another model (a replica
    # that still served the old one): the report judges the recorded one.
    text, rows, n_old, n_new = _two_v2_models_report(
        tmp_path, [_recorded("v1", 1), _recorded("v2", 3)]
    )
    assert f"| v2 | `churn_v2:old` | 2 | {n_old} | no |" in text
    assert f"| v2 | `churn_v2:new` | 3 | {n_new} | yes |" in text
    assert "**Mixed models**: v2" in text
    _assert_v2_judged_without(text, rows, 2)


def test_report_judges_the_first_recorded_model_as_the_live_view_does(
    tmp_path: Path,
) -> None:
    # Two models recorded for v2 in one epoch: the report and the live view
    # (serving.model_choice) both judge the first one recorded.
    text, rows, n_old, n_new = _two_v2_models_report(
        tmp_path, [_recorded("v1", 1), _recorded("v2", 2), _recorded("v2", 3, 1.0)]
    )
    assert f"| v2 | `churn_v2:old` | 2 | {n_old} | yes |" in text
    assert f"| v2 | `churn_v2:new` | 3 | {n_new} | yes |" in text
    assert "they use only v2's model 2." in text
    _assert_v2_judged_without(text, rows, 3)
