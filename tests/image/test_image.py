"""The OCI image end to end: it starts, answers the API, exposes metrics, and
the compose file brings it up with its health check and ledger volume."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest
from image_support import (
    DEPLOY,
    PREFIX,
    TIMINGS,
    Running,
    Tools,
    timed,
    wait_ready,
)

from churn_features.schema import EXAMPLE_CUSTOMER
from harness.processes import free_port

pytestmark = pytest.mark.image

CUSTOMER = dict(EXAMPLE_CUSTOMER)


def _check_prediction(response: httpx.Response) -> dict[str, object]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] in {"v1", "v2"}
    probability = body["churn_probability"]
    assert isinstance(probability, float) and 0.0 <= probability <= 1.0
    assert body["prediction"] == int(body["will_churn"])
    assert body["will_churn"] == (body["prediction"] == 1)
    return dict(body)


def test_probes_answer(api: Running) -> None:
    assert httpx.get(f"{api.base_url}/livez", timeout=5).status_code == 200
    assert httpx.get(f"{api.base_url}/readyz", timeout=5).status_code == 200


def test_predict_answers_the_sample_customer(api: Running) -> None:
    _check_prediction(httpx.post(f"{api.base_url}/predict", json=CUSTOMER, timeout=30))


def test_predict_rejects_an_invalid_customer(api: Running) -> None:
    bad = CUSTOMER | {"Contract": "Forever"}
    response = httpx.post(f"{api.base_url}/predict", json=bad, timeout=30)
    assert 400 <= response.status_code < 500, response.text
    assert "Traceback" not in response.text


def test_health(api: Running) -> None:
    response = httpx.get(f"{api.base_url}/health", timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()


def test_metrics_count_predictions(api: Running) -> None:
    for _ in range(3):
        _check_prediction(
            httpx.post(f"{api.base_url}/predict", json=CUSTOMER, timeout=30)
        )
    response = httpx.get(f"{api.base_url}/metrics", timeout=10)
    assert response.status_code == 200
    samples = [
        float(m.group(1))
        for m in re.finditer(
            r"^\w*predictions_total\{[^}]*\} (\S+)$", response.text, re.M
        )
    ]
    # At least the three predictions above (other tests may have added more).
    assert sum(samples) >= 3, response.text[:2000]


def test_compose_brings_up_the_api_with_its_healthcheck(
    tools: Tools, image: str
) -> None:
    """podman-compose starts the `churn-ab` service of deploy/compose.yaml from
    the local image. Prometheus and Grafana are left out: their images cannot
    be pulled on a machine without a registry."""
    compose = [sys.executable, "-m", "podman_compose"]
    project = f"{PREFIX}-{secrets.token_hex(3)}"
    port = free_port()
    env = tools.env | {
        "CHURN_AB_IMAGE": image,
        "CHURN_AB_PORT": str(port),
        "GRAFANA_ADMIN_PASSWORD": secrets.token_urlsafe(12),
        "CHURN_AB_ADMIN_TOKEN": secrets.token_urlsafe(24),
    }
    files = ["-p", project, "-f", str(DEPLOY / "compose.yaml")]
    container = f"{project}_churn-ab_1"
    try:
        timed("compose up churn-ab", [*compose, *files, "up", "-d", "churn-ab"], env)
        base_url = f"http://127.0.0.1:{port}"

        waited = wait_ready(base_url, lambda: tools.alive(container))
        TIMINGS["server ready (compose)"] = waited
        assert waited >= 0, tools.run("podman", "logs", container, check=False).stderr
        # No systemd here to schedule health checks: run the compose one once.
        health = tools.run("podman", "healthcheck", "run", container, check=False)
        assert health.returncode == 0, health.stdout + health.stderr
        _check_prediction(httpx.post(f"{base_url}/predict", json=CUSTOMER, timeout=30))
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
    finally:
        down = subprocess.run(
            [*compose, *files, "down", "-v"], env=env, capture_output=True, text=True
        )
    assert down.returncode == 0, down.stderr
    volumes = tools.run("podman", "volume", "ls", "--format", "{{.Name}}").stdout
    networks = tools.run("podman", "network", "ls", "--format", "{{.Name}}").stdout
    assert project not in volumes + networks


def test_oci_archive_round_trip(tools: Tools, image: str, tmp_path: Path) -> None:
    """The archive `make image-archive` writes loads, under its versioned name,
    into an empty image store, as it would on a deploy host."""
    archive = tmp_path / "churn-ab.oci.tar"
    timed(
        "export oci-archive",
        [str(DEPLOY / "export-image.sh"), image, str(archive)],
        tools.env,
    )
    # podman refuses a runroot longer than 50 characters: pytest's are longer.
    runroot = tempfile.mkdtemp(prefix=f"{PREFIX}-run-")
    store = ["--root", str(tmp_path / "root"), "--runroot", runroot]
    try:
        loaded = tools.run("podman", *store, "load", "-i", str(archive))
        match = re.search(r"Loaded image(?:\(s\))?: (\S+)", loaded.stdout)
        assert match, loaded.stdout + loaded.stderr
        assert match.group(1) == image
        inspect = tools.run("podman", *store, "image", "inspect", image, check=False)
        assert inspect.returncode == 0, inspect.stderr
    finally:
        tools.run("podman", *store, "rmi", "-a", "-f", check=False)
        shutil.rmtree(runroot, ignore_errors=True)
