"""Live proof of the monitoring: a real Prometheus scrapes the real service.

A `prometheus` process (1 s scrape and rule evaluation, loopback port, temporary
storage) scrapes `bento_server` while this module sends /predict traffic that
lands on both variants, some invalid requests, and churn labels posted to
/feedback for some answers (plus a duplicate, a conflicting and an unknown
one). Then every expression of
every dashboard panel and every recording rule, read from the rendered files
(never retyped here), is evaluated through the Prometheus HTTP API and checked
against the expectation table below. The tables must name every panel query and
every rule: a panel added to the mixin without an expectation fails the test.

Windows: the dashboard uses Grafana's `$__rate_interval`, replaced here by a
concrete 30s window, as Grafana would replace it with at least four scrape
intervals; the recording rules are rendered from the same mixin with
`_config.rateWindow = '30s'` (their names then end in `30s`), which is the
documented way to adapt the mixin's windows.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from churn_features.schema import EXAMPLE_CUSTOMER
from tests.support.prometheus_server import (
    DASHBOARD_FILE,
    PrometheusServer,
    ScrapeJob,
    concrete_dashboard_expr,
    dashboard_targets,
    free_port,
    port_is_open,
    render_rules,
    rules_of,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

WINDOW = "30s"
RULE_CONFIG = {"rateWindow": WINDOW, "rollbackWindow": "2m"}
JOB = "churn-ab"
GRAFANA_VARIABLES = {"job": JOB, "instance": ".+"}
VARIANTS = {"v1", "v2"}
EXPERIMENT = "churn-v1-vs-v2"
# Bounded traffic: a burst, then a trickle while the queries run.
BURST_SECONDS = 8.0
BURST_MAX_REQUESTS = 600
TRICKLE_INTERVAL = 0.2

CUSTOMER: dict[str, Any] = dict(EXAMPLE_CUSTOMER)
# A long-standing customer on a two-year contract, so answers are not all churn.
LOYAL = CUSTOMER | {
    "tenure": 60,
    "Contract": "Two year",
    "InternetService": "DSL",
    "MonthlyCharges": 40.0,
    "TotalCharges": 2400.0,
    "PaymentMethod": "Credit card (automatic)",
    "Partner": "Yes",
}


@dataclass(frozen=True)
class Expect:
    """What one expression must return after our traffic.

    `labels`: the exact label names of every returned series.
    `data`: True if it must return at least one series; False if it may be
    empty at this point (the reason is in `why`), in which case it must still
    be accepted by Prometheus and, if it returns series, have `labels`.
    `values`: label -> values every series' label must be in.
    `present`: label -> values that must all appear among the series.
    """

    labels: frozenset[str]
    data: bool = True
    why: str = ""
    values: dict[str, frozenset[str]] = field(default_factory=dict)
    present: dict[str, frozenset[str]] = field(default_factory=dict)


def _e(*labels: str, **kwargs: Any) -> Expect:
    return Expect(labels=frozenset(labels), **kwargs)


V = frozenset(VARIANTS)
BOTH_MV = {"values": {"model_version": V}, "present": {"model_version": V}}
BOTH_V = {"values": {"variant": V}, "present": {"variant": V}}
EXP = {"values": {"experiment": frozenset({EXPERIMENT})}}

DASHBOARD_EXPECTATIONS: dict[tuple[str, str], Expect] = {
    ("Request rate per variant", "A"): _e("model_version", **BOTH_MV),
    ("Traffic share vs configured weight", "A"): _e("experiment", "variant", **BOTH_V),
    ("Traffic share vs configured weight", "B"): _e("experiment", "variant", **BOTH_V),
    ("Churn prediction rate per variant", "A"): _e("model_version", **BOTH_MV),
    ("Shadow scoring rate", "A"): _e(
        "experiment", "variant", data=False, why="only in shadow mode"
    ),
    ("Latency p50 / p95 / p99 per variant", "A"): _e("model_version", **BOTH_MV),
    ("Latency p50 / p95 / p99 per variant", "B"): _e("model_version", **BOTH_MV),
    ("Latency p50 / p95 / p99 per variant", "C"): _e("model_version", **BOTH_MV),
    ("Model inference time per batch (p95)", "A"): _e("variant", **BOTH_V),
    ("Adaptive batch size per variant", "A"): _e("variant", **BOTH_V),
    ("Adaptive batch size per variant", "B"): _e("variant", **BOTH_V),
    ("Request outcomes by endpoint", "A"): _e(
        "endpoint",
        "outcome",
        present={
            "endpoint": frozenset({"predict", "feedback"}),
            "outcome": frozenset({"success", "client_error"}),
        },
    ),
    ("Server error ratio by endpoint", "A"): _e(
        "endpoint", present={"endpoint": frozenset({"predict", "feedback"})}
    ),
    ("Errors by kind", "A"): _e(
        "kind",
        data=False,
        why="nothing here provokes an error the service counts: invalid bodies "
        "are refused by BentoML's input validation before the service code",
    ),
    ("Fallback rate", "A"): _e(
        "experiment",
        "from_variant",
        "to_variant",
        data=False,
        why="only when a model service fails",
    ),
    ("Sample-ratio mismatch p-value", "A"): _e("experiment", **EXP),
    ("Canary stage", "A"): _e("experiment", **EXP),
    ("Canary rollbacks", "A"): _e("experiment", **EXP),
    ("Experiment epoch", "A"): _e("experiment", **EXP),
    ("Experiment mode", "A"): _e("experiment", "mode", **EXP),
    ("Variants with mixed models", "A"): _e("experiment", **EXP),
    # The fixture labels 40 answers of each variant, both classes.
    ("Brier score per variant", "A"): _e("experiment", "variant", **BOTH_V),
    ("ROC AUC per variant", "A"): _e(
        "experiment",
        "variant",
        data=False,
        why="the service may need more labels per class than this test posts",
    ),
    ("Labelled exposures per variant", "A"): _e("experiment", "variant", **BOTH_V),
    ("Feedback outcomes", "A"): _e(
        "outcome",
        present={
            "outcome": frozenset({"accepted", "duplicate", "conflict", "unknown_id"})
        },
    ),
    ("Feature PSI per variant", "A"): _e("variant", "feature", **BOTH_V),
    ("Score PSI per variant", "A"): _e("variant", **BOTH_V),
    ("Requests and labels in the drift windows", "A"): _e("variant", **BOTH_V),
    ("Requests and labels in the drift windows", "B"): _e("variant", **BOTH_V),
    ("Labelled Brier: window vs held-out", "A"): _e("variant", **BOTH_V),
    ("Labelled Brier: window vs held-out", "B"): _e("variant", **BOTH_V),
    ("Labelled ROC AUC: window vs held-out", "A"): _e("variant", **BOTH_V),
    ("Labelled ROC AUC: window vs held-out", "B"): _e("variant", **BOTH_V),
    ("Concept drift", "A"): _e("variant", **BOTH_V),
    ("Model service reachable", "A"): _e("variant", **BOTH_V),
    ("Deployed models", "A"): _e("variant", "tag", "algorithm", **BOTH_V),
    ("Metrics self-check", "A"): _e("instance"),
    ("Workers reporting metrics", "A"): _e("instance"),
    ("Workers reporting metrics", "B"): _e("instance"),
    ("Rate-limited requests per API key", "A"): _e(
        "key", data=False, why="this server runs without API keys"
    ),
}

# Recording rules by name; `{w}` is the window. The expectation holds both for
# the rule's expression and for the series Prometheus recorded under its name.
RULE_EXPECTATIONS: dict[str, Expect] = {
    "variant_feature:churn_ab_feature_psi:max": _e(
        "job", "variant", "feature", **BOTH_V
    ),
    "variant:churn_ab_score_psi:max": _e("job", "variant", **BOTH_V),
    "variant:churn_ab_drift_window_requests:max": _e("job", "variant", **BOTH_V),
    "model_version:predictions:rate{w}": _e("job", "model_version", **BOTH_MV),
    "job:predictions:rate{w}": _e("job"),
    "model_version:prediction_latency_seconds:p50_{w}": _e(
        "job", "model_version", **BOTH_MV
    ),
    "model_version:prediction_latency_seconds:p95_{w}": _e(
        "job", "model_version", **BOTH_MV
    ),
    "model_version:prediction_latency_seconds:p99_{w}": _e(
        "job", "model_version", **BOTH_MV
    ),
    "model_version:churn_predictions:ratio_rate{w}": _e(
        "job", "model_version", **BOTH_MV
    ),
    "endpoint_outcome:churn_ab_requests:rate{w}": _e(
        "job",
        "endpoint",
        "outcome",
        present={"outcome": frozenset({"success", "client_error"})},
    ),
    "endpoint:churn_ab_request_failures_per_requests:ratio_rate{w}": _e(
        "job", "endpoint", present={"endpoint": frozenset({"predict"})}
    ),
    "experiment_variant:churn_ab_assignments:rate{w}": _e(
        "job", "experiment", "variant", **BOTH_V
    ),
    "experiment_variant:churn_ab_assignments:ratio_rate{w}": _e(
        "job", "experiment", "variant", **BOTH_V
    ),
    "experiment_variant:churn_ab_fallbacks_per_assignments:ratio_rate{w}": _e(
        "job", "experiment", "variant", **BOTH_V
    ),
}

LATENCY_BUCKETS = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]  # fmt: skip
BATCH_BUCKETS = [2.0**i for i in range(11)]
# Sample name -> label names it must carry, once our traffic has run.
EXPOSED_AFTER_TRAFFIC: dict[str, set[str]] = {
    "predictions_total": {"model_version"},
    "prediction_latency_seconds_bucket": {"model_version", "le"},
    "churn_predictions_total": {"model_version", "prediction"},
    "churn_ab_requests_total": {"endpoint", "outcome"},
    "churn_ab_assignments_total": {"experiment", "variant", "unit"},
    "churn_ab_errors_total": {"kind"},
    "churn_ab_batch_size_bucket": {"variant", "le"},
    "churn_ab_model_inference_seconds_bucket": {"variant", "le"},
    "churn_ab_model_rows_total": {"variant", "api"},
    "churn_ab_variant_weight_ratio": {"experiment", "variant"},
    "churn_ab_canary_stage": {"experiment"},
    "churn_ab_canary_rollbacks_total": {"experiment"},
    "churn_ab_srm_p_value": {"experiment"},
    "churn_ab_experiment_info": {"experiment", "mode"},
    "churn_ab_experiment_epoch": {"experiment"},
    "churn_ab_model_info": {"variant", "tag", "algorithm"},
    "churn_ab_model_up": {"variant"},
    "churn_ab_feature_psi": {"feature", "variant"},
    "churn_ab_score_psi": {"variant"},
    "churn_ab_drift_window_requests": {"variant"},
    "churn_ab_concept_window_labels": {"variant"},
    "churn_ab_concept_drift": {"variant"},
    "churn_ab_metrics_self_check": set(),
    "churn_ab_metrics_writers": set(),
    "churn_ab_metrics_expected_writers": set(),
}


# --------------------------------------------------------------------------
# Traffic


@dataclass
class Traffic:
    answered: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    unexpected: list[str] = field(default_factory=list)
    # (request_id, model_version) of the answers, for feedback.
    exposures: list[tuple[str, str]] = field(default_factory=list)
    feedback_status: Counter[int] = field(default_factory=Counter)

    def send(self, client: httpx.Client, i: int) -> None:
        if i % 10 == 9:
            # Wrong type for a numeric field: a client error, never a 5xx.
            body: dict[str, Any] = CUSTOMER | {"tenure": "not a number"}
        else:
            body = dict(LOYAL if i % 3 == 0 else CUSTOMER)
            if i % 2 == 0:
                # Sticky assignment by customer; the others are per request.
                body["customerID"] = f"live-monitoring-{i % 97}"
        resp = client.post("/predict", json=body)
        if i % 10 == 9:
            if 400 <= resp.status_code < 500:
                self.rejected += 1
            else:
                self.unexpected.append(f"invalid body -> {resp.status_code}")
        elif resp.status_code == 200:
            answer = resp.json()
            self.answered[answer["model_version"]] += 1
            self.exposures.append((answer["request_id"], answer["model_version"]))
        else:
            self.unexpected.append(f"{resp.status_code}: {resp.text[:200]}")

    def label(self, client: httpx.Client, per_variant: int = 40) -> None:
        """Post churn labels for some answers of each variant, alternating the
        class so each variant has both; then one duplicate, one conflicting
        label and one unknown request id, which the service must refuse."""
        by_variant: dict[str, list[str]] = {}
        for request_id, variant in self.exposures:
            by_variant.setdefault(variant, []).append(request_id)
        first = None
        for ids in by_variant.values():
            for k, request_id in enumerate(ids[:per_variant]):
                self._feedback(client, request_id, churned=k % 2 == 0)
                first = first or (request_id, k % 2 == 0)
        assert first is not None, "no answers to label"
        request_id, churned = first
        self._feedback(client, request_id, churned=churned)  # duplicate
        self._feedback(client, request_id, churned=not churned)  # conflict
        self._feedback(client, "no-such-request-id", churned=True)  # unknown_id

    def _feedback(self, client: httpx.Client, request_id: str, churned: bool) -> None:
        resp = client.post(
            "/feedback", json={"request_id": request_id, "churned": churned}
        )
        self.feedback_status[resp.status_code] += 1


@dataclass
class Live:
    prometheus: PrometheusServer
    service_url: str
    traffic: Traffic
    # Answers per variant during the burst, before the trickle started.
    burst: Counter[str]
    rule_files: list[Path]


@pytest.fixture(scope="module")
def live(bento_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    service_url = str(bento_server.url).rstrip("/")
    target = urlsplit(service_url).netloc
    rule_files = render_rules(tmp_path_factory.mktemp("rules"), RULE_CONFIG)
    port = free_port()
    server = PrometheusServer(
        jobs=[
            ScrapeJob(JOB, [target]),
            ScrapeJob("prometheus", [f"127.0.0.1:{port}"]),
        ],
        rule_files=rule_files,
        port=port,
    )
    traffic = Traffic()
    stop = threading.Event()
    with server, httpx.Client(base_url=service_url, timeout=30) as client:
        assert server.wait_for(f'up{{job="{JOB}"}} == 1', timeout=30), server.log()
        # The service may be shared with earlier tests: what it counted before
        # our traffic, so the waits below wait for our traffic on top of it.
        baseline = _scraped_predictions(server)
        started, i = time.monotonic(), 0
        while time.monotonic() - started < BURST_SECONDS and i < BURST_MAX_REQUESTS:
            traffic.send(client, i)
            i += 1

        def trickle(start: int) -> None:
            # Keeps the 30s windows non-empty while the queries run; bounded
            # by the module's lifetime and by a hard cap on requests.
            with httpx.Client(base_url=service_url, timeout=30) as c:
                for j in range(start, start + 1500):
                    if stop.wait(TRICKLE_INTERVAL):
                        return
                    traffic.send(c, j)

        burst = Counter(traffic.answered)
        traffic.label(client)
        worker = threading.Thread(target=trickle, args=(i,), daemon=True)
        worker.start()
        try:
            for variant, sent in burst.items():
                wanted = baseline.get(variant, 0.0) + sent
                scraped = server.wait_for(
                    f'sum(predictions_total{{job="{JOB}", model_version="{variant}"}})'
                    f" >= {wanted}",
                    timeout=30,
                )
                assert scraped, f"{variant}: the burst never reached {wanted}"
            # A series our traffic created (v2's first churn prediction, say)
            # reaches a recorded rule only after two scrapes and one more
            # evaluation; wait for exactly what the tests check.
            _wait_until_expected(server, _rule_cases(rule_files) + _panel_cases())
            yield Live(server, service_url, traffic, burst, rule_files)
        finally:
            stop.set()
            worker.join(timeout=30)
    # Stopped by its PID: nothing may still listen on its port.
    assert server.process is not None and server.process.returncode is not None
    assert not port_is_open(port), f"prometheus still listens on {port}"


def _scraped_predictions(server: PrometheusServer) -> dict[str, float]:
    return {
        s["metric"]["model_version"]: float(s["value"][1])
        for s in server.query(
            f'sum by (model_version) (predictions_total{{job="{JOB}"}})'
        )
    }


def _wait_until_expected(
    server: PrometheusServer, cases: list[tuple[str, str, Expect]], timeout: float = 30
) -> None:
    """Poll until every case meets its expectation or ``timeout`` passes; the
    tests then assert, and report what is still missing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        failures, _ = _check_all(server, cases)
        if not failures:
            return
        time.sleep(0.5)


# --------------------------------------------------------------------------
# Checks


def _violations(result: list[dict[str, Any]], expect: Expect) -> list[str]:
    problems = []
    if expect.data and not result:
        problems.append("no series")
    seen: dict[str, set[str]] = {}
    for series in result:
        labels = {k: v for k, v in series["metric"].items() if k != "__name__"}
        if set(labels) != expect.labels:
            problems.append(f"labels {sorted(labels)} != {sorted(expect.labels)}")
        for name, allowed in expect.values.items():
            if labels.get(name) not in allowed:
                problems.append(f"{name}={labels.get(name)!r} not in {sorted(allowed)}")
        for name, value in labels.items():
            seen.setdefault(name, set()).add(value)
    for name, required in expect.present.items():
        missing = required - seen.get(name, set())
        if missing:
            problems.append(f"{name} values {sorted(missing)} missing")
    return problems


def _check_all(
    prometheus: PrometheusServer, cases: list[tuple[str, str, Expect]]
) -> tuple[list[str], list[str]]:
    """Evaluate (name, expr, expectation) cases; return failures and, for the
    report, the cases allowed to be empty that were empty."""
    failures, empty = [], []
    for name, expr, expect in cases:
        try:
            result = prometheus.query(expr)
        except Exception as err:
            failures.append(f"{name}: query failed: {err}\n    {expr}")
            continue
        problems = _violations(result, expect)
        if problems:
            failures.append(f"{name}: {'; '.join(problems)}\n    {expr}")
        elif not result:
            empty.append(f"{name} ({expect.why})")
    return failures, empty


def test_traffic_reached_both_variants_and_was_scraped(live: Live) -> None:
    assert not live.traffic.unexpected, live.traffic.unexpected[:5]
    assert set(live.burst) == VARIANTS, live.burst
    assert live.traffic.rejected > 0
    # Labels: accepted or duplicate (200), one conflict (409), one unknown (404).
    status = live.traffic.feedback_status
    assert status[409] == 1 and status[404] == 1, status
    assert set(status) == {200, 404, 409}, status
    scraped = {
        s["metric"]["model_version"]: float(s["value"][1])
        for s in live.prometheus.query(
            f'sum by (model_version) (predictions_total{{job="{JOB}"}})'
        )
    }
    # Other tests may share the service, so Prometheus can count more than we
    # sent, never less: the metric adds up across workers.
    for variant, sent in live.burst.items():
        assert scraped.get(variant, 0) >= sent, (variant, scraped, sent)


def test_metrics_endpoint_exposes_the_contract(live: Live) -> None:
    text = httpx.get(f"{live.service_url}/metrics", timeout=30).text
    families = list(text_string_to_metric_families(text))
    samples: dict[str, list[dict[str, str]]] = {}
    for family in families:
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample.labels)
    for name, labels in EXPOSED_AFTER_TRAFFIC.items():
        assert name in samples, f"{name} not exposed"
        for sample_labels in samples[name]:
            assert set(sample_labels) == labels, (name, sample_labels)
    types = {f.name: f.type for f in families}
    assert types.get("predictions") == "counter"
    assert types.get("churn_predictions") == "counter"
    assert types.get("prediction_latency_seconds") == "histogram"
    assert types.get("churn_ab_batch_size") == "histogram"
    latency_le = {s["le"] for s in samples["prediction_latency_seconds_bucket"]}
    assert {float(le) for le in latency_le} == {
        *map(float, LATENCY_BUCKETS),
        float("inf"),
    }
    batch_le = {s["le"] for s in samples["churn_ab_batch_size_bucket"]}
    assert {float(le) for le in batch_le} == {*BATCH_BUCKETS, float("inf")}
    for sample_labels in samples["predictions_total"]:
        assert sample_labels["model_version"] in VARIANTS
    # Label values come from small fixed sets: never a customer id.
    assert "live-monitoring-" not in text


def test_expectation_tables_cover_every_panel_query_and_rule(live: Live) -> None:
    dashboard = json.loads(DASHBOARD_FILE.read_text())
    queries = {(title, ref) for title, ref, _ in dashboard_targets(dashboard)}
    assert queries == set(DASHBOARD_EXPECTATIONS)
    records = {r["record"] for r in rules_of(live.rule_files[0])}
    assert records == {name.format(w=WINDOW) for name in RULE_EXPECTATIONS}


def _panel_cases() -> list[tuple[str, str, Expect]]:
    dashboard = json.loads(DASHBOARD_FILE.read_text())
    return [
        (
            f"{title} [{ref}]",
            concrete_dashboard_expr(expr, WINDOW, GRAFANA_VARIABLES),
            DASHBOARD_EXPECTATIONS[(title, ref)],
        )
        for title, ref, expr in dashboard_targets(dashboard)
    ]


def _rule_cases(rule_files: list[Path]) -> list[tuple[str, str, Expect]]:
    """Each recording rule twice: its expression, and the series recorded."""
    rules = rules_of(rule_files[0])
    by_name = {name.format(w=WINDOW): e for name, e in RULE_EXPECTATIONS.items()}
    cases = [(r["record"], r["expr"], by_name[r["record"]]) for r in rules]
    cases += [
        (f"recorded {r['record']}", r["record"], by_name[r["record"]]) for r in rules
    ]
    return cases


def test_every_dashboard_query_evaluates_with_the_expected_labels(live: Live) -> None:
    failures, empty = _check_all(live.prometheus, _panel_cases())
    assert not failures, "\n".join(failures)
    # Allowed-empty panels are listed in the output, not silently skipped.
    print("empty, as allowed:", *empty, sep="\n  ")


def test_every_recording_rule_evaluates_and_records(live: Live) -> None:
    failures, empty = _check_all(live.prometheus, _rule_cases(live.rule_files))
    assert not failures, "\n".join(failures)
    assert not empty


def test_all_rules_and_alerts_load_and_evaluate_without_error(live: Live) -> None:
    expected = {
        r.get("record") or r["alert"] for f in live.rule_files for r in rules_of(f)
    }
    loaded = {}
    for group in live.prometheus.rule_groups():
        for rule in group["rules"]:
            loaded[rule["name"]] = rule
    assert set(loaded) == expected
    for name, rule in loaded.items():
        assert rule["health"] == "ok", (name, rule.get("lastError"))
    firing = [
        n
        for n, r in loaded.items()
        if r["type"] == "alerting" and r["state"] == "firing"
    ]
    assert not firing, firing
