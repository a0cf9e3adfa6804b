"""deploy/compose.yaml: valid compose-spec, loopback by default, no secrets,
and every file it mounts or names is really in the repository."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import podman_compose
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
SCHEMA_FILE = DEPLOY / "schemas" / "compose-spec.json"
# The only variable without a default: compose must refuse to start without it.
REQUIRED_ENV = {"GRAFANA_ADMIN_PASSWORD": "not-a-real-password"}


def _raw() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _interpolated(env: dict[str, str]) -> dict[str, Any]:
    # podman-compose's own interpolation: the same rules `up` applies.
    return podman_compose.rec_subs(_raw(), env)


def _host_path(source: str) -> Path | None:
    """The host path of a short-syntax bind mount, None for a named volume."""
    if source.startswith((".", "/", "~")):
        return (DEPLOY / source).resolve()
    return None


def _mounts(compose: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(service, source, target) of every short-syntax volume entry."""
    found = []
    for name, service in compose["services"].items():
        for entry in service.get("volumes", []):
            assert isinstance(entry, str), f"{name}: use the short volume syntax"
            source, target = entry.split(":")[:2]
            found.append((name, source, target))
    return found


def test_compose_file_matches_the_compose_spec_schema() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(_raw()), key=lambda e: list(e.path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors
    )


def test_schema_check_catches_a_broken_file() -> None:
    # Guards against a schema that accepts anything (e.g. a truncated vendoring).
    schema = json.loads(SCHEMA_FILE.read_text())
    broken = _raw()
    broken["services"]["churn-ab"]["ports"] = [{"published": "3000"}]
    broken["services"]["churn-ab"]["restart_policy"] = "always"
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(broken))


def test_grafana_password_has_no_default() -> None:
    with pytest.raises(ValueError, match="GRAFANA_ADMIN_PASSWORD"):
        _interpolated({})
    compose = _interpolated(REQUIRED_ENV)
    grafana_env = compose["services"]["grafana"]["environment"]
    assert grafana_env["GF_SECURITY_ADMIN_PASSWORD"] == "not-a-real-password"


def test_ports_are_loopback_only_by_default() -> None:
    compose = _interpolated(REQUIRED_ENV)
    published = {
        name: service.get("ports", []) for name, service in compose["services"].items()
    }
    assert all(published.values()), f"every service publishes a port: {published}"
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port}"
    assert published["churn-ab"] == ["127.0.0.1:3000:3000"]


def test_publish_address_and_ports_can_be_overridden() -> None:
    env = REQUIRED_ENV | {"PUBLISH_ADDR": "0.0.0.0", "CHURN_AB_PORT": "8080"}
    compose = _interpolated(env)
    assert compose["services"]["churn-ab"]["ports"] == ["0.0.0.0:8080:3000"]


@pytest.mark.parametrize("name", ["CHURN_AB_ADMIN_TOKEN", "CHURN_AB_LEDGER_URL"])
def test_secrets_are_passed_through_never_set(name: str) -> None:
    raw_text = COMPOSE_FILE.read_text()
    env = _interpolated(REQUIRED_ENV)["services"]["churn-ab"]["environment"]
    # A key without a value takes the caller's environment variable, if any.
    assert env[name] is None
    assert f"{name}:\n" in raw_text
    given = _interpolated(REQUIRED_ENV | {name: "from-the-shell"})
    assert given["services"]["churn-ab"]["environment"][name] is None


def test_every_service_has_a_healthcheck() -> None:
    for name, service in _raw()["services"].items():
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in {"CMD", "CMD-SHELL"}, name


def test_ledger_lives_on_a_named_volume_and_is_configurable() -> None:
    raw = _raw()
    api = raw["services"]["churn-ab"]
    assert "${CHURN_AB_LEDGER_PATH:-" in api["environment"]["CHURN_AB_LEDGER_PATH"]
    env = _interpolated(REQUIRED_ENV)["services"]["churn-ab"]["environment"]
    named = {
        target: source
        for name, source, target in _mounts(raw)
        if name == "churn-ab" and _host_path(source) is None
    }
    assert "/home/bentoml/var" in named
    assert named["/home/bentoml/var"] in raw["volumes"]
    assert env["CHURN_AB_LEDGER_PATH"].startswith("/home/bentoml/var/")
    moved = REQUIRED_ENV | {"CHURN_AB_LEDGER_PATH": "/home/bentoml/var/other.sqlite3"}
    overridden = _interpolated(moved)["services"]["churn-ab"]["environment"]
    assert overridden["CHURN_AB_LEDGER_PATH"] == "/home/bentoml/var/other.sqlite3"


def test_named_volumes_are_declared() -> None:
    raw = _raw()
    used = {source for _, source, _ in _mounts(raw) if _host_path(source) is None}
    assert used == set(raw["volumes"])


def test_every_bind_mount_exists_in_the_repository() -> None:
    binds = [
        (name, source, _host_path(source))
        for name, source, _ in _mounts(_raw())
        if _host_path(source) is not None
    ]
    assert binds, "the stack mounts the prometheus and grafana config"
    for name, source, path in binds:
        assert path is not None
        assert path.is_relative_to(REPO), f"{name} mounts {source} outside the repo"
        assert path.exists(), f"{name} mounts {source}, missing at {path}"


def test_prometheus_config_names_files_that_exist_and_scrapes_the_api() -> None:
    raw = _raw()
    mount = next(src for n, src, dst in _mounts(raw) if dst == "/etc/prometheus")
    config_dir = _host_path(mount)
    assert config_dir is not None
    config = yaml.safe_load((config_dir / "prometheus.yml").read_text())
    for rule_file in config["rule_files"]:
        assert (config_dir / rule_file).is_file(), rule_file
    api_job = next(j for j in config["scrape_configs"] if j["job_name"] == "churn-ab")
    targets = [t for sc in api_job["static_configs"] for t in sc["targets"]]
    # The scrape target is <compose service>:<container port>.
    assert targets == ["churn-ab:3000"]
    assert "churn-ab" in raw["services"]


def test_grafana_provisioning_matches_the_mounts() -> None:
    raw = _raw()
    mounts = {dst: src for n, src, dst in _mounts(raw) if n == "grafana"}
    provisioning = _host_path(mounts["/etc/grafana/provisioning"])
    assert provisioning is not None
    datasources = [
        ds
        for f in sorted((provisioning / "datasources").glob("*.y*ml"))
        for ds in yaml.safe_load(f.read_text())["datasources"]
    ]
    assert datasources, "no datasource provisioned"
    assert any(ds["url"] == "http://prometheus:9090" for ds in datasources)
    assert "prometheus" in raw["services"]
    providers = [
        p
        for f in sorted((provisioning / "dashboards").glob("*.y*ml"))
        for p in yaml.safe_load(f.read_text())["providers"]
    ]
    for provider in providers:
        dashboards_dir = provider["options"]["path"]
        assert dashboards_dir in mounts, f"{dashboards_dir} is not mounted"
        host_dir = _host_path(mounts[dashboards_dir])
        assert host_dir is not None
        assert list(host_dir.glob("*.json")), f"no dashboard in {host_dir}"
