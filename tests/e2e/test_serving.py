"""The foundation end to end: a real ``bentoml serve`` with two entry workers."""

from __future__ import annotations

import json
import socket
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from churn_features.schema import EXAMPLE_CUSTOMER
from serving.metrics_dir import instance_dir
from tests.support.bento_server import BentoServer

RESPONSE_FIELDS = {
    "request_id",
    "model_version",
    "prediction",
    "churn_probability",
    "will_churn",
    "confidence",
    "latency_ms",
}


def ledger_rows(server: BentoServer) -> int:
    with sqlite3.connect(f"file:{server.ledger_path}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT COUNT(*) FROM exposures").fetchone()[0])


def metric_values(
    server: BentoServer,
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            values[key] = sample.value
    return values


def total(values: dict[Any, float], name: str, **labels: str) -> float:
    return sum(
        v
        for (n, lbls), v in values.items()
        if n == name and all(dict(lbls).get(k) == want for k, want in labels.items())
    )


def test_predict_answers_the_original_contract(bento_server: BentoServer) -> None:
    response = httpx.post(f"{bento_server.url}/predict", json=EXAMPLE_CUSTOMER)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.keys() >= RESPONSE_FIELDS
    assert body["model_version"] in {"v1", "v2"}
    assert body["prediction"] in {0, 1}
    assert body["will_churn"] == bool(body["prediction"])
    assert 0.0 <= body["churn_probability"] <= 1.0
    expected_confidence = (
        body["churn_probability"]
        if body["prediction"]
        else 1 - body["churn_probability"]
    )
    assert body["confidence"] == pytest.approx(expected_confidence)
    assert body["latency_ms"] > 0
    # This customer (month-to-month, fiber, electronic check, tenure 1) is a
    # textbook churner: both models must say so.
    assert body["churn_probability"] > 0.5


def test_predict_batch_routes_each_customer(bento_server: BentoServer) -> None:
    customers = [{**EXAMPLE_CUSTOMER, "customerID": f"batch-{i}"} for i in range(50)]
    response = httpx.post(
        f"{bento_server.url}/predict_batch", json={"customers": customers}, timeout=30
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == 50
    assert len({p["request_id"] for p in body["predictions"]}) == 50
    assert {p["model_version"] for p in body["predictions"]} == {"v1", "v2"}
    # Batch answers agree with single answers for the same customer.
    single = httpx.post(f"{bento_server.url}/predict", json=customers[7]).json()
    assert single["model_version"] == body["predictions"][7]["model_version"]
    assert single["churn_probability"] == pytest.approx(
        body["predictions"][7]["churn_probability"], abs=1e-12
    )


def test_predict_batch_over_the_bound_is_413(bento_server: BentoServer) -> None:
    customers = [EXAMPLE_CUSTOMER] * 10_001
    before = ledger_rows(bento_server)
    response = httpx.post(
        f"{bento_server.url}/predict_batch", json={"customers": customers}, timeout=60
    )
    assert response.status_code == 413
    assert response.json()["error"]["field"] == "customers"
    assert ledger_rows(bento_server) == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"gender": "female"}, "gender"),
        ({"tenure": "12"}, "tenure"),
        ({"tenure": -1}, "tenure"),
        ({"MonthlyCharges": True}, "MonthlyCharges"),
        ({"Contract": "Weekly"}, "Contract"),
        ({"SeniorCitizen": 2}, "SeniorCitizen"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_bad_input_is_4xx_naming_the_field(
    bento_server: BentoServer, change: dict[str, Any], field: str
) -> None:
    before = ledger_rows(bento_server)
    response = httpx.post(
        f"{bento_server.url}/predict", json={**EXAMPLE_CUSTOMER, **change}
    )
    assert 400 <= response.status_code < 500
    assert field in response.text
    assert "Traceback" not in response.text
    assert ledger_rows(bento_server) == before
    assert httpx.get(f"{bento_server.url}/readyz").status_code == 200


def test_missing_field_is_named(bento_server: BentoServer) -> None:
    body = {k: v for k, v in EXAMPLE_CUSTOMER.items() if k != "PaymentMethod"}
    response = httpx.post(f"{bento_server.url}/predict", json=body)
    assert response.status_code == 400
    assert "PaymentMethod" in response.text


def test_read_only_endpoints(bento_server: BentoServer) -> None:
    index = httpx.get(f"{bento_server.url}/").json()
    assert index["name"] == "churn-ab"
    assert "POST /predict" in index["endpoints"]

    health = httpx.get(f"{bento_server.url}/health")
    assert health.status_code == 200
    assert {m["loaded"] for m in health.json()["models"].values()} == {True}

    models = httpx.get(f"{bento_server.url}/models").json()["models"]
    assert models["v1"]["algorithm"] == "random_forest"
    assert models["v2"]["algorithm"] == "gradient_boosting"
    assert models["v1"]["metrics"]["roc_auc"] > 0.8
    assert sum(m["weight"] for m in models.values()) == pytest.approx(1.0)

    for path in ("/readyz", "/livez", "/docs", "/docs.json"):
        assert httpx.get(f"{bento_server.url}{path}").status_code == 200, path


def test_stats_and_metrics_count_exactly_what_was_sent(
    bento_server: BentoServer,
) -> None:
    """Both entry workers serve; the ledger-backed stats and the multiprocess
    metrics must add up to exactly the requests sent."""
    stats_before = httpx.get(f"{bento_server.url}/ab-test/stats").json()
    metrics_before = metric_values(bento_server)
    sent = 120

    def call(i: int) -> str:
        response = httpx.post(
            f"{bento_server.url}/predict",
            json={**EXAMPLE_CUSTOMER, "customerID": f"count-{i}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return str(response.json()["model_version"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        answered = list(pool.map(call, range(sent)))

    stats_after = httpx.get(f"{bento_server.url}/ab-test/stats").json()
    metrics_after = metric_values(bento_server)
    assert stats_after["total_requests"] - stats_before["total_requests"] == sent
    for variant in ("v1", "v2"):
        sent_to_variant = answered.count(variant)
        assert (
            stats_after["variants"][variant]["requests"]
            - stats_before["variants"][variant]["requests"]
            == sent_to_variant
        )
        for name in ("predictions_total", "prediction_latency_seconds_count"):
            delta = total(metrics_after, name, model_version=variant) - total(
                metrics_before, name, model_version=variant
            )
            assert delta == sent_to_variant, (name, variant)
    churn_delta = total(metrics_after, "churn_predictions_total") - total(
        metrics_before, "churn_predictions_total"
    )
    assert churn_delta == sent
    latency = stats_after["variants"]["v1"]["latency_ms"]
    assert latency["min"] <= latency["p50"] <= latency["p95"] <= latency["max"]


def _entry_workers(server: BentoServer) -> list[int]:
    # Every worker's command line names service:ChurnAB; the entry service's
    # workers are the ones started with --service-name churn_ab.
    return [
        pid
        for pid in server.child_pids()
        if "--service-name churn_ab " in _cmdline(pid)
    ]


def _answered_by_process(server: BentoServer) -> dict[int, float]:
    """predictions_total per process, read from each process's own file in the
    Prometheus multiprocess directory (``counter_<pid>.db``): the only record
    of which worker answered, since answers do not name their process."""
    home = Path(server.env["BENTOML_HOME"])
    directory = instance_dir(home, socket.gethostname(), server.pid)
    answered: dict[int, float] = {}
    for path in directory.glob("counter_*.db"):
        pid = int(path.stem.removeprefix("counter_"))
        for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path)):
            if json.loads(key)[1] == "predictions_total":
                answered[pid] = answered.get(pid, 0.0) + value
    return answered


def _predict_on_new_connections(server: BentoServer, count: int) -> int:
    def call(_: int) -> None:
        # No shared client: each request opens its own connection.
        response = httpx.post(
            f"{server.url}/predict", json=dict(EXAMPLE_CUSTOMER), timeout=30
        )
        assert response.status_code == 200, response.text

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(call, range(count)))
    return count


def test_both_entry_workers_answer(bento_server: BentoServer) -> None:
    workers = _entry_workers(bento_server)
    assert len(workers) == 2, [_cmdline(p) for p in bento_server.child_pids()]
    before = _answered_by_process(bento_server)
    sent = 0
    # New connections spread over both workers' accept queues; a bounded number
    # of rounds, stopping as soon as both have answered.
    for _ in range(10):
        sent += _predict_on_new_connections(bento_server, 40)
        after = _answered_by_process(bento_server)
        grew = {pid: after.get(pid, 0.0) - before.get(pid, 0.0) for pid in workers}
        if all(grew.values()):
            break
    assert all(grew[pid] > 0 for pid in workers), (grew, sent)
    # Only the entry workers count answers, and every answer exactly once.
    assert sum(after.values()) - sum(before.values()) == sent == sum(grew.values())


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
