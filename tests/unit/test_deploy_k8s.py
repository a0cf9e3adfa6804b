"""deploy/k8s: every manifest passes the Kubernetes OpenAPI schemas (strict,
offline, via kubernetes-validate) and the objects agree with each other, with
the service's settings and with the Prometheus job the dashboards select."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OPERATOR = K8S / "prometheus-operator"
# The newest schemas the package ships and an older release clusters still run.
K8S_VERSIONS = ("1.37.0", "1.30.0")
CRD_KINDS = {"ServiceMonitor"}


def _kustomize_resources(directory: Path) -> list[Path]:
    """Files a kustomization lists, following directory (base) entries."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    files: list[Path] = []
    for entry in kustomization["resources"]:
        path = (directory / entry).resolve()
        assert path.exists(), f"{directory}/kustomization.yaml lists missing {entry}"
        files += _kustomize_resources(path) if path.is_dir() else [path]
    return files


def _objects(directory: Path = K8S) -> list[dict[str, Any]]:
    return [
        doc
        for path in _kustomize_resources(directory)
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def _one(kind: str, directory: Path = K8S) -> dict[str, Any]:
    (found,) = [o for o in _objects(directory) if o["kind"] == kind]
    return found


def _container() -> dict[str, Any]:
    (container,) = _one("Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_every_manifest_file_is_listed_in_a_kustomization() -> None:
    listed = set(_kustomize_resources(OPERATOR))
    on_disk = {
        p.resolve() for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml"
    }
    assert listed == on_disk


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_core_objects_pass_the_kubernetes_schemas(version: str) -> None:
    objects = [o for o in _objects(OPERATOR) if o["kind"] not in CRD_KINDS]
    kinds = {o["kind"] for o in objects}
    assert {
        "Namespace",
        "ConfigMap",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    } <= kinds
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


def test_the_schema_check_rejects_a_broken_deployment() -> None:
    broken = copy.deepcopy(_one("Deployment"))
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"][
        "paht"
    ] = "/livez"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[0], strict=True)
    broken = copy.deepcopy(_one("Deployment"))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[0], strict=False)


def test_probes_use_bentoml_endpoints_on_the_served_port() -> None:
    container = _container()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 3000}
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/livez"


def test_resources_are_requested_and_limited() -> None:
    resources = _container()["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert {"cpu", "memory"} <= set(resources["limits"])


def test_secrets_are_references_only() -> None:
    assert not [o for o in _objects(OPERATOR) if o["kind"] == "Secret"]
    env = {e["name"]: e for e in _container()["env"]}
    for name in ("CHURN_AB_ADMIN_TOKEN", "CHURN_AB_LEDGER_URL"):
        assert "value" not in env[name], f"{name} must come from a Secret"
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "churn-ab-secrets"
    config = _one("ConfigMap")
    leaked = {"CHURN_AB_ADMIN_TOKEN", "CHURN_AB_LEDGER_URL"} & set(config["data"])
    assert not leaked


def test_configmap_carries_the_experiment_as_churn_ab_settings() -> None:
    config = _one("ConfigMap")
    assert all(key.startswith("CHURN_AB_") for key in config["data"])
    assert all(isinstance(value, str) for value in config["data"].values())
    assert {"CHURN_AB_EXPERIMENT", "CHURN_AB_WEIGHTS", "CHURN_AB_MODE"} <= set(
        config["data"]
    )
    sources = _container()["envFrom"]
    assert {"configMapRef": {"name": config["metadata"]["name"]}} in sources


def test_selectors_and_targets_agree() -> None:
    deployment = _one("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    service = _one("Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] in {"http", 3000}
    pdb = _one("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    hpa = _one("HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "churn-ab")
    assert hpa["spec"]["minReplicas"] >= 2 <= hpa["spec"]["maxReplicas"]


def test_servicemonitor_scrapes_the_service_under_the_dashboards_job_name() -> None:
    """ServiceMonitor is a CRD the package has no schema for: checked by structure."""
    monitor = _one("ServiceMonitor", OPERATOR)
    service = _one("Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor) == {"apiVersion", "kind", "metadata", "spec"}
    spec = monitor["spec"]
    assert set(spec) <= {"jobLabel", "selector", "endpoints", "namespaceSelector"}
    assert (
        spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in spec["endpoints"]:
        assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout"}
        assert endpoint["port"] in service_ports
        assert endpoint["path"] == "/metrics"
    # The operator names the job after this Service label's value; dashboards
    # and alerts select job="churn-ab" as in prometheus/prometheus.yml.
    job = service["metadata"]["labels"][spec["jobLabel"]]
    prometheus = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    assert job in {j["job_name"] for j in prometheus["scrape_configs"]}
