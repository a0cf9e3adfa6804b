"""deploy/compose.yaml for real: the API image and Prometheus (built from
Debian's package by deploy/prometheus-image.sh) under podman-compose.

Prometheus scrapes the API by its compose service name, loads the rule files
from prometheus/, and an induced sample-ratio mismatch fires the
ChurnAbSampleRatioMismatch alert. Grafana is left out: its image cannot be
pulled here (its provisioning is checked offline by
tests/integration/test_grafana_provisioning.py).

Test-only change, so the alert fires within seconds: the Prometheus folder is
mounted from a copy where the scrape and evaluation intervals are 2 s
instead of 15 s and the alert's ``for:`` is 5 s instead of 15 m. Every
expression is the repository's (asserted below).
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from image_support import (
    DEPLOY,
    PREFIX,
    REPO,
    TIMINGS,
    Tools,
    check_prediction,
    timed,
    wait_ready,
)

from churn_features.schema import EXAMPLE_CUSTOMER
from harness.processes import free_port

# Image builds and exports are slow on 2 busy cores: more than the default 600 s.
pytestmark = [pytest.mark.image, pytest.mark.timeout(1500)]

ALERT = "ChurnAbSampleRatioMismatch"
FAST_INTERVAL = "2s"
FAST_FOR = "5s"


def _fast_prometheus_folder(target: Path) -> Path:
    """A copy of prometheus/ that evaluates ALERT within seconds."""
    target.mkdir()
    config = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = FAST_INTERVAL
    config["global"]["evaluation_interval"] = FAST_INTERVAL
    (target / "prometheus.yml").write_text(yaml.safe_dump(config))
    (target / "rules").mkdir()
    for rules in (REPO / "prometheus" / "rules").glob("*.yml"):
        groups = yaml.safe_load(rules.read_text())
        for group in groups["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == ALERT:
                    rule["for"] = FAST_FOR
        (target / "rules" / rules.name).write_text(yaml.safe_dump(groups))
    return target


def _repo_rules() -> dict[str, str]:
    """name -> expression of every recording and alerting rule in prometheus/."""
    found: dict[str, str] = {}
    for rules in (REPO / "prometheus" / "rules").glob("*.yml"):
        for group in yaml.safe_load(rules.read_text())["groups"]:
            for rule in group["rules"]:
                found[rule.get("alert") or rule["record"]] = rule["expr"]
    return found


@dataclass
class Stack:
    api: str
    prometheus: str
    token: str

    def query(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.prometheus}{path}", params=params, timeout=10)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]


def _until(what: str, check: Any, deadline_s: float = 60) -> Any:
    """Poll ``check()`` until it returns something truthy."""
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        found = check()
        if found:
            return found
        time.sleep(1)
    pytest.fail(f"{what}: not within {deadline_s:.0f} s")


@pytest.fixture(scope="module")
def stack(
    tools: Tools,
    image: str,
    prometheus_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("compose")
    fast = _fast_prometheus_folder(work / "prometheus")
    override = work / "compose.test.yaml"
    override.write_text(
        yaml.safe_dump(
            {"services": {"prometheus": {"volumes": [f"{fast}:/etc/prometheus:ro"]}}}
        )
    )
    compose = [sys.executable, "-m", "podman_compose"]
    project = f"{PREFIX}-{secrets.token_hex(3)}"
    api_port, prometheus_port = free_port(), free_port()
    token = secrets.token_urlsafe(24)
    env = tools.env | {
        "CHURN_AB_IMAGE": image,
        "PROMETHEUS_IMAGE": prometheus_image,
        "CHURN_AB_PORT": str(api_port),
        "PROMETHEUS_PORT": str(prometheus_port),
        "GRAFANA_ADMIN_PASSWORD": secrets.token_urlsafe(12),
        "CHURN_AB_ADMIN_TOKEN": token,
    }
    files = ["-p", project, "-f", str(DEPLOY / "compose.yaml"), "-f", str(override)]
    api = f"{project}_churn-ab_1"
    try:
        timed(
            "compose up churn-ab prometheus",
            [*compose, *files, "up", "-d", "churn-ab", "prometheus"],
            env,
            timeout=180,
        )
        base_url = f"http://127.0.0.1:{api_port}"
        waited = wait_ready(base_url, lambda: tools.alive(api))
        TIMINGS["server ready (compose)"] = waited
        assert waited >= 0, tools.run("podman", "logs", api, check=False).stderr
        yield Stack(base_url, f"http://127.0.0.1:{prometheus_port}", token)
    finally:
        down = subprocess.run(
            [*compose, *files, "down", "-v"],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert down.returncode == 0, down.stderr
    volumes = tools.run("podman", "volume", "ls", "--format", "{{.Name}}").stdout
    networks = tools.run("podman", "network", "ls", "--format", "{{.Name}}").stdout
    assert project not in volumes + networks


def test_the_test_rules_differ_from_the_repository_only_in_timing(
    tmp_path: Path,
) -> None:
    fast = _fast_prometheus_folder(tmp_path / "prometheus")
    repo = _repo_rules()
    for rules in (fast / "rules").glob("*.yml"):
        for group in yaml.safe_load(rules.read_text())["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule["record"]
                assert rule["expr"] == repo.pop(name)
    assert not repo, f"rules missing from the test copy: {sorted(repo)}"


def test_api_answers_with_its_healthcheck_and_ledger_volume(
    tools: Tools, stack: Stack
) -> None:
    container = next(
        n
        for n in tools.run("podman", "ps", "--format", "{{.Names}}").stdout.split()
        if n.startswith(PREFIX) and n.endswith("_churn-ab_1")
    )
    # No systemd here to schedule health checks: run the compose one once.
    health = tools.run("podman", "healthcheck", "run", container, check=False)
    assert health.returncode == 0, health.stdout + health.stderr
    customer = dict(EXAMPLE_CUSTOMER)
    check_prediction(httpx.post(f"{stack.api}/predict", json=customer, timeout=30))
    # The ledger's volume is mounted and writable by the unprivileged user.
    probe = tools.run(
        "podman",
        "exec",
        container,
        "sh",
        "-c",
        "test -w /home/bentoml/var && id -un",
        check=False,
    )
    assert probe.returncode == 0 and probe.stdout.strip() == "bentoml", probe


def test_prometheus_scrapes_the_api_by_its_service_name(stack: Stack) -> None:
    def scraped() -> list[dict[str, Any]]:
        targets = stack.query("/api/v1/targets")["activeTargets"]
        return [
            t
            for t in targets
            if t["labels"]["job"] == "churn-ab" and t["health"] == "up"
        ]

    (target,) = _until("churn-ab target up", scraped)
    assert target["scrapeUrl"] == "http://churn-ab:3000/metrics"
    up = stack.query("/api/v1/query", query='up{job="churn-ab"}')["result"]
    assert [sample["value"][1] for sample in up] == ["1"]


def test_prometheus_loaded_every_rule_of_the_repository(stack: Stack) -> None:
    groups = stack.query("/api/v1/rules")["groups"]
    loaded = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert set(loaded) == set(_repo_rules())
    assert all(rule["health"] != "err" for rule in loaded.values()), loaded


def test_an_induced_sample_ratio_mismatch_fires_the_alert(stack: Stack) -> None:
    def firing() -> list[dict[str, Any]]:
        alerts = stack.query("/api/v1/alerts")["alerts"]
        return [
            a
            for a in alerts
            if a["labels"]["alertname"] == ALERT and a["state"] == "firing"
        ]

    admin = {"Authorization": f"Bearer {stack.token}"}
    # A fresh 50/50 epoch through the admin API (the token reached the API
    # through compose's pass-through): no mismatch, no alert.
    denied = httpx.post(
        f"{stack.api}/ab-test/weights",
        json={"weights": {"v1": 0.5, "v2": 0.5}},
        timeout=30,
    )
    assert denied.status_code in (401, 403), denied.text
    fresh = httpx.post(
        f"{stack.api}/ab-test/weights",
        json={"weights": {"v1": 0.5, "v2": 0.5}, "reason": "image test: fresh epoch"},
        headers=admin,
        timeout=30,
    )
    assert fresh.status_code == 200, fresh.text
    # Several evaluations after the new epoch was scraped, and still quiet.
    time.sleep(6)
    assert not firing()

    # The leak: one customer replayed 40 times (say, a client retrying
    # without an idempotency key) lands 40:0 on one variant of a 50/50 split.
    customer = dict(EXAMPLE_CUSTOMER) | {"customerID": "srm-replay"}
    for _ in range(40):
        check_prediction(httpx.post(f"{stack.api}/predict", json=customer, timeout=30))
    srm = httpx.get(f"{stack.api}/ab-test/stats", timeout=30).json()["srm"]
    assert srm["alarm"] is True and srm["p_value"] < 0.001, srm

    (alert,) = _until(f"{ALERT} firing", firing)
    assert alert["labels"]["experiment"] == "churn-v1-vs-v2"
    assert float(alert["value"]) < 0.001
