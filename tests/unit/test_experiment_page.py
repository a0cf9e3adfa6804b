"""The experiment page's renderer, on real live statistics over a real ledger."""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm
from statsmodels.stats.proportion import proportion_confint

from ab_router.admin import Change
from ab_router.config import ExperimentConfig
from ab_router.ledger import open_ledger
from ab_router.ledger.base import Ledger
from ab_router.simulate import synthetic_exposures
from ab_router.statistics.decision import DecisionConfig
from ab_router.statistics.quality import brier_losses
from serving.experiment_page import PageView, page_view, render_page
from serving.live_statistics import MAX_CURVE_POINTS, LiveStatistics
from serving.page_html import Section
from serving.state_cache import StateCache
from serving.variant_tables import mean_interval, wilson_interval
from tests.support.page_numbers import marked_numbers, mismatches

HOSTILE = '<script>alert("x")</script>'
WEIGHTS = {"v1": 0.5, "v2": 0.5}


def live_statistics(
    tmp_path: Path,
    n: int,
    *,
    label_fraction: float = 0.5,
    name: str = "churn",
) -> tuple[LiveStatistics, Ledger]:
    ledger = open_ledger(None, tmp_path / "ledger.sqlite3")
    state = ledger.ensure_experiment(
        ExperimentConfig(name=name, salt="s", weights=WEIGHTS)
    )
    if n:
        ledger.record_exposures(
            synthetic_exposures(
                n, experiment=name, epoch=state.epoch, label_fraction=label_fraction
            )
        )
    config = DecisionConfig(planned_labels=2000, min_labels=30)
    return LiveStatistics(ledger, StateCache(ledger, state, 0.0), config), ledger


def sources(statistics: LiveStatistics) -> dict[str, dict]:
    report = asyncio.run(statistics.report(None))
    return {"stat": asyncio.run(statistics.stats()), "summary": report["summary"]}


def test_every_number_shown_equals_the_stats_and_the_report(tmp_path: Path) -> None:
    statistics, _ = live_statistics(tmp_path, 3000)
    html = render_page(page_view(statistics))
    shown = marked_numbers(html)
    pointers = {s.pointer for s in shown}
    for required in (
        "/epoch",
        "/total_requests",
        "/variants/v1/requests",
        "/variants/v2/latency_ms/p95",
        "/variants/v2/predicted_churn_rate",
        "/quality/v1/brier",
        "/srm/p_value",
        "/comparison/brier/ci_low",
        "/sequential/upper",
    ):
        assert required in pointers
    assert len(shown) >= 50
    assert mismatches(shown, sources(statistics)) == []


def test_the_number_check_can_fail(tmp_path: Path) -> None:
    statistics, _ = live_statistics(tmp_path, 500)
    shown = marked_numbers(render_page(page_view(statistics)))
    truth = sources(statistics)
    truth["stat"]["variants"]["v1"]["requests"] += 1
    truth["summary"]["comparison"]["brier"]["ci_low"] += 1e-3
    problems = mismatches(shown, truth)
    assert len(problems) == 2
    assert any("/variants/v1/requests" in p for p in problems)


def test_hostile_strings_are_escaped(tmp_path: Path) -> None:
    statistics, ledger = live_statistics(tmp_path, 200, name=HOSTILE)
    state = statistics.current_state()
    assert ledger.change_state(
        state,
        Change(state.config.with_weights({"v1": 0.6, "v2": 0.4}), -1, "weights"),
        reason=f"{HOSTILE} & <img src=x onerror=alert(1)>",
        actor='admin" onmouseover="alert(1)',
    )
    statistics.state.reload()
    view = page_view(statistics)
    decision = {**view.summary["decision"], "message": HOSTILE}
    html = render_page(replace(view, summary={**view.summary, "decision": decision}))

    assert "<script" not in html
    assert "<img" not in html
    assert 'onmouseover="' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "&amp; &lt;img src=x onerror=alert(1)&gt;" in html
    assert "admin&quot; onmouseover=&quot;alert(1)" in html


def test_an_empty_experiment_renders_without_a_chart(tmp_path: Path) -> None:
    statistics, _ = live_statistics(tmp_path, 0)
    html = render_page(page_view(statistics))
    assert "<svg" not in html
    assert "No interval yet" in html
    assert "Keep collecting labels." in html
    assert mismatches(marked_numbers(html), sources(statistics)) == []


def test_traffic_without_labels_shows_no_quality_and_no_chart(tmp_path: Path) -> None:
    statistics, _ = live_statistics(tmp_path, 400, label_fraction=0.0)
    html = render_page(page_view(statistics))
    assert "<svg" not in html
    # One status cell per variant, one per fixed-horizon comparison.
    assert html.count(">no data<") == 2 + 4
    shown = marked_numbers(html)
    requests = [s for s in shown if s.pointer.endswith("/requests")]
    assert sum(int(s.value) for s in requests) == 400
    assert mismatches(shown, sources(statistics)) == []


def test_the_chart_ends_at_the_decisions_interval_with_bounded_points(
    tmp_path: Path,
) -> None:
    statistics, ledger = live_statistics(tmp_path, 0)
    epoch = statistics.current_state().epoch
    seen = []
    for seed in range(12):  # labels arrive between page views
        ledger.record_exposures(
            synthetic_exposures(
                250, experiment="churn", epoch=epoch, label_fraction=0.5, seed=seed
            )
        )
        snapshot = statistics.snapshot()
        seen.append(snapshot.summary.sequential)
    sequential = snapshot.summary.sequential
    assert snapshot.curve.t.tolist() == [s.t for s in seen]
    assert snapshot.curve.t[-1] == sequential.t
    assert snapshot.curve.lower[-1] == sequential.lower
    assert snapshot.curve.upper[-1] == sequential.upper
    assert snapshot.curve.t.size <= MAX_CURVE_POINTS

    html = render_page(page_view(statistics))
    svg = re.search(r"<svg.*?</svg>", html, re.S)
    assert svg is not None
    assert 'aria-labelledby="chart-title chart-desc"' in svg.group()
    assert f"After {sequential.t} labels" in svg.group()
    assert f"{sequential.upper:+.4f}" in svg.group()


def test_drift_appears_only_through_its_section(tmp_path: Path) -> None:
    statistics, _ = live_statistics(tmp_path, 200)
    view = page_view(statistics)
    plain = render_page(view)
    assert 'id="drift"' not in plain
    assert "data-drift" not in plain
    section = Section("drift", "Drift per variant", "<p>psi</p>")
    html = render_page(PageView(**{**view.__dict__, "extra_sections": (section,)}))
    assert '<section id="drift"><h2>Drift per variant</h2><p>psi</p></section>' in html


def test_quality_intervals_match_statsmodels_and_scipy() -> None:
    for successes, n in ((0, 10), (7, 10), (652, 1000), (1, 1)):
        ours = wilson_interval(successes, n, 0.95)
        theirs = proportion_confint(successes, n, alpha=0.05, method="wilson")
        assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-15)
    assert wilson_interval(0, 0, 0.95) is None

    rng = np.random.default_rng(3)
    p, y = rng.random(500), (rng.random(500) < 0.3).astype(float)
    losses = brier_losses(p, y)
    moments = {"n": 500, "sum": losses.sum(), "sum_squares": (losses**2).sum()}
    half = norm.ppf(0.975) * losses.std(ddof=1) / math.sqrt(500)
    assert mean_interval(moments, 0.95) == pytest.approx(
        (losses.mean() - half, losses.mean() + half), rel=1e-9
    )
    assert mean_interval({"n": 1, "sum": 0.2, "sum_squares": 0.04}, 0.95) is None
