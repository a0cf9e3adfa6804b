"""Drift alerts on a live Prometheus scraping the real service.

Three epochs (an admin reset starts each, so each is a fresh drift window):

1. traffic drawn from the sample's held-out split, labelled truthfully: every
   PSI stays below 0.1 and no drift alert fires;
2. the same customers, with 40% of the labels flipped: the concept-drift
   alert fires, the PSI alerts stay quiet;
3. the issue's shift (all month-to-month, tenure 1..3, MonthlyCharges × 1.4):
   PSI above 0.3 for exactly Contract, tenure and MonthlyCharges and for the
   score, and the critical feature and score alerts fire.

The rules are the mixin's, rendered with test-only durations (a 2 s `for:`
instead of minutes, 300 requests instead of 500 behind a PSI alert); the
service uses its defaults (5 s flush, 5 s refresh).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import numpy as np
import pandas as pd
import pytest

from churn_features.schema import FEATURE_ORDER, NUMERIC_FEATURES, TARGET_COLUMN
from tests.integration.test_drift_reference import SHIFTED, shift
from tests.support.bento_server import ADMIN_TOKEN, BentoServer, sample_csv
from tests.support.prometheus_server import (
    MIXIN_DIR,
    PrometheusServer,
    ScrapeJob,
    render_rules,
)
from training.data import load_training_data
from training.train import split_indices

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

JOB = "churn-ab"
SEED = 42  # the training CLI's default: the split the models did not train on
FOR = "2s"


def alert_durations() -> list[str]:
    """Every ``alertFor`` key of the mixin: the override replaces the object."""
    out = subprocess.run(
        [
            "jsonnet",
            "-J",
            str(MIXIN_DIR),
            "-e",
            "std.objectFields((import 'mixin.libsonnet')._config.alertFor)",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    names: list[str] = json.loads(out)
    return names


def rule_config() -> dict[str, object]:
    """The mixin's config with test-only durations and request minimum."""
    return {
        "rateWindow": "30s",
        "driftMinRequests": 300,
        "alertFor": {name: FOR for name in alert_durations()},
    }


DRIFT_ALERTS = 'ALERTS{alertname=~"ChurnAb(Feature|Score)Drift.*|ChurnAbConceptDrift"}'
FIRING = 'ALERTS{alertstate="firing", alertname="%s"}'
# Flush (5 s) + refresh (5 s) + scrape and rule evaluation, with room to spare.
SETTLE_S = 60.0


@pytest.fixture(scope="module")
def held_out() -> pd.DataFrame:
    frame = load_training_data(sample_csv()).frame
    target = frame[TARGET_COLUMN].to_numpy(dtype=np.int64)
    _, test_index = split_indices(target, SEED)
    return frame.iloc[test_index].reset_index(drop=True)


@pytest.fixture(scope="module")
def prometheus(
    bento_server: BentoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    rules = render_rules(tmp_path_factory.mktemp("drift-rules"), rule_config())
    target = urlsplit(str(bento_server.url)).netloc
    with PrometheusServer(jobs=[ScrapeJob(JOB, [target])], rule_files=rules) as prom:
        assert prom.wait_for(f'up{{job="{JOB}"}} == 1', timeout=30), prom.log()
        yield prom
    # Leave a fresh epoch behind for the tests that share the server.
    reset(bento_server)


def reset(server: BentoServer) -> int:
    response = httpx.post(
        f"{server.url}/ab-test/reset",
        json={"reason": "drift e2e"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    epoch: int = response.json()["epoch"]
    time.sleep(1.5)  # workers re-read the state at most once a second
    return epoch


INTEGERS = [f.name for f in NUMERIC_FEATURES if f.integer]


def send(
    server: BentoServer, frame: pd.DataFrame, prefix: str, epoch: int
) -> dict[str, int]:
    # The API takes integers as JSON integers, as the schema says.
    frame = frame.astype({name: "int64" for name in INTEGERS})
    rows = frame[list(FEATURE_ORDER)].to_dict("records")
    body = {
        "customers": [{**r, "customerID": f"{prefix}-{i}"} for i, r in enumerate(rows)]
    }
    response = httpx.post(f"{server.url}/predict_batch", json=body, timeout=120)
    assert response.status_code == 200, response.text[:500]
    answered: dict[str, int] = {}
    for p in response.json()["predictions"]:
        assert p["epoch"] == epoch, p  # this epoch's window
        answered[p["model_version"]] = answered.get(p["model_version"], 0) + 1
    assert set(answered) == {"v1", "v2"}, answered
    return answered


def label(server: BentoServer, frame: pd.DataFrame, prefix: str, flip: float) -> None:
    flipped = np.random.default_rng(3).uniform(size=len(frame)) < flip
    truth = frame[TARGET_COLUMN].to_numpy(dtype=bool) ^ flipped
    labels = [
        {"customerID": f"{prefix}-{i}", "churned": bool(churned)}
        for i, churned in enumerate(truth)
    ]
    response = httpx.post(
        f"{server.url}/feedback_batch", json={"labels": labels}, timeout=120
    )
    assert response.status_code == 200, response.text[:500]


def values(prom: PrometheusServer, expr: str) -> dict[tuple[str, ...], float]:
    return {
        tuple(s["metric"].get(k, "") for k in ("variant", "feature")): float(
            s["value"][1]
        )
        for s in prom.query(expr)
    }


def settle(prom: PrometheusServer, answered: dict[str, int], labels: bool) -> None:
    """Wait until the gauges show this epoch's requests (and labels)."""
    for variant, n in answered.items():
        sel = f'job="{JOB}", variant="{variant}"'
        assert prom.wait_for(
            f"variant:churn_ab_drift_window_requests:max{{{sel}}} == {n}",
            timeout=SETTLE_S,
        ), (variant, n)
        if labels:
            assert prom.wait_for(
                f"max(churn_ab_concept_window_labels{{{sel}}}) == {n}",
                timeout=SETTLE_S,
            ), (variant, n)


def test_unshifted_then_flipped_labels_then_shifted_inputs(
    bento_server: BentoServer, prometheus: PrometheusServer, held_out: pd.DataFrame
) -> None:
    # 1. Unshifted traffic, true labels: everything quiet.
    epoch = reset(bento_server)
    answered = send(bento_server, held_out, "drift-plain", epoch)
    label(bento_server, held_out, "drift-plain", flip=0.0)
    settle(prometheus, answered, labels=True)
    psi = values(prometheus, f'variant_feature:churn_ab_feature_psi:max{{job="{JOB}"}}')
    assert len(psi) == 2 * len(FEATURE_ORDER)
    assert max(psi.values()) < 0.1, psi
    score = values(prometheus, f'variant:churn_ab_score_psi:max{{job="{JOB}"}}')
    assert set(score) == {("v1", ""), ("v2", "")}
    assert max(score.values()) < 0.1, score
    # Several `for:` windows and evaluations later, still nothing pending.
    assert not prometheus.wait_for(DRIFT_ALERTS, timeout=8), "drift alert on clean data"
    assert prometheus.query(f'max(churn_ab_concept_drift{{job="{JOB}"}}) == 0')

    # 2. Same customers, 40% of the labels flipped: concept drift only.
    epoch = reset(bento_server)
    answered = send(bento_server, held_out, "drift-flip", epoch)
    label(bento_server, held_out, "drift-flip", flip=0.4)
    settle(prometheus, answered, labels=True)
    fired = prometheus.wait_for(FIRING % "ChurnAbConceptDrift", timeout=SETTLE_S)
    assert {s["metric"]["variant"] for s in fired} == {"v1", "v2"}, fired
    assert not prometheus.query('ALERTS{alertname=~"ChurnAb(Feature|Score)Drift.*"}'), (
        "PSI alert on unshifted inputs"
    )

    # 3. The shift: exactly the shifted features and the score, both variants.
    epoch = reset(bento_server)
    answered = send(bento_server, shift(held_out), "drift-shift", epoch)
    settle(prometheus, answered, labels=False)
    psi = values(prometheus, f'variant_feature:churn_ab_feature_psi:max{{job="{JOB}"}}')
    above = {key for key, value in psi.items() if value > 0.3}
    assert above == {(v, f) for v in ("v1", "v2") for f in SHIFTED}, psi
    fired = prometheus.wait_for(FIRING % "ChurnAbFeatureDriftCritical", timeout=30)
    assert {(s["metric"]["variant"], s["metric"]["feature"]) for s in fired} == above, (
        fired
    )
    fired = prometheus.wait_for(FIRING % "ChurnAbScoreDriftCritical", timeout=30)
    assert {s["metric"]["variant"] for s in fired} == {"v1", "v2"}, fired

    # The JSON view of the same window tells the same story.
    drift = httpx.get(f"{bento_server.url}/ab-test/drift", timeout=30).json()
    assert drift["window"]["epoch"] == epoch
    for variant, body in drift["variants"].items():
        assert body["requests"] == answered[variant]
        shifted = {r["name"] for r in body["features"] if r["psi"] > 0.3}
        assert shifted == SHIFTED and body["score"]["psi"] > 0.3, body


def test_models_show_the_reference_and_the_drift_window_is_validated(
    bento_server: BentoServer,
) -> None:
    models = httpx.get(f"{bento_server.url}/models", timeout=30).json()["models"]
    for variant in ("v1", "v2"):
        reference = models[variant]["reference_distributions"]
        assert list(reference["features"]) == list(FEATURE_ORDER)
        assert reference["rows"] > 0 and reference["score"]["kind"] == "numeric"
    whole = httpx.get(f"{bento_server.url}/ab-test/drift?hours=0", timeout=30)
    assert whole.status_code == 200 and whole.json()["window"]["hours"] == 0
    for query, field in (
        ("hours=-1", "hours"),
        ("hours=99999999999999999999", "hours"),
        ("hours=many", "hours"),
        ("epoch=999", "epoch"),
    ):
        answer = httpx.get(f"{bento_server.url}/ab-test/drift?{query}", timeout=30)
        assert 400 <= answer.status_code < 500, (query, answer.text)
        assert field in answer.text, (query, answer.text)
