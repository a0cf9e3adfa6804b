"""The experiment page in a real browser, against a real ``bentoml serve``.

Headless Debian Chromium (``scripts/install-system-deps.sh``) over the
DevTools protocol: the page loads with no console error and no failed
request, every number it shows equals ``/ab-test/stats`` (or the report's
summary, or ``/ab-test/drift`` in the drift section), it fits a phone's
width, and a screenshot is saved. Set ``CHURN_AB_PAGE_SCREENSHOT`` to a
path to keep the 1280-pixel screenshot
(that is how ``docs/experiment-page.png`` is made).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import httpx

from churn_features.schema import FEATURE_ORDER
from tests.support.bento_server import BentoServer, sample_csv
from tests.support.headless_chromium import (
    CHROMIUM,
    PageProblems,
    chromium,
    open_tab,
)
from tests.support.page_numbers import Shown, mismatches
from training.data import read_csv

CUSTOMERS = 800
BATCH = 40
LABEL_STEP = 40
WIDTH = 1280
PHONE = 390

MARKED = """JSON.stringify([...document.querySelectorAll(
    '[data-stat],[data-summary],[data-drift]')]
  .map(e => {
    const source = ['stat', 'summary', 'drift'].find(k => k in e.dataset);
    return {source, pointer: e.dataset[source], value: e.dataset.value,
            text: e.textContent};
  }))"""
DRIFT_SETTLE_S = 60.0  # the workers flush drift counts every 5 s


def real_customers(n: int) -> tuple[list[dict[str, Any]], list[bool]]:
    """The sample's first ``n`` customers and whether each one churned."""
    frame = read_csv(sample_csv(), "sample").frame.head(n)
    rows = frame[[*FEATURE_ORDER, "customerID"]].to_dict("records")
    whole = ("SeniorCitizen", "tenure")  # the frame holds them as floats
    customers = [
        {
            k: int(v) if k in whole else (v.item() if hasattr(v, "item") else v)
            for k, v in r.items()
        }
        for r in rows
    ]
    return customers, [bool(c) for c in frame["Churn"]]


def send_traffic_and_labels(server: BentoServer) -> int:
    customers, churned = real_customers(CUSTOMERS)
    for c in customers:
        c["customerID"] = f"page-{c['customerID']}"
    predictions = []
    # Several requests, so the latency quantiles have more than one value.
    for start in range(0, len(customers), BATCH):
        answer = httpx.post(
            f"{server.url}/predict_batch",
            json={"customers": customers[start : start + BATCH]},
            timeout=120,
        )
        assert answer.status_code == 200, answer.text[:500]
        predictions += answer.json()["predictions"]
    labels = [
        {"request_id": p["request_id"], "churned": y}
        for p, y in zip(predictions, churned, strict=True)
    ]
    # Labels arrive in steps with the stats read between them, as while someone
    # watches: the chart draws the interval each snapshot computed.
    accepted = 0
    for start in range(0, len(labels), LABEL_STEP):
        fed = httpx.post(
            f"{server.url}/feedback_batch",
            json={"labels": labels[start : start + LABEL_STEP]},
            timeout=120,
        )
        assert fed.status_code == 200, fed.text[:500]
        accepted += fed.json()["accepted"]
        assert httpx.get(f"{server.url}/ab-test/stats", timeout=30).status_code == 200
    assert accepted == CUSTOMERS
    return CUSTOMERS


def wait_for_drift_counts(server: BentoServer) -> dict[str, Any]:
    """``/ab-test/drift`` once it counts every answered request of the epoch.

    The workers add their drift counts to the ledger every few seconds; until
    they have, the page and the API could read different counts.
    """
    deadline = time.monotonic() + DRIFT_SETTLE_S
    while True:
        stats = httpx.get(f"{server.url}/ab-test/stats", timeout=30).json()
        drift = httpx.get(f"{server.url}/ab-test/drift", timeout=30).json()
        answered = {v: body["requests"] for v, body in stats["variants"].items()}
        counted = {v: drift["variants"][v].get("requests") for v in answered}
        if counted == answered:
            return drift
        assert time.monotonic() < deadline, (answered, counted)
        time.sleep(0.5)


def test_the_page_shows_the_stats_in_a_real_browser(
    bento_server: BentoServer, tmp_path: Path
) -> None:
    assert Path(CHROMIUM).is_file(), "run scripts/install-system-deps.sh (chromium)"
    send_traffic_and_labels(bento_server)
    wait_for_drift_counts(bento_server)
    url = f"{bento_server.url}/ab-test/"
    direct = httpx.get(url, timeout=30)
    assert direct.status_code == 200
    assert direct.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in direct.headers["content-security-policy"]

    with chromium() as browser:
        tab = open_tab(browser, WIDTH, 900)
        tab.navigate(url)
        shown = [Shown(**s) for s in json.loads(tab.evaluate(MARKED))]
        stats = httpx.get(f"{bento_server.url}/ab-test/stats", timeout=30).json()
        report = httpx.get(f"{bento_server.url}/ab-test/report", timeout=60).json()
        drift = httpx.get(f"{bento_server.url}/ab-test/drift", timeout=30).json()
        drift_statuses = tab.evaluate(
            "JSON.stringify([...document.querySelectorAll('#drift [data-status]')]"
            ".map(e => e.dataset.status))"
        )
        chart_title = tab.evaluate(
            "document.querySelector('svg.chart title').textContent"
        )
        screenshot = tmp_path / "experiment-page.png"
        tab.screenshot(screenshot, WIDTH)

        phone = open_tab(browser, PHONE, 844)
        phone.resize(PHONE, 844, mobile=True)
        phone.navigate(url)
        phone_width = phone.evaluate("document.documentElement.scrollWidth")

    assert not browser.leftover, f"chromium left processes: {browser.leftover}"
    assert tab.problems == PageProblems()
    assert phone.problems == PageProblems()
    pointers = {s.pointer for s in shown}
    assert {
        "/variants/v1/requests",
        "/variants/v2/requests",
        "/srm/p_value",
    } <= pointers
    assert "/sequential/upper" in pointers
    sources = {"stat": stats, "summary": report["summary"], "drift": drift}
    assert mismatches(shown, sources) == []
    drift_shown = {s.pointer for s in shown if s.source == "drift"}
    assert {
        "/variants/v1/requests",
        "/variants/v2/score/psi",
        "/variants/v1/features/0/psi",
        "/variants/v2/concept_drift/labels",
    } <= drift_shown
    # Two rows per variant: input drift, concept drift.
    assert len(json.loads(drift_statuses)) == 2 * len(drift["variants"])
    # The session's server may hold other tests' labels too.
    labels_shown = [
        int(s.value)
        for s in shown
        if s.pointer.startswith("/variants/") and s.pointer.endswith("/labelled")
    ]
    assert sum(labels_shown) >= CUSTOMERS
    assert "anytime-valid interval" in chart_title
    assert phone_width <= PHONE, "the page scrolls sideways on a phone"
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    keep = os.environ.get("CHURN_AB_PAGE_SCREENSHOT")
    if keep:
        shutil.copyfile(screenshot, keep)


def test_the_browser_check_sees_console_errors_and_failed_requests() -> None:
    """The assertions above can fail: a broken page is reported."""
    broken = (
        'data:text/html,<img src="http://127.0.0.1:9/missing.png">'
        '<script>console.error("boom")</script>'
    )
    with chromium() as browser:
        tab = open_tab(browser, 800, 600)
        tab.navigate(broken)
    assert not browser.leftover
    assert "boom" in tab.problems.console_errors
    assert tab.problems.failed_requests
