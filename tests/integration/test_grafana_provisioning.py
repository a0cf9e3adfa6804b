"""Grafana's provisioning, checked offline (no Grafana image can be pulled
here): the datasource and dashboard-provider files have the structure
Grafana's provisioning documentation gives them, and every datasource
reference in the dashboards, as committed and as `jsonnet` renders them from
grafana/mixin, resolves to a provisioned datasource of the same type.

The schemas below are written from "Provision Grafana" (grafana.com/docs/
grafana/latest/administration/provisioning/), sections "Data sources" and
"Dashboards": the documented keys only, so a misspelt key fails here instead
of being ignored by Grafana.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "grafana"
PROVISIONING = GRAFANA / "provisioning"

_BOOL = {"type": "boolean"}
_ORG = {"type": "integer", "minimum": 1}
_NAME = {"type": "string", "minLength": 1}

DATASOURCES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": 1},
        "prune": _BOOL,
        "deleteDatasources": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {"name": _NAME, "orgId": _ORG},
            },
        },
        "datasources": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "type"],
                "additionalProperties": False,
                "properties": {
                    "name": _NAME,
                    "type": _NAME,
                    "access": {"enum": ["proxy", "direct"]},
                    "orgId": _ORG,
                    "uid": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"},
                    "url": {"type": "string"},
                    "user": {"type": "string"},
                    "database": {"type": "string"},
                    "basicAuth": _BOOL,
                    "basicAuthUser": {"type": "string"},
                    "withCredentials": _BOOL,
                    "isDefault": _BOOL,
                    "jsonData": {"type": "object"},
                    "secureJsonData": {"type": "object"},
                    "version": {"type": "integer"},
                    "editable": _BOOL,
                },
            },
        },
    },
}

PROVIDERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "providers"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": 1},
        "providers": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "options"],
                "additionalProperties": False,
                "properties": {
                    "name": _NAME,
                    "orgId": _ORG,
                    "folder": {"type": "string"},
                    "folderUid": {"type": "string"},
                    "type": {"const": "file"},
                    "disableDeletion": _BOOL,
                    "updateIntervalSeconds": {"type": "integer", "minimum": 0},
                    "allowUiUpdates": _BOOL,
                    "options": {
                        "type": "object",
                        "required": ["path"],
                        "additionalProperties": False,
                        "properties": {
                            "path": {"type": "string", "pattern": "^/"},
                            "foldersFromFilesStructure": _BOOL,
                        },
                    },
                },
            },
        },
    },
}


def _files(kind: str) -> list[Path]:
    files = sorted((PROVISIONING / kind).glob("*.y*ml"))
    assert files, f"nothing provisioned under grafana/provisioning/{kind}"
    return files


def _datasources() -> list[dict[str, Any]]:
    return [
        ds
        for f in _files("datasources")
        for ds in yaml.safe_load(f.read_text()).get("datasources", [])
    ]


def references(node: object, path: str = "$") -> Iterator[tuple[str, object]]:
    """Every ``datasource`` value anywhere in a dashboard: panels, rows'
    nested panels, targets, template variables, annotations."""
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}"
            if key == "datasource":
                yield where, value
            yield from references(value, where)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from references(item, f"{path}[{i}]")


def unresolved(
    dashboard: dict[str, Any], datasources: list[dict[str, Any]]
) -> list[str]:
    """References that name no provisioned datasource (or one of another
    type). A bare string is a datasource name, as older dashboards write it."""
    by_uid = {ds["uid"]: ds for ds in datasources if "uid" in ds}
    by_name = {ds["name"]: ds for ds in datasources}
    bad = []
    for where, ref in references(dashboard):
        if isinstance(ref, dict):
            target = by_uid.get(str(ref.get("uid")))
            if target is None or ref.get("type", target["type"]) != target["type"]:
                bad.append(f"{where} = {ref}")
        elif isinstance(ref, str):
            if ref not in by_name:
                bad.append(f"{where} = {ref!r}")
        elif ref is not None:
            bad.append(f"{where} = {ref!r}")
    return bad


@pytest.fixture(scope="module")
def dashboards(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The committed dashboards and a fresh `jsonnet` render of the mixin."""
    found = {
        f"committed {p.name}": json.loads(p.read_text())
        for p in sorted((GRAFANA / "dashboards").glob("*.json"))
    }
    assert found, "no dashboard in grafana/dashboards"
    if shutil.which("jsonnet") is None:
        pytest.fail("jsonnet missing: scripts/install-system-deps.sh")
    out = tmp_path_factory.mktemp("rendered")
    mixin = GRAFANA / "mixin"
    subprocess.run(
        [
            "jsonnet",
            "-J",
            str(mixin),
            "-m",
            str(out),
            str(mixin / "render-dashboards.jsonnet"),
        ],
        check=True,
        capture_output=True,
    )
    rendered = {
        f"rendered {p.name}": json.loads(p.read_text()) for p in out.glob("*.json")
    }
    assert rendered, "the mixin rendered no dashboard"
    return found | rendered


@pytest.mark.parametrize("path", _files("datasources"), ids=lambda p: p.name)
def test_datasource_files_have_the_documented_structure(path: Path) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text()), DATASOURCES_SCHEMA)


@pytest.mark.parametrize("path", _files("dashboards"), ids=lambda p: p.name)
def test_dashboard_provider_files_have_the_documented_structure(path: Path) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text()), PROVIDERS_SCHEMA)


def test_the_schemas_reject_misspelt_and_missing_keys() -> None:
    datasource = {"name": "p", "type": "prometheus", "isDefualt": True}
    with pytest.raises(jsonschema.ValidationError, match="isDefualt"):
        jsonschema.validate(
            {"apiVersion": 1, "datasources": [datasource]}, DATASOURCES_SCHEMA
        )
    provider = {"name": "p", "type": "file", "options": {}}
    with pytest.raises(jsonschema.ValidationError, match="path"):
        jsonschema.validate(
            {"apiVersion": 1, "providers": [provider]}, PROVIDERS_SCHEMA
        )


def test_datasources_are_unique_with_one_default() -> None:
    datasources = _datasources()
    names = [ds["name"] for ds in datasources]
    uids = [ds["uid"] for ds in datasources if "uid" in ds]
    assert len(set(names)) == len(names) and len(set(uids)) == len(uids)
    assert sum(bool(ds.get("isDefault")) for ds in datasources) == 1


def test_every_dashboard_reference_resolves_to_a_provisioned_datasource(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    datasources = _datasources()
    for name, dashboard in dashboards.items():
        found = list(references(dashboard))
        # Panels, targets and template variables all name their datasource.
        assert len(found) > len(dashboard["panels"]), name
        assert unresolved(dashboard, datasources) == [], name


def test_the_resolution_check_catches_a_dangling_reference() -> None:
    datasources = _datasources()
    uid = datasources[0]["uid"]
    dashboard = {
        "panels": [
            {
                "type": "row",
                "panels": [{"datasource": {"type": "prometheus", "uid": "gone"}}],
            },
            {"targets": [{"datasource": {"type": "loki", "uid": uid}}]},
            {"datasource": "No such name"},
        ]
    }
    assert len(unresolved(dashboard, datasources)) == 3


def test_the_provider_reads_where_compose_mounts_the_dashboards() -> None:
    compose = yaml.safe_load((REPO / "deploy" / "compose.yaml").read_text())
    mounts = {
        volume.split(":")[1]: volume.split(":")[0]
        for volume in compose["services"]["grafana"]["volumes"]
    }
    for path in _files("dashboards"):
        for provider in yaml.safe_load(path.read_text())["providers"]:
            source = mounts.get(provider["options"]["path"])
            assert source is not None, provider
            folder = (REPO / "deploy" / source).resolve()
            assert folder == GRAFANA / "dashboards"
            assert list(folder.glob("*.json")), folder
    assert mounts["/etc/grafana/provisioning"] == "../grafana/provisioning"
