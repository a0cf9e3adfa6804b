"""The OCI image end to end: it starts, answers the API, exposes metrics, and
its archive loads into an empty store. The compose stack, the deploy to a
host and the Kubernetes manifests have their own files here."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx
import pytest
from image_support import (
    PREFIX,
    Running,
    Tools,
    check_prediction,
)

from churn_features.schema import EXAMPLE_CUSTOMER

# Image builds and exports are slow on 2 busy cores: more than the default 600 s.
pytestmark = [pytest.mark.image, pytest.mark.timeout(1500)]

CUSTOMER = dict(EXAMPLE_CUSTOMER)

# A refusal is one line; BentoML used to print it as the last of 55-58
# traceback lines (tests/e2e/test_startup_errors.py allows the same).
MAX_REFUSAL_LINES = 3


def test_probes_answer(api: Running) -> None:
    assert httpx.get(f"{api.base_url}/livez", timeout=5).status_code == 200
    assert httpx.get(f"{api.base_url}/readyz", timeout=5).status_code == 200


def test_predict_answers_the_sample_customer(api: Running) -> None:
    check_prediction(httpx.post(f"{api.base_url}/predict", json=CUSTOMER, timeout=30))


def test_predict_rejects_an_invalid_customer(api: Running) -> None:
    bad = CUSTOMER | {"Contract": "Forever"}
    response = httpx.post(f"{api.base_url}/predict", json=bad, timeout=30)
    assert 400 <= response.status_code < 500, response.text
    assert "Traceback" not in response.text


def test_the_models_run_where_the_placement_says(api: Running, tools: Tools) -> None:
    """services: one worker per model service; inline: none, the entry
    workers load the models themselves."""
    listing = tools.run("podman", "top", api.name, "args").stdout
    model_workers = {
        model: sum(
            f"--service-name churn_{model}_model" in line
            for line in listing.splitlines()
        )
        for model in ("v1", "v2")
    }
    expected = 1 if api.placement == "services" else 0
    assert model_workers == {"v1": expected, "v2": expected}, listing
    assert "--service-name churn_ab" in listing, listing
    check_prediction(httpx.post(f"{api.base_url}/predict", json=CUSTOMER, timeout=30))


def test_health(api: Running) -> None:
    response = httpx.get(f"{api.base_url}/health", timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()


def test_metrics_count_predictions(api: Running) -> None:
    for _ in range(3):
        check_prediction(
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


def test_oci_archive_round_trip(
    tools: Tools, image: str, archive: Path, tmp_path: Path
) -> None:
    """The archive `make image-archive` writes loads, under its versioned name,
    into an empty image store, as it would on a deploy host."""
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


def test_a_misspelled_setting_stops_the_container_in_one_line(
    tools: Tools, image: str
) -> None:
    """The image's entrypoint ends in ``bentoml serve``: a typo in a setting's
    name stops the container with the host's one line, not a traceback."""
    name = f"{PREFIX}-{secrets.token_hex(4)}"
    # No network: the container must stop before it would listen, and
    # podman adds no firewall rules for it.
    argv = ["podman", "run", "--name", name, "--network", "none"]
    argv += ["-e", "CHURN_AB_WIEGHTS=v1=0.9,v2=0.1", image]
    try:
        run = subprocess.run(
            argv, env=tools.env, capture_output=True, text=True, timeout=300
        )
    except subprocess.TimeoutExpired:
        run = None
    logs = tools.run("podman", "logs", name, check=False)
    tools.run("podman", "rm", "-f", "-t", "5", name, check=False)
    log = logs.stdout + logs.stderr
    assert run is not None, f"the container started instead of refusing:\n{log}"
    lines = [line for line in log.splitlines() if line.strip()]
    assert run.returncode == 2, log
    assert len(lines) <= MAX_REFUSAL_LINES, log
    assert any(
        "unknown setting CHURN_AB_WIEGHTS: did you mean CHURN_AB_WEIGHTS?" in line
        for line in lines
    ), log
    assert "Traceback" not in log
