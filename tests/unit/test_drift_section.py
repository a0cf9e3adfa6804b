"""The experiment page's drift section, from a real DriftMonitor over a real ledger.

The numbers are checked against ``DriftMonitor.report()``, the body of
``GET /ab-test/drift``; the status against the alerts' thresholds, on both
sides of each.
"""

from __future__ import annotations

import asyncio
import copy
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ab_router.ledger.drift_counts import DriftKey, hour_of
from ab_router.statistics.psi import (
    DRIFT_MIN_REQUESTS,
    PSI_CRITICAL_THRESHOLD,
    PSI_WARNING_THRESHOLD,
    bin_codes,
)
from churn_features.reference import ReferenceDistributions, reference_from_codes
from churn_features.schema import FEATURE_ORDER
from serving.drift_monitor import DriftMonitor
from serving.drift_section import concept_status, drift_section, psi_level
from serving.experiment_page import page_view, render_page
from serving.settings import DriftSettings
from tests.support.page_numbers import marked_numbers, mismatches
from tests.unit.test_experiment_page import HOSTILE, live_statistics
from tests.unit.test_reference import synthetic_codes

TAGS = {"v1": "churn_v1:one", "v2": "churn_v2:two"}
TENURE = FEATURE_ORDER.index("tenure")
SETTINGS = DriftSettings(concept_min_labels=30, drift_refresh_s=0)


@pytest.fixture(scope="module")
def reference() -> ReferenceDistributions:
    codes = synthetic_codes(3000, seed=11)
    return reference_from_codes(codes, np.random.default_rng(12).beta(1, 3, 3000))


def monitor(
    tmp_path: Path,
    reference: ReferenceDistributions,
    *,
    v2_reference: bool = True,
    heldout: tuple[float, float] = (0.25, 0.5),
    tags: dict[str, str] = TAGS,
) -> DriftMonitor:
    """v1 sees traffic like its training data; v2 sees every tenure at 1."""
    statistics, ledger = live_statistics(tmp_path, 1200)
    state = statistics.current_state()
    plain, shifted = synthetic_codes(700, seed=1), synthetic_codes(600, seed=2)
    shifted[:, TENURE] = 1.0
    scores = np.random.default_rng(3).beta(1, 3, 700)
    hour = hour_of(time.time())
    ledger.add_drift_counts(
        {
            DriftKey(state.config.name, state.epoch, v, tags[v], hour): bin_codes(
                reference, codes, scores[: len(codes)]
            )
            for v, codes in (("v1", plain), ("v2", shifted))
        }
    )
    brier, auc = heldout
    descriptions = {
        v: {"tag": tags[v], "metrics": {"brier_score": brier, "roc_auc": auc}}
        for v in tags
    }
    references = {"v1": reference, "v2": reference if v2_reference else None}
    return DriftMonitor(ledger, statistics.state, descriptions, references, SETTINGS)


def report_of(drift: DriftMonitor) -> dict[str, Any]:
    return asyncio.run(drift.report())


def section_html(report: dict[str, Any]) -> str:
    return drift_section(report, SETTINGS.concept_config()).body


def statuses(html: str) -> list[str]:
    return re.findall(r'data-status="([^"]*)"', html)


def test_every_drift_number_shown_equals_the_drift_api(
    tmp_path: Path, reference: ReferenceDistributions
) -> None:
    drift = monitor(tmp_path, reference)
    report = report_of(drift)
    html = section_html(report)
    shown = [s for s in marked_numbers(html) if s.source == "drift"]
    pointers = {s.pointer for s in shown}
    assert {
        "/window/epoch",
        "/concept_window_labels",
        "/variants/v1/requests",
        "/variants/v2/score/psi",
        f"/variants/v2/features/{TENURE}/psi",
        "/variants/v1/concept_drift/labels",
        "/variants/v2/concept_drift/auc_worse_by",
    } <= pointers
    # Both variants' features, plus requests, score and largest per variant.
    assert len(shown) >= 2 * len(FEATURE_ORDER) + 6
    assert mismatches(shown, {"drift": report}) == []
    assert report["variants"]["v1"]["requests"] == 700
    assert report["variants"]["v2"]["requests"] == 600
    # v1 looks like training, v2's tenure is one bin: the largest shown is it.
    assert statuses(html)[:2] == ["stable", "critical"]
    assert f"/variants/v2/features/{TENURE}/psi" in html.split("</tr>")[2]
    assert "(tenure)" in html


def test_the_page_shows_the_section_and_its_numbers_can_fail(
    tmp_path: Path, reference: ReferenceDistributions
) -> None:
    drift = monitor(tmp_path, reference)
    report = report_of(drift)
    (tmp_path / "page").mkdir()
    statistics, _ = live_statistics(tmp_path / "page", 200)
    section = drift_section(report, SETTINGS.concept_config())
    html = render_page(page_view(statistics, [section]))
    assert '<section id="drift"><h2>Drift per variant</h2>' in html
    shown = [s for s in marked_numbers(html) if s.source == "drift"]
    wrong = copy.deepcopy(report)
    wrong["variants"]["v1"]["requests"] += 1
    wrong["variants"]["v2"]["features"][TENURE]["psi"] += 1e-3
    problems = mismatches(shown, {"drift": wrong})
    assert any("/variants/v1/requests" in p for p in problems)
    # Shown twice: the largest feature and its row in the feature table.
    assert sum(f"/features/{TENURE}/psi" in p for p in problems) == 2
    assert len(problems) == 3


def with_psi(report: dict[str, Any], score: float, feature: float = 0.0) -> dict:
    """The report with v1's score PSI and every feature PSI replaced."""
    changed = copy.deepcopy(report)
    body = changed["variants"]["v1"]
    body["score"]["psi"] = score
    for f in body["features"]:
        f["psi"] = feature
    return changed


@pytest.mark.parametrize(
    ("psi", "expected"),
    [
        (0.0, "stable"),
        (np.nextafter(PSI_WARNING_THRESHOLD, 0), "stable"),
        (PSI_WARNING_THRESHOLD, "stable"),  # the alerts fire strictly above
        (np.nextafter(PSI_WARNING_THRESHOLD, 1), "warning"),
        (np.nextafter(PSI_CRITICAL_THRESHOLD, 0), "warning"),
        (PSI_CRITICAL_THRESHOLD, "warning"),
        (np.nextafter(PSI_CRITICAL_THRESHOLD, 1), "critical"),
        (5.0, "critical"),
    ],
)
def test_status_against_the_thresholds_on_both_sides(
    tmp_path: Path, reference: ReferenceDistributions, psi: float, expected: str
) -> None:
    report = report_of(monitor(tmp_path, reference))
    assert psi_level(float(psi)) == expected
    # The score or any one feature sets the variant's status.
    by_score = section_html(with_psi(report, float(psi)))
    assert statuses(by_score)[0] == expected
    by_feature = with_psi(report, 0.0)
    by_feature["variants"]["v1"]["features"][5]["psi"] = float(psi)
    html = section_html(by_feature)
    assert statuses(html)[0] == expected
    name = re.escape(FEATURE_ORDER[5])
    cell = re.search(rf'<th scope="row">{name}</th><td class="drift-(\w+)">', html)
    assert cell is not None and cell.group(1) == expected  # v1's column
    assert mismatches(marked_numbers(html), {"drift": by_feature}) == []


def test_no_psi_is_no_data_not_stable() -> None:
    assert psi_level(None) == "no data"
    assert psi_level(float("nan")) == "no data"


@pytest.mark.parametrize(
    ("requests", "noted"),
    [(DRIFT_MIN_REQUESTS - 1, True), (DRIFT_MIN_REQUESTS, False)],
)
def test_a_window_too_small_for_the_alerts_says_so(
    tmp_path: Path, reference: ReferenceDistributions, requests: int, noted: bool
) -> None:
    report = report_of(monitor(tmp_path, reference))
    report["variants"]["v1"]["requests"] = requests
    html = section_html(report)
    first_status = re.search(r'data-status="stable">([^<]*)<', html)
    assert first_status is not None
    assert ("fewer than 500 requests" in first_status.group(1)) is noted


def test_a_model_without_reference_shows_no_psi(
    tmp_path: Path, reference: ReferenceDistributions
) -> None:
    report = report_of(monitor(tmp_path, reference, v2_reference=False))
    assert report["variants"]["v2"]["error"] == "no_reference"
    html = section_html(report)
    assert statuses(html)[:2] == ["stable", "no reference"]
    shown = marked_numbers(html)
    assert not any(s.pointer.startswith("/variants/v2/features/") for s in shown)
    assert mismatches(shown, {"drift": report}) == []
    v2_row = html.split("</tr>")[2]
    assert v2_row.count("—") == 3  # requests, score PSI, largest feature


def test_concept_drift_is_the_apis_verdict(
    tmp_path: Path, reference: ReferenceDistributions
) -> None:
    # Held-out quality no window can match: both variants have drifted.
    report = report_of(monitor(tmp_path, reference, heldout=(0.0, 1.0)))
    concept = report["variants"]["v1"]["concept_drift"]
    assert concept["drifted"] and concept["labels"] >= 30
    html = section_html(report)
    assert statuses(html)[2:4] == ["drifted", "drifted"]
    assert concept_status(concept) == "drifted: Brier, AUC"
    assert ">drifted: Brier, AUC<" in html
    assert mismatches(marked_numbers(html), {"drift": report}) == []

    (tmp_path / "quiet").mkdir()
    quiet = report_of(monitor(tmp_path / "quiet", reference, heldout=(1.0, 0.0)))
    assert statuses(section_html(quiet))[2:4] == ["ok", "ok"]
    assert concept_status({"error": "too_few_samples", "drifted": False}) == (
        "too few samples"
    )
    assert concept_status({"error": "no_heldout_metrics"}) == "no heldout metrics"


def test_hostile_model_tags_are_escaped(
    tmp_path: Path, reference: ReferenceDistributions
) -> None:
    tags = {"v1": HOSTILE, "v2": 'x" onmouseover="alert(1)'}
    html = section_html(report_of(monitor(tmp_path, reference, tags=tags)))
    assert "<script" not in html
    assert 'onmouseover="' not in html
    assert "&lt;script&gt;" in html
