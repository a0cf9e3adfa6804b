"""The deploy/k8s kustomization, run: rendered by `kubectl kustomize` with the
locally built image (the documented `kustomize edit set image` step, as an
overlay) and played by `podman kube play` on a throw-away node.

podman 4.3 plays the Deployment (one pod per replica), its ConfigMap
(envFrom) and, through a podman secret made as `kubectl create secret` would
be, the Secret it references. It has no cluster network: it publishes each
containerPort on the node itself, so the node is a network namespace of its
own (host_support.Netns) and the overlay asks for one replica, as two pods on
one node would want the same port. It does not run probes (it turns the
liveness probe into a healthcheck, with named ports unresolved and `curl`,
which the image lacks), so the test runs each probe of the manifest itself,
as the kubelet would. The Namespace, Service, PodDisruptionBudget and
HorizontalPodAutoscaler mean nothing to podman; they stay validated offline
(tests/unit/test_deploy_k8s.py).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from host_support import Netns
from image_support import DEPLOY, PREFIX, TIMINGS, Tools, check_prediction, timed

from churn_features.schema import EXAMPLE_CUSTOMER

# Image builds and exports are slow on 2 busy cores: more than the default 600 s.
pytestmark = [pytest.mark.image, pytest.mark.timeout(1500)]

POD = "churn-ab-pod-0"  # podman's name for the Deployment's first replica
CONTAINER = f"{POD}-churn-ab"
SECRET = "churn-ab-secrets"


def _render(image: str, overlay: Path) -> list[dict[str, Any]]:
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl (>= 1.27, for `kubectl kustomize`) is not on PATH")
    name, tag = image.rsplit(":", 1)
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(DEPLOY / "k8s", overlay)],
                "images": [{"name": "churn-ab", "newName": name, "newTag": tag}],
                "replicas": [{"name": "churn-ab", "count": 1}],
            }
        )
    )
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


@dataclass
class Played:
    base_url: str
    deployment: dict[str, Any]
    config: dict[str, str]
    token: str


@pytest.fixture(scope="module")
def played(
    tools: Tools, image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Played]:
    work = tmp_path_factory.mktemp("kube")
    documents = _render(image, work / "overlay")
    kinds = sorted(doc["kind"] for doc in documents)
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Namespace",
        "PodDisruptionBudget",
        "Service",
    ]
    manifest = work / "churn-ab.yaml"
    manifest.write_text(yaml.safe_dump_all(documents))
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    config = next(d for d in documents if d["kind"] == "ConfigMap")["data"]

    # `kubectl create secret generic` for podman: the data a Secret holds,
    # base64 values, read from stdin (never on a command line). One pod, so
    # no shared PostgreSQL: an empty ledger-url means the pod's SQLite file.
    token = secrets.token_urlsafe(24)
    data = {"admin-token": token, "ledger-url": ""}
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    subprocess.run(
        ["podman", "secret", "create", SECRET, "-"],
        input=json.dumps(encoded),
        env=tools.env,
        capture_output=True,
        text=True,
        check=True,
    )
    network = f"{PREFIX}-kube-{secrets.token_hex(3)}"
    # podman builds its pause image (catatonit) on first use: ours to remove.
    images = ["podman", "images", "--format", "{{.Repository}}:{{.Tag}}"]
    before = set(tools.run(*images).stdout.split())
    node = Netns.create("node", 20)
    try:
        tools.run("podman", "network", "create", network)
        timed(
            "podman kube play",
            [
                *node.enter(),
                "podman",
                "kube",
                "play",
                "--network",
                network,
                str(manifest),
            ],
            tools.env,
            timeout=180,
        )
        yield Played(f"http://{node.inner}:3000", deployment, config, token)
    finally:
        down = [*node.enter(), "podman", "kube", "down", str(manifest)]
        subprocess.run(down, env=tools.env, capture_output=True, timeout=120)
        tools.run("podman", "pod", "rm", "-f", "-t", "5", POD, check=False)
        tools.run("podman", "secret", "rm", SECRET, check=False)
        tools.run("podman", "network", "rm", "-f", network, check=False)
        outlived = node.delete()
        for ref in set(tools.run(*images).stdout.split()) - before:
            if "podman-pause" in ref:
                tools.run("podman", "rmi", ref, check=False)
    assert not outlived, f"processes outlived the kube node: {outlived}"
    assert not node.exists()


def _container(played: Played) -> dict[str, Any]:
    return dict(played.deployment["spec"]["template"]["spec"]["containers"][0])


def _probe_url(played: Played, probe: dict[str, Any]) -> str:
    port = probe["httpGet"]["port"]
    if isinstance(port, str):  # a named port, as the kubelet resolves it
        port = next(
            p["containerPort"] for p in _container(played)["ports"] if p["name"] == port
        )
    host = played.base_url.rsplit(":", 1)[0]
    return f"{host}:{port}{probe['httpGet']['path']}"


def _probe_passes(played: Played, probe: dict[str, Any]) -> bool:
    try:
        response = httpx.get(
            _probe_url(played, probe), timeout=probe.get("timeoutSeconds", 1)
        )
    except httpx.TransportError:
        return False
    return 200 <= response.status_code < 400


def test_the_pod_starts_within_its_startup_probe_budget(played: Played) -> None:
    probe = _container(played)["startupProbe"]
    budget = probe["periodSeconds"] * probe["failureThreshold"]
    started = time.monotonic()
    while not _probe_passes(played, probe):
        assert time.monotonic() - started < budget, "startup probe never passed"
        time.sleep(probe["periodSeconds"])
    TIMINGS["pod started (kube play)"] = time.monotonic() - started


@pytest.mark.parametrize("kind", ["livenessProbe", "readinessProbe"])
def test_probes_pass(played: Played, kind: str) -> None:
    probe = _container(played)[kind]
    # The startup probe gates the others; readiness may take a moment more.
    deadline = time.monotonic() + probe["periodSeconds"] * probe["failureThreshold"]
    while not _probe_passes(played, probe):
        assert time.monotonic() < deadline, f"{kind} failed"
        time.sleep(1)


def test_predict_answers(played: Played) -> None:
    check_prediction(
        httpx.post(
            f"{played.base_url}/predict", json=dict(EXAMPLE_CUSTOMER), timeout=30
        )
    )


def test_the_pod_runs_as_the_manifest_says(tools: Tools, played: Played) -> None:
    context = played.deployment["spec"]["template"]["spec"]["securityContext"]
    ids = tools.run("podman", "exec", CONTAINER, "id", "-u").stdout.strip()
    assert ids == str(context["runAsUser"])
    env = tools.run("podman", "exec", CONTAINER, "env").stdout.splitlines()
    for key, value in played.config.items():  # the ConfigMap, through envFrom
        assert f"{key}={value}" in env


def test_the_secret_reaches_the_admin_api(played: Played) -> None:
    url = f"{played.base_url}/ab-test/weights"
    body = {"weights": {"v1": 0.5, "v2": 0.5}, "reason": "kube play test"}
    assert httpx.post(url, json=body, timeout=30).status_code in (401, 403)
    granted = httpx.post(
        url, json=body, headers={"Authorization": f"Bearer {played.token}"}, timeout=30
    )
    assert granted.status_code == 200, granted.text
